"""`migrate:resolve`: clear the failure mark of a migration that failed outside a transaction."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations import completion
from manage_migrations.commands import state


def command(
    ctx: typer.Context,
    revision: Annotated[
        str,
        typer.Argument(
            help="Revision id (or file name) of the failed migration.",
            autocompletion=completion.migration_names,
        ),
    ],
) -> None:
    """Mark a failed non-transactional migration as repaired, so migrate runs again."""
    from manage_migrations.naming import revision_argument
    from manage_migrations.verbs.maintain import resolve_failure

    app = state(ctx)
    result = resolve_failure(app.settings(), revision_argument(revision), app.output.progress)
    app.output.resolved(result)
