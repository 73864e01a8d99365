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
from manage_migrations.commands.tenant_options import Jobs, Tenants, jobs_or_default, no_prompt, run_displayed


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
    from manage_migrations.verbs import tenants

    selection = rollback_selection(step, batch, to)
    run_displayed(
        state(ctx),
        tenant,
        "rolled back",
        "rolled back",
        lambda selected, on_event: tenants.rollback(
            selected, jobs_or_default(jobs), on_event, selection, confirm=no_prompt(force)
        ),
    )
