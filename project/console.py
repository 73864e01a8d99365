"""The only module that prints (and imports rich): theme, step lines, tables, errors."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import COLOR_SYSTEMS, Console
from rich.prompt import Confirm, Prompt
from rich.style import Style
from rich.text import Text
from rich.theme import Theme

if TYPE_CHECKING:
    from pathlib import Path

    from project.core.events import Event, FailedStep, LockWaiting, RunResult, RunStarted, StepDone
    from project.errors import ManageError
    from project.history import StatusResult, StatusRow
    from project.integrity import EditedMigration
    from project.squash import Pruned, PrunePlan
    from project.verbs.inspect import CheckResult, HistoryEntry, SqlResult
    from project.verbs.maintain import Accepted, Resolved
    from project.wipe import Dropped

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

    def __init__(self, quiet: bool = False, verbose: bool = False) -> None:
        self.quiet = quiet
        self.verbose = verbose
        # Piped output is read by scripts and people alike: never truncate it to 80 columns.
        width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else PIPED_WIDTH
        self.out = Console(theme=THEME, highlight=False, width=width)
        self._styles: dict[str, Style] = {}
        self.err = Console(theme=THEME, highlight=False, stderr=True, width=width)

    @functools.cached_property
    def width(self) -> int:
        """Measured once: asking the terminal costs a system call, once per migration line."""
        return min(self.out.width, MAX_LINE_WIDTH)

    def say(self, text: str | Text, style: str | None = None) -> None:
        if not self.quiet:
            self.out.print(text, style=style)

    def say_line(self, parts: Iterable[tuple[str, str | None]]) -> None:
        """One line of (text, theme style) parts, written without rich's layout pass (~0.3 ms a
        line): per-migration lines and long status tables have nothing to wrap or measure."""
        if self.quiet:
            return
        system = COLOR_SYSTEMS.get(self.out.color_system or "")
        rendered = [
            text if name is None or system is None else self._style(name).render(text, color_system=system)
            for text, name in parts
        ]
        self.out.file.write("".join(rendered) + "\n")

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self.out.get_style(name)
            self._styles[name] = style = style.without_color if self.out.no_color else style
        return style

    def _aligned(self, rows: list[list[tuple[str, str | None]]]) -> None:
        """Columns padded to their widest cell, three spaces apart: a table with a thousand rows
        in milliseconds, where rich's Table layout takes a second."""
        widths = [max(cell_len(text) for text, _ in column) for column in zip(*rows, strict=True)]
        for cells in rows:
            filled = [index for index, (text, _) in enumerate(cells) if text]
            parts: list[tuple[str, str | None]] = []
            for index, (text, style) in enumerate(cells[: filled[-1] + 1] if filled else []):
                if index:
                    parts.append((" " * (widths[index - 1] - cell_len(cells[index - 1][0]) + 3), None))
                parts.append((text, style))
            self.say_line(parts)

    def result_line(self, text: str) -> None:
        """Printed even with --quiet: the one line that says what happened."""
        self.out.print(text)

    # migrate / rollback

    def progress(self, event: Event) -> None:
        from project.core.events import (
            DumpLoaded,
            LedgerReconciled,
            LockWaiting,
            RunStarted,
            StepDone,
            StepStarted,
        )

        if isinstance(event, StepStarted):
            return
        if isinstance(event, LedgerReconciled):
            self.note(event.note)
        elif isinstance(event, LockWaiting):
            self.lock_waiting(event)
        elif isinstance(event, RunStarted):
            self.run_started(event)
        elif isinstance(event, DumpLoaded):
            self.say(Text(f"  Loaded schema dump {event.path.name} ({event.statements} statements)"))
        elif isinstance(event, StepDone):
            self.step_done(event)
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
        if event.pretend:
            action = "Pretending to run"
        elif event.fake:
            count = _plural(event.count, "migration")
            what = "as applied" if event.upgrade else "as rolled back"
            self.say(Text(f"  Recording {count} {what} on {event.database} (not run)"))
            self.say("")
            return
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
        self.say_line(
            [
                ("  " + name, None),
                (" " + "." * dots + " ", "muted"),
                (took, "muted"),
                (" ", None),
                (label, style),
            ]
        )

    def edited(self, edited: Iterable[EditedMigration]) -> None:
        """Applied migrations changed since they ran: a warning each, with the way to accept them."""
        for item in edited:
            self.err.print(
                Text(
                    f"warning: {item.name} was edited after it ran (checksum changed); review it, then run "
                    f"`python manage.py migrate:rehash {item.revision}`",
                    style="warning",
                ),
                soft_wrap=True,
            )

    def run_finished(self, result: RunResult, verb: str, nothing: str) -> None:
        self.edited(result.edited)
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
        where = ", ".join(failed.at_names) if failed.at_names else "no migration (empty history)"
        if failed.commit_failed:
            self.say("")
            self.err.print(Text(f"error: the COMMIT failed: {failed.error}", style="error"), soft_wrap=True)
            self.err.print(
                Text(
                    f"The whole transaction was rolled back: none of {', '.join(failed.rolled_back)} was "
                    f"applied, whatever the lines above say. The database is at {where}."
                ),
                soft_wrap=True,
            )
            if failed.hint:
                self.err.print(Text(f"hint: {failed.hint}", style="hint"), soft_wrap=True)
            return
        self._step_line(failed.name, failed.duration_ms, "FAIL", "fail")
        self.say("")
        self.err.print(Text(f"error: {failed.name} failed: {failed.error}", style="error"))
        if failed.outside_transaction:
            self.err.print(
                Text(
                    f"{failed.name} ran outside a transaction, so what it did before the error stays; "
                    f"it is recorded as failed and migrate refuses to run until you inspect the database, "
                    f"undo or finish its work, and run `python manage.py migrate:resolve {failed.revision}`. "
                    f"The database is at {where}."
                ),
                soft_wrap=True,
            )
            if failed.statements:
                self.err.print(Text("These statements ran before the error and may have taken effect:"))
                for statement in failed.statements:
                    self.err.print(Text(_indented(statement, "  ")), soft_wrap=True)
        elif failed.transactional:
            self.err.print(
                Text(
                    f"{failed.name} was rolled back; {_plural(applied, 'migration')} {verb} "
                    f"before it. The database is at {where}."
                )
            )
        else:
            self.err.print(
                Text(
                    f"{failed.name} failed on a database that commits DDL immediately, so nothing "
                    f"was rolled back. The version table is at {where}."
                )
            )
            if failed.statements:
                self.err.print(Text("These statements ran before the error and may have taken effect:"))
                for statement in failed.statements:
                    self.err.print(Text(_indented(statement, "  ")), soft_wrap=True)
            else:
                self.err.print(Text("No statement of it ran before the error."))
            self.err.print(Text("Check the database before migrating again.", style="error"))
        if failed.hint:
            self.err.print(Text(f"hint: {failed.hint}", style="hint"), soft_wrap=True)

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

    def status(self, result: StatusResult, only_pending: bool = False) -> None:
        if result.note:
            self.note(result.note)
        rows = [row for row in result.rows if not only_pending or row.state == "Pending"]
        if not rows:
            self.result_line("No migrations." if not only_pending else "No pending migrations.")
            return
        header = ["Migration", "Status", "Batch", "Applied at", "Took"]
        header += ["Revision"] if self.verbose else []
        body: list[list[tuple[str, str | None]]] = []
        for row in rows:
            cells = [
                (row.name, None),
                (row.state + _status_notes(row), STATE_STYLES.get(row.state)),
                (str(row.batch) if row.batch is not None else "", None),
                (row.applied_at.strftime("%Y-%m-%d %H:%M:%S") if row.applied_at else "", None),
                (f"{row.duration_ms:.0f} ms" if row.duration_ms is not None else "", None),
            ]
            body.append(cells + ([(row.revision, None)] if self.verbose else []))
        self._aligned([[(title, "bold") for title in header], *body])
        parts = [f"{result.count('Ran')} ran", f"{result.count('Pending')} pending"]
        for state in ("Failed", "Missing"):
            if result.count(state):
                parts.append(f"{result.count(state)} {state.lower()}")
        edited = sum(1 for row in result.rows if row.edited)
        if edited:
            parts.append(
                f"{edited} edited since it ran" if edited == 1 else f"{edited} edited since they ran"
            )
        squashed = sum(len(row.replaces) for row in result.rows)
        if squashed:
            parts.append(f"{_plural(squashed, 'pruned migration')} squashed")
        self.result_line(", ".join(parts) + ".")

    def status_json(self, result: StatusResult) -> None:
        migrations = [
            {
                "name": row.name,
                "revision": row.revision,
                "status": row.state.lower(),
                "batch": row.batch,
                "applied_at": row.applied_at.isoformat() if row.applied_at else None,
                "duration_ms": row.duration_ms,
                "edited": row.edited,
                "replaces": list(row.replaces),
            }
            for row in result.rows
        ]
        counts = {state.lower(): result.count(state) for state in ("Ran", "Pending", "Failed", "Missing")}
        self._json({"database": result.database, "migrations": migrations, "counts": counts})

    # migrate:check

    def check(self, result: CheckResult) -> None:
        if result.ok:
            self.result_line("All checks passed.")
            return
        for problem in result.problems:
            self.err.print(Text(f"error: {problem.message}", style="error"), soft_wrap=True)
            for detail in problem.details:
                self.err.print(Text(f"  {detail}"), soft_wrap=True)
        if not result.drift_checked:
            reason = result.drift_skipped or "that needs a database at head"
            self.err.print(Text(f"Models were not compared: {reason}.", style="muted"), soft_wrap=True)
        self.result_line(f"{_plural(len(result.problems), 'problem')} found.")

    def check_json(self, result: CheckResult) -> None:
        problems = [
            {"kind": problem.kind, "message": problem.message, "details": list(problem.details)}
            for problem in result.problems
        ]
        self._json(
            {
                "ok": result.ok,
                "database": result.database,
                "drift_checked": result.drift_checked,
                "problems": problems,
            }
        )

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
        for item in result.migrations:
            self.say(Text(f"  {item.name}: checksum {item.stored[:12]} -> {item.current[:12]}"))
        count = len(result.migrations)
        self.result_line(f"  Accepted the current file of {_plural(count, 'migration')}.")

    def resolved(self, result: Resolved) -> None:
        self.result_line(f"  {result.name} is no longer marked as failed; run migrate to apply it again.")

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

    def dumped(self, path: Path, root: Path, statements: int) -> None:
        self.result_line(f"  Dumped the schema to {_shown(path, root)} ({statements} statements)")

    def prune_plan(self, plan: PrunePlan, root: Path) -> None:
        """Everything a prune would change, shown before the question (and with --pretend)."""
        if plan.nothing_to_prune:
            return
        head = plan.head
        self.say(Text(f"  The {plan.dialect} dump at {head.name} ({head.revision}) covers every migration:"))
        for path in plan.deleted:
            self.say(Text(f"    delete   {_shown(path, root)}", style="drop"))
        squash = f"becomes the squash migration of {_plural(len(plan.replaces), 'pruned migration')}"
        self.say(Text(f"    rewrite  {_shown(head.path, root)}  ({squash})", style="alter"))
        for path in plan.written:
            self.say(Text(f"    write    {_shown(path, root)}", style="add"))
        for path in plan.obsolete:
            self.say(Text(f"    delete   {_shown(path, root)}  (replaced)", style="drop"))
        self.say(
            Text(
                f"  New databases can be built on {', '.join(plan.dialects)}; other backends need a "
                "dump at this revision first (migrate:dump --database-url ...).",
                style="muted",
            )
        )
        self.say(Text("  Existing databases at this revision or later keep working.", style="muted"))

    def pruned(self, result: Pruned, root: Path) -> None:
        if result.dump is not None:
            self.dumped(result.dump.path, root, result.dump.statements)
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
        self.err.print(Text(f"error: {exc.message}", style="error"), soft_wrap=True)
        if exc.hint:
            self.err.print(Text(f"hint: {exc.hint}", style="hint"), soft_wrap=True)

    def traceback(self, text: str) -> None:
        self.err.print(Text(text), end="")


def _status_notes(row: StatusRow) -> str:
    notes = [f"squashes {len(row.replaces)}"] if row.replaces else []
    return "".join(f", {note}" for note in [*notes, *(["edited"] if row.edited else [])])


def _shown(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return path


def _extra_objects(dropped: Any) -> list[tuple[int, str]]:
    return [
        (dropped.views, "view"),
        (dropped.sequences, "sequence"),
        (dropped.types, "enum type"),
        (dropped.virtual_tables, "virtual table"),
    ]


def _indented(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
