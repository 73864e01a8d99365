"""`tenants:migrate`: every tenant's pending tenant migrations, tenants side by side."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations.commands import Force, state
from manage_migrations.commands.tenant_options import Jobs, Tenants, exit_for, jobs_or_default, no_prompt


def command(
    ctx: typer.Context,
    *,
    tenant: Tenants = None,
    jobs: Jobs = None,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Start no new tenant once one has failed.")
    ] = False,
    force: Force = False,
) -> None:
    """Run every tenant's pending migrations (each tenant one batch)."""
    from manage_migrations import console_tenants
    from manage_migrations.verbs import tenants

    app = state(ctx)
    default = app.settings()
    selected = tenants.select(default, tenant or [])
    display = console_tenants.TenantRun(app.output, "applied", len(selected.tasks))
    result = tenants.migrate(
        selected, jobs_or_default(jobs), display.event, fail_fast=fail_fast, confirm=no_prompt(force)
    )
    display.finish(result, "migrated", tracebacks=app.traceback)
    exit_for(result)
