"""One module per command; this package holds what every command shares: the invocation state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

from project.console import Output

if TYPE_CHECKING:
    from project.settings import Settings


@dataclass
class AppState:
    """Global options of one invocation (they may be given before or after the command name)."""

    database_url: str | None = None
    quiet: bool = False
    verbose: bool = False
    traceback: bool = False
    lock_timeout: float | None = None
    output: Output = field(default_factory=Output)

    def settings(self) -> Settings:
        from project.settings import resolve_settings

        return resolve_settings(database_url=self.database_url, lock_timeout=self.lock_timeout)


def state(ctx: typer.Context) -> AppState:
    return ctx.ensure_object(AppState)
