"""Writes each migration's ledger row inside that migration's transaction and reports progress."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

from project import ledger

if TYPE_CHECKING:
    from project.wipe import Dropped


@dataclass(frozen=True)
class StepDone:
    """One migration finished (applied or rolled back); `sql` is set when pretending."""

    revision: str
    name: str
    upgrade: bool
    duration_ms: float
    sql: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RunStarted:
    """Announced once before the first step, so the heading can name the database and batch."""

    database: str
    batch: int | None
    count: int
    upgrade: bool
    pretend: bool = False


@dataclass(frozen=True)
class DumpLoaded:
    """An empty database was first given the schema dump, so fewer migrations remain."""

    path: Path
    statements: int


@dataclass(frozen=True)
class LockWaiting:
    """Another process holds the migration lock; announced once before waiting for it."""

    holder: str
    timeout: float


ProgressCallback = Callable[["StepDone | RunStarted | DumpLoaded | LockWaiting | Dropped"], None]


def checksum(path: Path) -> str:
    """What the ledger stores to notice a migration file edited after it ran."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ignore(_event: StepDone | RunStarted | DumpLoaded | LockWaiting | Dropped) -> None:
    return None


@dataclass
class Recorder:
    """Alembic's on_version_apply hook: runs after the version table update, before the commit.

    With `deferred` set (a batch in one transaction) the ledger rows are kept until `flush`,
    which the batch calls once before its commit: a few statements instead of two per migration.
    """

    batch: int | None = None
    batch_per_step: bool = False
    pretend: bool = False
    deferred: bool = False
    on_progress: ProgressCallback = _ignore
    done: list[StepDone] = field(default_factory=list)
    captured_sql: list[str] = field(default_factory=list)
    mark: float = field(default_factory=perf_counter)
    unwritten_applied: list[ledger.AppliedRow] = field(default_factory=list)
    unwritten_reverted: list[str] = field(default_factory=list)

    def restart_clock(self) -> None:
        self.mark = perf_counter()

    def elapsed_ms(self) -> float:
        return (perf_counter() - self.mark) * 1000

    def __call__(self, *, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        duration_ms = self.elapsed_ms()
        script = step.up_revision
        path = Path(script.path)
        if not self.pretend and not ctx.as_sql:
            self._write_ledger(ctx.connection, step, path, duration_ms)
        sql = tuple(self.captured_sql) if self.pretend else None
        self.captured_sql.clear()
        event = StepDone(step.up_revision_id, path.stem, step.is_upgrade, duration_ms, sql)
        self.done.append(event)
        self.on_progress(event)
        self.restart_clock()

    def _write_ledger(self, connection: Any, step: Any, path: Path, duration_ms: float) -> None:
        if not step.is_upgrade:
            self.unwritten_reverted.extend(step.up_revision_ids)
        else:
            if self.batch is None:
                # Plain `alembic upgrade`: start a batch of our own so status stays complete.
                ledger.ensure_ledger(connection)
                self.batch = ledger.next_batch(ledger.read_ledger(connection))
            row = ledger.applied_now(step.up_revision_id, path.stem, self.batch, duration_ms, checksum(path))
            self.unwritten_applied.append(row)
            if self.batch_per_step:
                self.batch += 1
        if not self.deferred:
            self.flush(connection)

    @property
    def has_unwritten(self) -> bool:
        return bool(self.unwritten_applied or self.unwritten_reverted)

    def flush(self, connection: Any) -> None:
        """Write the ledger changes kept so far, in the caller's transaction."""
        if self.unwritten_reverted:
            ledger.record_reverted(connection, tuple(self.unwritten_reverted))
        ledger.record_applied(connection, self.unwritten_applied)
        self.unwritten_reverted.clear()
        self.unwritten_applied.clear()
