"""`tenants:create`: make a tenant's schema or database exist, then migrate it."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations.commands import state


def command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The tenant, as the tenants list or query names it.")],
) -> None:
    """Create a tenant's schema (or database) when missing and run its migrations."""
    from manage_migrations import console_tenants
    from manage_migrations.verbs import tenants

    app = state(ctx)
    provided = tenants.provide(app.settings(), name)
    console_tenants.provided(app.output, provided)
    result = tenants.migrate_provided(provided, app.output.progress)
    app.output.run_finished(result, verb="applied", nothing="Nothing to migrate.")
    if result.failed is not None:
        raise typer.Exit(1)
