"""Options every tenants:* command shares, and how a fan-out's result becomes an exit code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from collections.abc import Callable

    from manage_migrations.commands import AppState
    from manage_migrations.guard import Confirm
    from manage_migrations.tenancy.fanout import FanOutEvent, FanOutResult
    from manage_migrations.verbs.tenants import Selected

Tenants = Annotated[
    list[str] | None,
    typer.Option(
        "--tenant", metavar="NAME", help="Only this tenant (repeatable; default: all).", show_default=False
    ),
]
Jobs = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-j",
        min=1,
        metavar="N",
        help="Tenants at once (default: 2 per core, at most 8).",
        show_default=False,
    ),
]
INTERRUPTED = 130


def run_displayed(
    app: AppState,
    wanted: list[str] | None,
    verb: str,
    action: str,
    run: Callable[[Selected, Callable[[FanOutEvent], None]], FanOutResult],
) -> None:
    """tenants:migrate and tenants:rollback: select the tenants, run with the live display
    (`verb` follows a migration count, `action` a tenant count), then the summary and exit code."""
    from manage_migrations import console_tenants
    from manage_migrations.verbs import tenants

    selected = tenants.select(app.settings(), wanted or [])
    display = console_tenants.TenantRun(app.output, verb, len(selected.tasks))
    result = run(selected, display.event)
    display.finish(result, action, tracebacks=app.traceback)
    exit_for(result)


def refuse_tenant_without_tenants(tenant: str | None, tenants: bool, command: str) -> None:
    """--tenant picks the tenant of a --tenants run; alone it would be silently ignored."""
    if tenant is not None and not tenants:
        from manage_migrations.errors import UsageError

        raise UsageError(f"--tenant needs --tenants ({command} --tenants --tenant NAME)")


def exit_for(result: FanOutResult) -> None:
    """130 when interrupted, 1 when a tenant failed (each one's error, and its own exit code's
    meaning, is printed with it), else 0."""
    if result.interrupted:
        raise typer.Exit(INTERRUPTED)
    if result.failed:
        raise typer.Exit(1)


def no_prompt(force: bool) -> Confirm:
    """Tenants run side by side, so none of them asks: --force is the only yes."""

    def confirm(_question: str) -> bool:
        return force

    return confirm


def jobs_or_default(jobs: int | None) -> int:
    from manage_migrations.verbs.tenants import default_jobs

    return jobs if jobs is not None else default_jobs()
