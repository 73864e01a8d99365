"""`migrate:rehash`: accept the current checksum of applied migrations edited since they ran."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations import completion
from manage_migrations.commands import state


def command(
    ctx: typer.Context,
    revisions: Annotated[
        list[str] | None,
        typer.Argument(
            help="Revision ids (or file names) to accept; default: every edited one.",
            autocompletion=completion.migration_names,
        ),
    ] = None,
) -> None:
    """Accept edited migration files after review (store their new checksum)."""
    from manage_migrations.naming import revision_argument
    from manage_migrations.verbs.maintain import accept_checksums

    app = state(ctx)
    wanted = tuple(revision_argument(revision) for revision in revisions or ())
    result = accept_checksums(app.settings(), wanted, app.output.progress)
    app.output.accepted(result)
