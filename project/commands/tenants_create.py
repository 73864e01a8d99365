"""`tenants:create`: make tenants' schemas or databases exist, then migrate them."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations.commands import state
from manage_migrations.commands.tenant_options import Jobs, Tenants, jobs_or_default, run_displayed


def command(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(help="The tenant, as the tenants list or query names it (default: every tenant)."),
    ] = None,
    *,
    tenant: Tenants = None,
    jobs: Jobs = None,
) -> None:
    """Create tenants' schemas (or databases) when missing and run their migrations."""
    from manage_migrations.verbs import tenants

    app = state(ctx)
    wanted = [*([name] if name is not None else []), *(tenant or [])]
    if len(wanted) != 1:
        run_displayed(
            app,
            wanted,
            "applied",
            "migrated",
            lambda selected, on_event: tenants.create(selected, jobs_or_default(jobs), on_event),
        )
        return
    from manage_migrations import console_tenants

    selected = tenants.select(app.settings(), wanted)
    provided = tenants.provide(selected, selected.tasks[0])
    console_tenants.provided(app.output, provided)
    result = tenants.migrate_provided(provided, app.output.progress)
    app.output.run_finished(result, verb="applied", nothing="Nothing to migrate.")
    if result.failed is not None:
        raise typer.Exit(1)
