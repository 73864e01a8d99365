"""`tenants:migrate`: every tenant's pending tenant migrations, tenants side by side."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations.commands import Force, state
from manage_migrations.commands.tenant_options import Jobs, Tenants, jobs_or_default, no_prompt, run_displayed


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
    from manage_migrations.verbs import tenants

    run_displayed(
        state(ctx),
        tenant,
        "applied",
        "migrated",
        lambda selected, on_event: tenants.migrate(
            selected, jobs_or_default(jobs), on_event, fail_fast=fail_fast, confirm=no_prompt(force)
        ),
    )
