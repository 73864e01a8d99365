"""`tenants:rollback`: undo each tenant's last batch (or --step / --batch / --to)."""

from __future__ import annotations

import typer

from manage_migrations.commands import (
    Force,
    RollbackBatch,
    RollbackStep,
    RollbackTo,
    rollback_selection,
    state,
)
from manage_migrations.commands.tenant_options import Jobs, Tenants, exit_for, jobs_or_default, no_prompt


def command(
    ctx: typer.Context,
    *,
    tenant: Tenants = None,
    jobs: Jobs = None,
    step: RollbackStep = None,
    batch: RollbackBatch = None,
    to: RollbackTo = None,
    force: Force = False,
) -> None:
    """Roll back the last batch of tenant migrations on every tenant."""
    from manage_migrations import console_tenants
    from manage_migrations.verbs import tenants

    app = state(ctx)
    default = app.settings()
    selected = tenants.select(default, tenant or [])
    display = console_tenants.TenantRun(app.output, "rolled back", len(selected.tasks))
    result = tenants.rollback(
        selected,
        jobs_or_default(jobs),
        display.event,
        rollback_selection(step, batch, to),
        confirm=no_prompt(force),
    )
    display.finish(result, "rolled back", tracebacks=app.traceback)
    exit_for(result)
