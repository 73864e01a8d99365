"""The only module that prints (and imports rich): theme, step lines, tables, errors."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Iterable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import COLOR_SYSTEMS, Console
from rich.prompt import Confirm, Prompt
from rich.style import Style
from rich.text import Text
from rich.theme import Theme

from manage_migrations.formatting import (
    aligned,
    check_document,
    duration,
    edited_warning,
    failure_report,
    indented,
    prune_plan_lines,
    status_cells,
    status_document,
    status_summary,
)
from manage_migrations.formatting import extra_objects as _extra_objects
from manage_migrations.formatting import plural as _plural
from manage_migrations.formatting import shown as _shown
from manage_migrations.ticker import Ticker

if TYPE_CHECKING:
    from pathlib import Path

    from manage_migrations.core.events import (
        Event,
        FailedStep,
        LockWaiting,
        RunResult,
        RunStarted,
        StepDone,
        StepStarted,
    )
    from manage_migrations.errors import ManageError
    from manage_migrations.history import StatusResult
    from manage_migrations.integrity import EditedMigration
    from manage_migrations.schema_dump import DumpInfo
    from manage_migrations.squash import Pruned, PrunePlan
    from manage_migrations.verbs.inspect import CheckResult, HistoryEntry, SqlResult
    from manage_migrations.verbs.maintain import Accepted, Resolved
    from manage_migrations.wipe import Dropped

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
        "warning": "bold yellow",
        "error": "bold red",
        "hint": "cyan",
    }
)
MAX_LINE_WIDTH = 110
PIPED_WIDTH = 200
SYMBOL_STYLES = {"+": "add", "~": "alter", "-": "drop"}
SYMBOL_ORDER = {"+": 0, "~": 1, "-": 2}
STATE_STYLES = {"Ran": "done", "Pending": "pending", "Missing": "missing", "Failed": "fail"}


class Output:
    """Stdout and stderr consoles for one invocation; quiet drops everything but errors."""

    def __init__(self, quiet: bool = False, verbose: bool = False, database: str | None = None) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.database = database  # the name of a database other than the default, said with its URL
        # Piped output is read by scripts and people alike: never truncate it to 80 columns.
        width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else PIPED_WIDTH
        self.out = Console(theme=THEME, highlight=False, width=width)
        self._styles: dict[str, Style] = {}
        self.err = Console(theme=THEME, highlight=False, stderr=True, width=width)
        self._ticker: Ticker | None = None
        self._running: str | None = None  # the revision whose start line is showing
        self._fake = False

    def on(self, url: str) -> str:
        """Which database a line is about: its shown URL, after its name when it is not the default
        (`analytics at sqlite:///analytics.sqlite3`). JSON keeps the URL alone."""
        return f"{self.database} at {url}" if self.database else url

    @functools.cached_property
    def live(self) -> bool:
        """Redraw the running migration's line only on a real terminal in colour: a pipe, a log
        file or NO_COLOR gets a start line and a result line, nothing rewritten in place."""
        try:
            terminal = self.out.file.isatty()
        except (AttributeError, ValueError):
            terminal = False
        return terminal and not self.quiet and not self.out.no_color and not self.out.is_dumb_terminal

    @functools.cached_property
    def width(self) -> int:
        """Measured once: asking the terminal costs a system call, once per migration line."""
        return min(self.out.width, MAX_LINE_WIDTH)

    def say(self, text: str | Text, style: str | None = None) -> None:
        if not self.quiet:
            self.out.print(text, style=style)

    def say_line(self, parts: Iterable[tuple[str, str | None]], end: str = "\n", flush: bool = False) -> None:
        """One line of (text, theme style) parts, written without rich's layout pass (~0.3 ms a
        line): per-migration lines and long status tables have nothing to wrap or measure.
        `flush`: a pipe or log shows it now (a migration's line), not when the buffer fills."""
        if self.quiet:
            return
        system = COLOR_SYSTEMS.get(self.out.color_system or "")
        rendered = [
            text if name is None or system is None else self._style(name).render(text, color_system=system)
            for text, name in parts
        ]
        self.out.file.write("".join(rendered) + end)
        if flush or end != "\n":
            self.out.file.flush()

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self.out.get_style(name)
            self._styles[name] = style = style.without_color if self.out.no_color else style
        return style

    def result_line(self, text: str) -> None:
        """Printed even with --quiet: the one line that says what happened."""
        self.out.print(text)

    # migrate / rollback

    def progress(self, event: Event) -> None:
        from manage_migrations.core.events import (
            Dropping,
            DumpLoaded,
            LedgerReconciled,
            LockWaiting,
            PhaseDone,
            RunStarted,
            StepDone,
            StepStarted,
        )

        if isinstance(event, StepStarted):
            self.step_started(event)
        elif isinstance(event, LedgerReconciled):
            self.ledger_reconciled(event.note, event.warnings)
        elif isinstance(event, LockWaiting):
            self.lock_waiting(event)
        elif isinstance(event, RunStarted):
            self.run_started(event)
        elif isinstance(event, DumpLoaded):
            where = f"into {self.on(event.database)} ({event.statements} statements)"
            self.say(Text(f"  Loaded schema dump {event.path.name} {where}"))
        elif isinstance(event, StepDone):
            self.step_done(event)
        elif isinstance(event, Dropping):
            self.say(Text(f"  Dropping everything the project owns on {self.on(event.database)}"))
        elif isinstance(event, PhaseDone):
            self.run_finished(event.result, verb="rolled back", nothing=None)
            if not event.result.nothing_to_do:
                self.say("")
        else:
            self.dropped(event)

    def lock_waiting(self, event: LockWaiting) -> None:
        """On stderr: stdout stays the run's own story ("Nothing to migrate." once the wait ends)."""
        if not self.quiet:
            self.err.print(
                Text(f"  Waiting up to {event.timeout:g} s for the migration lock held by {event.holder}"),
                soft_wrap=True,
            )

    def run_started(self, event: RunStarted) -> None:
        self._fake = event.fake
        if event.pretend:
            action = "Pretending to run"
        elif event.fake:
            count = _plural(event.count, "migration")
            what = "as applied" if event.upgrade else "as rolled back"
            self.say(Text(f"  Recording {count} {what} on {self.on(event.database)} (not run)\n"))
            return
        elif event.upgrade:
            action = "Running"
        else:
            action = "Rolling back"
        batch = f" (batch {event.batch})" if event.batch is not None else ""
        self.say(Text(f"  {action} migrations on {self.on(event.database)}{batch}\n"))

    def step_done(self, event: StepDone) -> None:
        if event.sql is not None:
            self.say(Text(f"  {event.name}", style="bold"))
            for statement in event.sql or ("-- no statements",):
                self.say(Text(indented(statement, "    "), style="muted"))
            return
        if self._fake:  # nothing ran, so there is no time to show
            self._step_line(event.name, None, "FAKED", "pending")
        else:
            self._step_line(event.name, duration(event.duration_ms), "DONE", "done")

    def step_started(self, event: StepStarted) -> None:
        """Laravel's task line: the name as soon as the migration starts, with its elapsed time
        redrawn on a terminal, so a long migration never looks like the previous one."""
        if self.quiet or self._fake or self._running == event.revision:
            return  # a migration retried in a transaction of its own keeps its line
        self._end_live()
        self._running = event.revision
        if not self.live:
            self.say_line(self.step_parts(event.name, None, "RUNNING", "muted"), flush=True)
            return
        started = perf_counter()

        def draw() -> None:
            took = duration((perf_counter() - started) * 1000)
            self.say_line(
                [("\r", None), *self.step_parts(event.name, took, "RUNNING", "pending", fit=True)],
                end="\x1b[K",
            )

        self._ticker = Ticker(draw)

    def _end_live(self, *, keep: bool = False) -> None:
        """Stop redrawing the running line: erase it for its result line, or keep it (an error)."""
        if self._ticker is None:
            return
        self._ticker.stop()
        self._ticker = None
        self.out.file.write("\n" if keep else "\r\x1b[K")
        self.out.file.flush()

    def _step_line(self, name: str, took: str | None, label: str, style: str) -> None:
        """A migration's result line, in place of its start line on a terminal."""
        self._end_live()
        self._running = None
        self.say_line(self.step_parts(name, took, label, style), flush=True)

    def step_parts(
        self, name: str, took: str | None, label: str, style: str, *, fit: bool = False
    ) -> list[tuple[str, str | None]]:
        """`  name ..... 12 ms DONE`, the label ending at the same column on every line."""
        timing = f"{took} " if took else ""
        if fit and len(name) + len(timing) + len(label) + 6 >= self.out.width:
            # A redrawn line must fit the terminal's width: \r only goes back one screen row.
            name = name[: max(1, self.out.width - len(timing) - len(label) - 8)] + "…"
        dots = max(3, self.width - len(name) - len(timing) - len(label) - 5)
        return [
            ("  " + name, None),
            (" " + "." * dots + " ", "muted"),
            (timing, "muted"),
            (label, style),
        ]

    def edited(self, edited: Iterable[EditedMigration]) -> None:
        """Applied migrations changed since they ran: a warning each, with the way to accept them."""
        for item in edited:
            self.err.print(
                Text(edited_warning(item), style="warning"),
                soft_wrap=True,
            )

    def run_finished(self, result: RunResult, verb: str, nothing: str | None) -> None:
        """The summary; `nothing` is what to say when there was nothing to do (None: say nothing)."""
        self._end_live(keep=True)
        self.edited(result.edited)
        if result.nothing_to_do:
            if nothing is not None:
                self.result_line(nothing)
            return
        if result.pretend:
            return
        if result.failed is not None:
            self.failure(result.failed, applied=len(result.steps), verb=verb)
            return
        count = _plural(len(result.steps), "migration")
        took = "" if result.fake else f" in {duration(sum(step.duration_ms for step in result.steps))}"
        self.say("")
        self.result_line(f"  {count} {verb}{took}.")

    def failure(self, failed: FailedStep, applied: int, verb: str) -> None:
        if not failed.commit_failed:
            self._step_line(failed.name, duration(failed.duration_ms), "FAIL", "fail")
        self.say("")
        for text, style in failure_report(failed, applied, verb):
            self.err.print(Text(text, style=style or ""), soft_wrap=True)

    def dropped(self, dropped: Dropped) -> None:
        parts = [_plural(dropped.tables, "table")]
        parts += [_plural(count, noun) for count, noun in _extra_objects(dropped) if count]
        self.say(Text(f"  Dropped {', '.join(parts)}."))
        if dropped.outside:  # on stderr: shown even with --quiet
            self.warning(
                f"--cascade also dropped outside {', '.join(dropped.schemas)}: {', '.join(dropped.outside)}"
            )
        self.say("")

    def confirm(self, question: str) -> bool:
        """Ask on the terminal; anything but an explicit yes is a no."""
        try:
            return Confirm.ask(question, console=self.err, default=False)
        except EOFError:
            return False

    def ask(self, question: str) -> str:
        """A line of text from the terminal; end of input is an empty answer."""
        try:
            return Prompt.ask(question, console=self.err, default="", show_default=False)
        except EOFError:
            return ""

    # status

    def ledger_reconciled(self, note: str | None, warnings: tuple[str, ...]) -> None:
        for warning in warnings:
            self.warning(warning)
        if note:
            self.note(note)

    def status(self, result: StatusResult, only_pending: bool = False) -> None:
        self.ledger_reconciled(result.note, result.warnings)
        self.say(Text(f"Migrations on {self.on(result.database)}\n"))
        rows = [row for row in result.rows if not only_pending or row.state == "Pending"]
        if not rows:
            self.result_line("No migrations." if not only_pending else "No pending migrations.")
            return
        header = ["Migration", "Status", "Batch", "Applied at", "Took"]
        header += ["Revision"] if self.verbose else []
        body = [status_cells(row, STATE_STYLES, self.verbose) for row in rows]
        for line in aligned([[(title, "bold") for title in header], *body], cell_len):
            self.say_line(line)
        self.result_line(status_summary(result))

    def status_json(self, result: StatusResult) -> None:
        self._json(status_document(result))

    # migrate:check

    def check(self, result: CheckResult) -> None:
        self.say(Text(f"Checking {self.on(result.database)}\n"))
        if result.ok:
            self.result_line("All checks passed.")
            return
        for problem in result.problems:
            self.err.print(Text(f"error: {problem.message}", style="error"), soft_wrap=True)
            for detail in problem.details:
                self.err.print(Text(f"  {detail}"), soft_wrap=True)
        if result.drift_skipped:
            self.err.print(
                Text(f"Models were not compared: {result.drift_skipped}.", style="muted"), soft_wrap=True
            )
        self.result_line(f"{_plural(len(result.problems), 'problem')} found.")

    def check_json(self, result: CheckResult) -> None:
        self._json(check_document(result))

    def _json(self, data: dict[str, Any]) -> None:
        """Machine output: plain JSON on stdout, never styled, wrapped or silenced by --quiet."""
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        sys.stdout.flush()

    # migrate:history, migrate:sql

    def history(self, entries: Iterable[HistoryEntry]) -> None:
        entries = list(entries)
        if not entries:
            self.result_line("No migrations.")
            return
        for entry in entries:
            parents = ", ".join(entry.parents) or "<base>"
            marks = [mark for mark, on in (("head", entry.is_head), ("merge", entry.is_merge)) if on]
            line = Text(f"{parents} -> ")
            line.append(entry.revision, style="bold")
            if marks:
                line.append(f" ({', '.join(marks)})", style="done")
            line.append(f"  {entry.name}")
            self.result_line_text(line)
            if self.verbose and entry.message:
                self.say(Text(f"    {entry.message}", style="muted"))

    def result_line_text(self, text: Text) -> None:
        self.out.print(text, soft_wrap=True)

    def sql(self, result: SqlResult) -> None:
        direction = "upgrade" if result.upgrade else "downgrade"
        self.say(Text(f"-- {result.name} ({direction})", style="muted"))
        for statement in result.statements or ("-- no statements",):
            self.out.print(Text(statement), soft_wrap=True)

    def accepted(self, result: Accepted) -> None:
        if not result.migrations:
            self.result_line("No edited migrations.")
            return
        self.say(Text(f"  Rehashing edited migrations on {self.on(result.database)}\n"))
        for item in result.migrations:
            self.say(Text(f"  {item.name}: checksum {item.stored[:12]} -> {item.current[:12]}"))
        count = len(result.migrations)
        self.result_line(f"  Accepted the current file of {_plural(count, 'migration')}.")

    def resolved(self, result: Resolved) -> None:
        where = f"{result.name} is no longer marked as failed on {self.on(result.database)}"
        self.result_line(f"  {where}; run migrate to apply it again.")

    # make:migration

    def changes(self, changes: Iterable[Any]) -> None:
        """Grouped: creations, then alterations, then drops (destructive ones flagged).

        One print for the whole listing, unwrapped: a thousand-table diff is 3,000 lines, and a
        print (and wrap) per line took seconds."""
        listing = Text()
        for change in sorted(changes, key=lambda change: SYMBOL_ORDER.get(change.symbol, 1)):
            listing.append("  ")
            listing.append(f"{change.symbol} {change.text}", style=SYMBOL_STYLES.get(change.symbol))
            if change.destructive:
                listing.append("  (destructive)", style="destructive")
            listing.append("\n")
        if listing and not self.quiet:
            listing.rstrip()
            self.out.print(listing, soft_wrap=True)

    def discovered(self, modules: Iterable[str], tables_per_metadata: Iterable[list[str]]) -> None:
        """What the diff is based on: a missing module here explains a surprising drop."""
        self.say(Text(f"  Models: {', '.join(modules) or '(none)'}", style="muted"))
        for index, tables in enumerate(tables_per_metadata, start=1):
            self.say(Text(f"  Tables (metadata {index}): {', '.join(tables) or '(none)'}", style="muted"))
        self.say("")

    def note(self, text: str) -> None:
        self.err.print(Text(f"note: {text}", style="muted"), soft_wrap=True)

    def verbose_note(self, text: str | None) -> None:
        """With -v only, on stderr (stdout may be JSON): how the tool reads something it was given."""
        if self.verbose and text:
            self.err.print(Text(f"note: {text}", style="muted"), soft_wrap=True)

    def warning(self, text: str) -> None:
        self.err.print(Text(f"warning: {text}", style="pending"), soft_wrap=True)

    def dumped(self, info: DumpInfo, root: Path) -> None:
        self.result_line(
            f"  Dumped {self.on(info.database)} to {_shown(info.path, root)} ({info.statements} statements)"
        )

    def prune_plan(self, plan: PrunePlan, root: Path) -> None:
        """Everything a prune would change, shown before the question (and with --pretend)."""
        for text, style in prune_plan_lines(plan, root):
            self.say(Text(text, style=style or ""))

    def pruned(self, result: Pruned, root: Path) -> None:
        if result.dump is not None:
            self.dumped(result.dump, root)
        plan = result.plan
        if plan.nothing_to_prune:
            self.result_line(f"  Nothing to prune: {plan.head.name} is the only migration.")
        elif plan.pretend:
            files = _plural(len(plan.deleted), "migration file")
            self.result_line(f"  Would prune {files}; nothing was changed (--pretend).")
        else:
            self.result_line(
                f"  Pruned {_plural(len(plan.deleted), 'migration file')}; {plan.head.name} is now "
                "the squash migration."
            )

    def created(self, path: Path, root: Path) -> None:
        self.result_line(f"  Created {_shown(path, root)}")

    # errors

    def error(self, exc: ManageError) -> None:
        self._end_live(keep=True)  # the running migration's line stays, to say where it stopped
        self.err.print(Text(f"error: {exc.message}", style="error"), soft_wrap=True)
        if exc.hint:
            self.err.print(Text(f"hint: {exc.hint}", style="hint"), soft_wrap=True)

    def traceback(self, text: str) -> None:
        self._end_live(keep=True)
        self.err.print(Text(text), end="")
