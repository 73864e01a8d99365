"""`tenants:resolve`: clear the failure mark of a tenant migration that failed outside a transaction."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations import completion
from manage_migrations.commands import state
from manage_migrations.commands.tenant_options import Tenants


def command(
    ctx: typer.Context,
    revision: Annotated[
        str,
        typer.Argument(
            help="Revision id (or file name) of the failed tenant migration.",
            autocompletion=completion.migration_names,
        ),
    ],
    *,
    tenant: Tenants = None,
) -> None:
    """Mark a failed tenant migration as repaired on the named tenants, so tenants:migrate runs it."""
    from manage_migrations.errors import ManageError, UsageError
    from manage_migrations.naming import revision_argument
    from manage_migrations.verbs import tenants

    if not tenant:
        # Unlike the other tenants:* commands, never all of them: each one was repaired by hand.
        raise UsageError("name the repaired tenants with --tenant NAME (repeatable)")
    app = state(ctx)
    selected = tenants.select(app.settings(), tenant)
    outcomes = tenants.resolve(selected, revision_argument(revision))
    for name, outcome in outcomes:
        if isinstance(outcome, ManageError):
            outcome.message = f"{name}: {outcome.message}"
            app.output.error(outcome)
        else:
            app.output.resolved(outcome)
    if any(isinstance(outcome, ManageError) for _, outcome in outcomes):
        raise typer.Exit(1)
