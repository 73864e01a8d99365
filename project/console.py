"""The only module that prints (and imports rich): theme, step lines, tables, errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.theme import Theme

if TYPE_CHECKING:
    from pathlib import Path

    from project.errors import ManageError
    from project.migrator import FailedStep, RunResult, StatusResult
    from project.recorder import RunStarted, StepDone

THEME = Theme(
    {
        "done": "bold green",
        "fail": "bold red",
        "muted": "dim",
        "add": "green",
        "alter": "yellow",
        "drop": "red",
        "destructive": "bold red",
        "pending": "yellow",
        "missing": "bold red",
        "error": "bold red",
        "hint": "cyan",
    }
)
MAX_LINE_WIDTH = 110
PIPED_WIDTH = 200
SYMBOL_STYLES = {"+": "add", "~": "alter", "-": "drop"}
SYMBOL_ORDER = {"+": 0, "~": 1, "-": 2}
STATE_STYLES = {"Ran": "done", "Pending": "pending", "Missing": "missing"}


class Output:
    """Stdout and stderr consoles for one invocation; quiet drops everything but errors."""

    def __init__(self, quiet: bool = False, verbose: bool = False) -> None:
        self.quiet = quiet
        self.verbose = verbose
        # Piped output is read by scripts and people alike: never truncate it to 80 columns.
        width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else PIPED_WIDTH
        self.out = Console(theme=THEME, highlight=False, width=width)
        self.err = Console(theme=THEME, highlight=False, stderr=True, width=width)

    @property
    def width(self) -> int:
        return min(self.out.width, MAX_LINE_WIDTH)

    def say(self, text: str | Text, style: str | None = None) -> None:
        if not self.quiet:
            self.out.print(text, style=style)

    def result_line(self, text: str) -> None:
        """Printed even with --quiet: the one line that says what happened."""
        self.out.print(text)

    # migrate / rollback

    def progress(self, event: StepDone | RunStarted) -> None:
        from project.recorder import RunStarted

        if isinstance(event, RunStarted):
            self.run_started(event)
        else:
            self.step_done(event)

    def run_started(self, event: RunStarted) -> None:
        if event.pretend:
            action = "Pretending to run"
        elif event.upgrade:
            action = "Running"
        else:
            action = "Rolling back"
        batch = f" (batch {event.batch})" if event.batch is not None else ""
        self.say(Text(f"  {action} migrations on {event.database}{batch}"))
        self.say("")

    def step_done(self, event: StepDone) -> None:
        if event.sql is not None:
            self.say(Text(f"  {event.name}", style="bold"))
            for statement in event.sql or ("-- no statements",):
                indented = "\n".join(f"    {line}" for line in statement.splitlines())
                self.say(Text(indented, style="muted"))
            return
        self._step_line(event.name, event.duration_ms, "DONE", "done")

    def _step_line(self, name: str, duration_ms: float, label: str, style: str) -> None:
        took = f"{duration_ms:.1f} ms"
        dots = max(3, self.width - len(name) - len(took) - len(label) - 6)
        line = Text("  ")
        line.append(name)
        line.append(" " + "." * dots + " ", style="muted")
        line.append(took, style="muted")
        line.append(" ")
        line.append(label, style=style)
        self.say(line)

    def run_finished(self, result: RunResult, verb: str, nothing: str) -> None:
        if result.nothing_to_do:
            self.result_line(nothing)
            return
        if result.pretend:
            return
        if result.failed is not None:
            self.failure(result.failed, applied=len(result.steps), verb=verb)
            return
        count = len(result.steps)
        total = sum(step.duration_ms for step in result.steps)
        self.say("")
        self.result_line(f"  {_plural(count, 'migration')} {verb} in {total:.0f} ms.")

    def failure(self, failed: FailedStep, applied: int, verb: str) -> None:
        self._step_line(failed.name, failed.duration_ms, "FAIL", "fail")
        self.say("")
        self.err.print(Text(f"error: {failed.name} failed: {failed.error}", style="error"))
        where = ", ".join(failed.at_names) if failed.at_names else "no migration (empty history)"
        if failed.transactional:
            self.err.print(
                Text(
                    f"{failed.name} was rolled back; {_plural(applied, 'migration')} {verb} "
                    f"before it. The database is at {where}."
                )
            )
        else:
            self.err.print(
                Text(
                    f"{failed.name} failed on a database without transactional DDL: statements "
                    f"it ran before the error may have taken effect and need a look. "
                    f"The version table is at {where}."
                )
            )

    # status

    def status(self, result: StatusResult, only_pending: bool = False) -> None:
        rows = [row for row in result.rows if not only_pending or row.state == "Pending"]
        if not rows:
            self.result_line("No migrations." if not only_pending else "No pending migrations.")
            return
        table = Table(box=None, pad_edge=False, padding=(0, 3, 0, 0), header_style="bold")
        for column in ("Migration", "Status", "Batch", "Applied at", "Took"):
            table.add_column(column, no_wrap=True)
        for row in rows:
            table.add_row(
                Text(row.name),
                Text(row.state, style=STATE_STYLES.get(row.state)),
                str(row.batch) if row.batch is not None else "",
                row.applied_at.strftime("%Y-%m-%d %H:%M:%S") if row.applied_at else "",
                f"{row.duration_ms:.0f} ms" if row.duration_ms is not None else "",
            )
        if not self.quiet:
            self.out.print(table)
        parts = [f"{result.count('Ran')} ran", f"{result.count('Pending')} pending"]
        if result.count("Missing"):
            parts.append(f"{result.count('Missing')} missing")
        self.result_line(", ".join(parts) + ".")

    # make:migration

    def changes(self, changes: Iterable[Any]) -> None:
        """Grouped: creations, then alterations, then drops (destructive ones flagged)."""
        for change in sorted(changes, key=lambda change: SYMBOL_ORDER.get(change.symbol, 1)):
            line = Text("  ")
            line.append(f"{change.symbol} {change.text}", style=SYMBOL_STYLES.get(change.symbol))
            if change.destructive:
                line.append("  (destructive)", style="destructive")
            self.say(line)

    def discovered(self, modules: Iterable[str], tables_per_metadata: Iterable[list[str]]) -> None:
        """What the diff is based on: a missing module here explains a surprising drop."""
        self.say(Text(f"  Models: {', '.join(modules) or '(none)'}", style="muted"))
        for index, tables in enumerate(tables_per_metadata, start=1):
            self.say(Text(f"  Tables (metadata {index}): {', '.join(tables) or '(none)'}", style="muted"))
        self.say("")

    def warning(self, text: str) -> None:
        self.err.print(Text(f"warning: {text}", style="pending"), soft_wrap=True)

    def confirm(self, question: str) -> bool:
        """Ask on the terminal; anything but yes is no."""
        from rich.prompt import Confirm

        return Confirm.ask(question, console=self.out, default=False)

    def created(self, path: Path, root: Path) -> None:
        try:
            shown = path.relative_to(root)
        except ValueError:
            shown = path
        self.result_line(f"  Created {shown}")

    # errors

    def error(self, exc: ManageError) -> None:
        self.err.print(Text(f"error: {exc.message}", style="error"), soft_wrap=True)
        if exc.hint:
            self.err.print(Text(f"hint: {exc.hint}", style="hint"), soft_wrap=True)

    def traceback(self, text: str) -> None:
        self.err.print(Text(text), end="")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
