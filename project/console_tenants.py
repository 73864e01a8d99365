"""What tenants:* commands print: a line per tenant, a live progress line on a terminal, one
summary. Beside console.py (which it builds on) so that module keeps to single databases."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from time import monotonic
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text

from manage_migrations.formatting import aligned, duration, plural
from manage_migrations.ticker import Ticker
from manage_migrations.verbs.tenants import changed_anything, outcome_counts

if TYPE_CHECKING:
    from manage_migrations.console import Output
    from manage_migrations.tenancy.fanout import FanOutEvent, FanOutResult, TenantDone, TenantStarted
    from manage_migrations.verbs.tenants import Provided, TenantStatus

MAX_FAILURES_SHOWN = 20


class TenantRun:
    """The display of one fan-out: `verb` is what a migration count is followed by (applied,
    rolled back). Lines come from the main thread, the progress line from a ticker thread."""

    def __init__(self, output: Output, verb: str, total: int) -> None:
        self.output = output
        self.verb = verb
        self.total = total
        self.finished = 0
        self.failures = 0
        self.running: dict[str, float] = {}
        self.started = monotonic()
        self._lock = threading.Lock()
        self._ticker: Ticker | None = None
        self._width = output.width

    def event(self, event: FanOutEvent) -> None:
        from manage_migrations.tenancy.fanout import TenantStarted

        if isinstance(event, TenantStarted):
            self._started(event)
        else:
            self._done(event)

    def _started(self, event: TenantStarted) -> None:
        with self._lock:
            self.running[event.tenant] = event.started
        if self._ticker is None and self.output.live:
            self._ticker = Ticker(self._draw)

    def _done(self, done: TenantDone) -> None:
        with self._lock:
            self.running.pop(done.tenant, None)
            self.finished += 1
            self.failures += done.failed
            quiet_success = self.output.live and done.failure is None and not changed_anything(done)
            if not quiet_success:
                self._erase()
                self.output.say_line(self._line(done), flush=True)

    def _line(self, done: TenantDone) -> list[tuple[str, str | None]]:
        if done.interrupted:
            label, style, what = "INTERRUPTED", "warning", ""
        elif done.failure is not None:
            count = len(getattr(done.value, "steps", ()) or ())
            label, style, what = "FAIL", "fail", f"{count} {self.verb} before " if count else ""
        elif changed_anything(done):
            label, style = "DONE", "done"
            what = f"{plural(len(done.value.steps), 'migration')} {self.verb}  "
        else:
            label, style, what = idle(self.verb), "muted", ""
        return self.output.step_parts(done.tenant, f"{what}{duration(done.seconds * 1000)}", label, style)

    def _draw(self) -> None:
        with self._lock:
            now = monotonic()
            parts = [f"{self.finished}/{self.total} tenants", f"{duration((now - self.started) * 1000)}"]
            if self.failures:
                parts.insert(1, f"{self.failures} failed")
            if self.running:
                slowest, since = min(self.running.items(), key=lambda item: item[1])
                parts.append(f"slowest running: {slowest} {duration((now - since) * 1000)}")
            text = "  " + " · ".join(parts)
            self.output.say_line([("\r", None), (text[: self._width - 1], "muted")], end="\x1b[K")

    def _erase(self) -> None:
        if self._ticker is not None:
            self.output.out.file.write("\r\x1b[K")

    def finish(self, result: FanOutResult, action: str, *, tracebacks: bool = False) -> None:
        """Stop the progress line, then the summary and every failure with its error."""
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
            self.output.out.file.write("\r\x1b[K")
            self.output.out.file.flush()
        self.output.say("")
        self.output.result_line(summary(result, action))
        failures(self.output, result.done, tracebacks)
        if result.not_started:
            shown = ", ".join(result.not_started[:10]) + (" ..." if len(result.not_started) > 10 else "")
            self.output.err.print(
                Text(f"not started: {plural(len(result.not_started), 'tenant')} ({shown})", style="warning"),
                soft_wrap=True,
            )


def failures(output: Output, done: Sequence[TenantDone], tracebacks: bool) -> None:
    """The first tenants' errors on stderr (message, the traceback if asked for and there is one,
    hint), then how many more there are."""
    failed = [item for item in done if item.failure is not None]
    for item in failed[:MAX_FAILURES_SHOWN]:
        failure = item.failure
        assert failure is not None
        style = "warning" if item.interrupted else "error"
        output.err.print(Text(f"{item.tenant}: {failure.message}", style=style), soft_wrap=True)
        if tracebacks and failure.traceback:
            output.traceback(failure.traceback)
        if failure.hint:
            output.err.print(Text(f"  hint: {failure.hint}", style="hint"), soft_wrap=True)
    if len(failed) > MAX_FAILURES_SHOWN:
        output.err.print(Text(f"... and {len(failed) - MAX_FAILURES_SHOWN} more"), soft_wrap=True)


def idle(verb: str) -> str:
    """What a tenant with nothing to do is: up to date, or with nothing to roll back."""
    return "nothing to roll back" if verb == "rolled back" else "up to date"


def summary(result: FanOutResult, action: str) -> str:
    """`1000 tenants: 12 migrated, 987 up to date, 1 failed in 8.4 s`."""
    counts = outcome_counts(result)
    parts = [f"{counts['changed']} {action}", f"{counts['unchanged']} {idle(action)}"]
    for key, label in (("failed", "failed"), ("interrupted", "interrupted"), ("not_started", "not started")):
        if counts[key]:
            parts.append(f"{counts[key]} {label}")
    return f"{plural(counts['tenants'], 'tenant')}: {', '.join(parts)} in {duration(result.seconds * 1000)}."


def status(
    output: Output, result: FanOutResult, *, tracebacks: bool = False, only_pending: bool = False
) -> None:
    """One line per tenant: where it lives, the revision it is at, pending, failed (with
    `only_pending`: the tenants that have pending migrations, and those that could not be read)."""
    header: list[tuple[str, str | None]] = [
        (title, "bold") for title in ("Tenant", "At", "Pending", "Failed", "Where")
    ]
    rows: list[list[tuple[str, str | None]]] = [header]
    for done in result.done:
        if only_pending and done.failure is None and not done.value.pending:
            continue
        rows.append(_status_cells(done))
    for line in aligned(rows, cell_len):
        output.say_line(line)
    output.say("")
    output.result_line(status_summary(result))
    failures(output, result.done, tracebacks)


def _status_cells(done: TenantDone) -> list[tuple[str, str | None]]:
    if done.failure is not None:
        return [(done.tenant, None), ("unreadable", "fail"), ("", None), ("", None), ("", None)]
    state: TenantStatus = done.value
    at = ", ".join(state.at) or "(nothing applied)"
    pending_style = "pending" if state.pending else "muted"
    failed = ", ".join(state.failed)
    return [
        (done.tenant, None),
        (at, "missing" if state.problem else None),
        (str(state.pending), pending_style),
        (failed or "-", "fail" if failed else "muted"),
        (state.where, "muted"),
    ]


def status_summary(result: FanOutResult) -> str:
    readable = [done.value for done in result.done if done.failure is None]
    behind = sum(1 for state in readable if state.pending)
    failed = sum(1 for state in readable if state.failed or state.problem)
    parts = [f"{len(readable) - behind} up to date", f"{behind} with pending migrations"]
    if failed:
        parts.append(f"{failed} with a failed migration or a history problem")
    if len(result.done) > len(readable):
        parts.append(f"{len(result.done) - len(readable)} unreadable")
    return f"{plural(len(result.done), 'tenant')}: {', '.join(parts)}."


def status_json(result: FanOutResult) -> None:
    tenants: list[dict[str, Any]] = []
    for done in result.done:
        entry: dict[str, Any] = {"tenant": done.tenant}
        if done.failure is not None:
            entry["error"] = done.failure.message
        else:
            state: TenantStatus = done.value
            entry |= {
                "where": state.where,
                "at": list(state.at),
                "applied": state.applied,
                "pending": state.pending,
                "failed": list(state.failed),
                "problem": state.problem,
            }
        tenants.append(entry)
    sys.stdout.write(json.dumps({"tenants": tenants}, indent=2) + "\n")
    sys.stdout.flush()


def provided(output: Output, provided: Provided) -> None:
    from manage_migrations.core.session import shown
    from manage_migrations.database import parse_url

    settings = provided.task.settings
    where = shown(parse_url(settings.database_url, settings.root), settings.schema)
    verb = "Created" if provided.created else "Found existing"
    loaded = ""
    if provided.dump is not None and provided.from_dump is not None:
        loaded = f" from {provided.dump.name} ({provided.from_dump} statements)"
    output.say(Text(f"  {verb} tenant {provided.task.tenant} on {where}{loaded}\n"))
