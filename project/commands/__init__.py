"""One module per command; this package holds what every command shares: the invocation state."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

from manage_migrations import completion
from manage_migrations.console import Output
from manage_migrations.errors import ManageError

if TYPE_CHECKING:
    from manage_migrations.core.planner import Selection
    from manage_migrations.guard import Confirm
    from manage_migrations.settings import Settings

Force = Annotated[
    bool, typer.Option("--force", help="Skip the production confirmation (for deploy scripts).")
]
# What migrate:rollback and tenants:rollback undo instead of the last batch.
RollbackStep = Annotated[
    int | None,
    typer.Option("--step", min=1, help="Roll back the last N migrations, across batches."),
]
RollbackBatch = Annotated[
    int | None,
    typer.Option("--batch", min=1, help="Roll back batch N; it must be the newest one."),
]


RollbackTo = Annotated[
    str | None,
    typer.Option(
        "--to",
        help="Roll back until this migration is the newest applied one.",
        autocompletion=completion.migration_names,
    ),
]


def rollback_selection(step: int | None, batch: int | None, to: str | None) -> Selection:
    from manage_migrations.core.planner import Selection
    from manage_migrations.errors import UsageError

    if sum(option is not None for option in (step, batch, to)) > 1:
        raise UsageError("--step, --batch and --to cannot be used together")
    return Selection(step, batch, to)


@dataclass
class AppState:
    """Global options of one invocation (they may be given before or after the command name)."""

    database_url: str | None = None
    database: str | None = None  # --database NAME; None is the default database
    quiet: bool = False
    verbose: bool = False
    traceback: bool = False
    lock_timeout: float | None = None
    output: Output = field(default_factory=Output)
    url_noted: bool = False

    def settings(self) -> Settings:
        from manage_migrations.core.url import parse
        from manage_migrations.settings import resolve_settings

        settings = resolve_settings(
            database_url=self.database_url, lock_timeout=self.lock_timeout, database=self.database
        )
        if self.verbose and not self.url_noted:
            self.url_noted = True
            # A URL that does not parse is reported by the command that uses it.
            with contextlib.suppress(ManageError):
                self.output.verbose_note(parse(settings.database_url, settings.root).note)
        return settings


def state(ctx: typer.Context) -> AppState:
    return ctx.ensure_object(AppState)


def confirmer(app: AppState, force: bool) -> Confirm:
    """How a destructive command gets its yes: --force, a terminal prompt, or (no TTY) a refusal."""

    def confirm(question: str) -> bool:
        if force:
            return True
        if not sys.stdin.isatty():
            return False
        return app.output.confirm(question)

    return confirm
