"""`tenants:rollback`: undo each tenant's last batch (or --step / --batch / --to)."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations import completion
from manage_migrations.commands import Force, state
from manage_migrations.commands.tenant_options import Jobs, Tenants, exit_for, jobs_or_default


def command(
    ctx: typer.Context,
    *,
    tenant: Tenants = None,
    jobs: Jobs = None,
    step: Annotated[
        int | None,
        typer.Option("--step", min=1, help="Roll back the last N migrations, across batches."),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option("--batch", min=1, help="Roll back batch N; it must be the newest one."),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Roll back until this migration is the newest applied one.",
            autocompletion=completion.migration_names,
        ),
    ] = None,
    force: Force = False,
) -> None:
    """Roll back the last batch of tenant migrations on every tenant."""
    from manage_migrations import console_tenants
    from manage_migrations.core.planner import Selection
    from manage_migrations.errors import UsageError
    from manage_migrations.verbs import tenants

    if sum(option is not None for option in (step, batch, to)) > 1:
        raise UsageError("--step, --batch and --to cannot be used together")
    app = state(ctx)
    default = app.settings()
    selected = tenants.select(default, tenant or [])
    display = console_tenants.TenantRun(app.output, "rolled back", len(selected.tasks))
    result = tenants.rollback(
        selected,
        jobs_or_default(jobs),
        display.event,
        Selection(step, batch, to),
        confirm=lambda _question: force,
    )
    display.finish(result, "rolled back")
    exit_for(result)
