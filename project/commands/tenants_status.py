"""`tenants:status`: where each tenant stands: its revision, pending and failed migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations.commands import state
from manage_migrations.commands.tenant_options import Jobs, Tenants, exit_for, jobs_or_default


def command(
    ctx: typer.Context,
    *,
    tenant: Tenants = None,
    jobs: Jobs = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (keys in README).")] = False,
    pending: Annotated[
        bool,
        typer.Option("--pending", help="List only tenants with pending migrations; exit 1 if there are any."),
    ] = False,
) -> None:
    """Show each tenant's migration status (one line per tenant)."""
    from manage_migrations import console_tenants
    from manage_migrations.verbs import tenants

    app = state(ctx)
    selected = tenants.select(app.settings(), tenant or [])
    result = tenants.status(selected, jobs_or_default(jobs), lambda _event: None)
    if as_json:
        console_tenants.status_json(result)
    else:
        console_tenants.status(app.output, result, tracebacks=app.traceback, only_pending=pending)
    exit_for(result)
    if pending and tenants.behind(result):
        raise typer.Exit(1)
