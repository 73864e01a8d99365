"""Runs a plan on one connection and returns a structured outcome: steps committed, the step (or
the COMMIT) that failed, or an interruption, each with where the database now stands.

Each pending revision file is loaded once, one `Operations` is bound to one `MigrationContext`,
and `upgrade()` / `downgrade()` are called in plan order; Alembic's own loop is kept only for
plain `alembic` runs. Where DDL is transactional (PostgreSQL, SQLite) consecutive migrations share
one transaction with a SAVEPOINT each and alembic_version + the ledger are written once before
the COMMIT; a migration that commits by itself runs in a transaction of its own. Signals are only
let through while migration code runs, so bookkeeping and COMMIT are never cut in half.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from types import ModuleType
from typing import TYPE_CHECKING, Any

from manage_migrations import compat, ledger
from manage_migrations.checksums import Checksums
from manage_migrations.core import interrupts, store
from manage_migrations.core.events import FailedStep, ProgressCallback, StepDone, StepStarted
from manage_migrations.core.graph import load_module
from manage_migrations.errors import ConnectionLost, Interrupted, ManageError
from manage_migrations.formatting import plural

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from manage_migrations.core.planner import Plan, Step

TRANSACTIONAL_DDL = frozenset({"postgresql", "sqlite"})
SELF_COMMIT = re.compile(r"^\s*(COMMIT|END|ROLLBACK)\s*(;|$|\s+(WORK|TRANSACTION)\b)", re.IGNORECASE)
READ_ONLY = re.compile(r"^\s*(SELECT|SHOW|SET|PRAGMA|EXPLAIN|DESCRIBE|WITH\s+\w+\s+AS\s*\(\s*SELECT)\b", re.I)
DML = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|MERGE)\b", re.IGNORECASE)
CATALOG_MARKERS = ("pg_catalog", "information_schema", "sqlite_master", "sqlite_temp_master")
# On PostgreSQL, a DEFERRABLE constraint a migration violates is checked at its own end, inside a
# throwaway savepoint (which restores the constraint mode), instead of at the batch's COMMIT.
PG_CHECK_DEFERRED = (
    "SAVEPOINT manage_check; SET CONSTRAINTS ALL IMMEDIATE; "
    "ROLLBACK TO SAVEPOINT manage_check; RELEASE SAVEPOINT manage_check"
)


@dataclass(frozen=True)
class RunOptions:
    batch: int | None
    batch_per_step: bool = False
    fake: bool = False


@dataclass(frozen=True)
class Outcome:
    done: tuple[StepDone, ...]
    failed: FailedStep | None = None


class _SelfCommitting(Exception):
    """A statement of a migration inside the shared batch transaction would commit it."""


def is_bookkeeping(statement: str) -> bool:
    """Version-table writes and the reflection queries Alembic runs are not the migration's SQL."""
    lowered = statement.lstrip().lower()
    if any(table in lowered for table in ledger.TOOL_TABLES):
        return True
    if lowered.startswith(("pragma", "begin", "savepoint", "release savepoint", "rollback to savepoint")):
        return True
    return lowered.startswith(("select", "show")) and any(m in lowered for m in CATALOG_MARKERS)


def declared_outside_transaction(module: ModuleType) -> bool:
    """A migration file opts out of its transaction with a module-level `transactional = False`."""
    return getattr(module, "transactional", True) is False


def needs_own_transaction(module: ModuleType, path: Path) -> bool:
    """A migration that commits by itself (`transactional = False`, or autocommit_block())."""
    if declared_outside_transaction(module):
        return True
    return "autocommit_block" in path.read_text(encoding="utf-8", errors="replace")


@dataclass
class _Step:
    planned: Step
    module: ModuleType
    index: int
    own_transaction: bool  # it commits by itself: never inside the shared batch transaction

    @property
    def function(self) -> Callable[[], Any]:
        return self.module.upgrade if self.planned.upgrade else self.module.downgrade


@dataclass
class Executor:
    """One plan on one connection. `verify_lock` raises when the migration lock was lost."""

    connection: Connection
    root: Path
    scrub: Callable[[str], str]
    on_progress: ProgressCallback
    verify_lock: Callable[[], None]
    names: Callable[[tuple[str, ...]], tuple[str, ...]]
    shown_url: str = "the database"
    done: list[StepDone] = field(default_factory=list)
    _heads: tuple[str, ...] = ()
    _running: str | None = None
    _guard: bool = False
    _statements: list[str] = field(default_factory=list)

    @property
    def transactional(self) -> bool:
        return self.connection.dialect.name in TRANSACTIONAL_DDL

    def run(self, plan: Plan, options: RunOptions) -> Outcome:
        """The plan's outcome; ConnectionLost (exit 4) when the server went away meanwhile,
        whichever statement noticed it first."""
        try:
            outcome = self._run(plan, options)
        except ManageError:
            raise
        except Exception as exc:
            if self.connection.invalidated:
                raise self._lost(exc) from None
            raise
        if outcome.failed is not None and self.connection.invalidated:
            raise self._lost(None)
        return outcome

    def _lost(self, exc: Exception | None) -> ConnectionLost:
        reason = compat.describe_error(exc) if exc is not None else "the connection was closed"
        during = f" during {self._running}" if self._running else ""
        committed = plural(len(self.done), "migration")
        return ConnectionLost(
            f"lost the connection to {self.shown_url}{during}: {self.scrub(reason.splitlines()[0])}; "
            f"the server rolls back what was not committed ({committed} committed before)",
            hint="once the server is back, migrate again: only what is still pending runs",
        )

    def _run(self, plan: Plan, options: RunOptions) -> Outcome:
        steps = []
        for index, planned in enumerate(plan.steps):
            module = load_module(planned.path, self.root)
            steps.append(_Step(planned, module, index, needs_own_transaction(module, planned.path)))
        alone = {step.index for step in steps if step.own_transaction}
        self._heads = plan.start
        context = compat.migration_context(self.connection)
        guard = interrupts.Guard(self.connection, batch=self.transactional)
        try:
            with guard, compat.operations_bound(context), self._watching():
                with self.connection.begin():
                    store.ensure_tables(self.connection)
                batch, index = options.batch, 0
                while index < len(steps):
                    if self.transactional and index not in alone:
                        end = next((i for i in range(index, len(steps)) if i in alone), len(steps))
                        ran, failed, batch = self._run_shared(
                            context, guard, steps[index:end], options, batch
                        )
                        if ran < end - index and failed is None:
                            alone.add(index + ran)  # it commits by itself: a transaction of its own
                        index += ran
                    else:
                        failed, batch = self._run_alone(context, guard, steps[index], options, batch)
                        index += 1
                    if failed is not None:
                        return Outcome(tuple(self.done), failed)
        except KeyboardInterrupt:
            # Before the first step began, or after the last one was committed.
            step = steps[len(self.done)] if len(self.done) < len(steps) else None
            raise self._interrupted(guard, step) from None
        return Outcome(tuple(self.done))

    # shared transaction

    def _run_shared(
        self,
        context: Any,
        guard: interrupts.Guard,
        steps: list[_Step],
        options: RunOptions,
        batch: int | None,
    ) -> tuple[int, FailedStep | None, int | None]:
        """Steps in one transaction, a savepoint each. Returns how many were committed, the failure
        if one failed, and the next batch number. A step that commits by itself is rolled back to
        its savepoint and left for `_run_alone`."""
        transaction = self.connection.begin()
        compat.bind_transaction(context, transaction)
        savepoint = compat.Savepoint(self.connection)
        pending: list[tuple[_Step, StepDone, int | None]] = []
        failure: BaseException | None = None
        failed_step: _Step | None = None
        started = perf_counter()
        self._guard = True
        try:
            for step in steps:
                failed_step = step
                started = self._announce(step)
                savepoint.begin()
                try:
                    if not options.fake:
                        guard.body(step.index, step.function)()
                    if self.connection.dialect.name == "postgresql":
                        savepoint.execute(PG_CHECK_DEFERRED)
                except BaseException:
                    if interrupts.transaction_alive(self.connection):
                        savepoint.rollback()
                    raise
                savepoint.release()
                done = StepDone(step.planned.revision, step.planned.name, step.planned.upgrade, _ms(started))
                pending.append((step, done, batch))
                self.on_progress(done)
                if batch is not None and options.batch_per_step and step.planned.upgrade:
                    batch += 1
                failed_step = None
        except _SelfCommitting:
            pass
        except BaseException as exc:
            failure = exc
        finally:
            self._guard = False
        if failure is not None and not interrupts.transaction_alive(self.connection):
            # An interrupted SQLite write statement ended the whole transaction, savepoints and all.
            guard.lost_batch = len(pending)
            transaction.rollback()
            assert failed_step is not None
            raise self._interrupted(guard, failed_step) from None
        committed = self._commit(transaction, pending)
        if committed is not None:
            return 0, committed, batch
        self.done.extend(done for _, done, _ in pending)
        if failure is None:
            return len(pending), None, batch
        assert failed_step is not None
        interrupted = isinstance(failure, KeyboardInterrupt) or guard.signalled
        failed = self._failed(
            guard, failed_step, failure, started, transactional=True, interrupted=interrupted
        )
        return len(pending), failed, batch

    def _commit(
        self, transaction: Any, pending: list[tuple[_Step, StepDone, int | None]]
    ) -> FailedStep | None:
        """Write alembic_version and the ledger for the finished steps, check the lock, COMMIT.
        A failure here rolls back the whole transaction and is reported as such."""
        if not pending:
            transaction.rollback()
            return None
        heads = pending[-1][0].planned.heads_after
        try:
            store.replace_version(self.connection, self._heads, heads)
            self._write_ledger(pending)
            self.verify_lock()
            transaction.commit()
        except store.VersionConflict:
            transaction.rollback()
            raise
        except Exception as exc:
            if transaction.is_active:
                transaction.rollback()
            names = tuple(step.planned.name for step, _, _ in pending)
            return FailedStep(
                name="COMMIT",
                revision="",
                error=self.scrub(compat.describe_error(exc)),
                duration_ms=0.0,
                at_revisions=self._heads,
                at_names=self.names(self._heads),
                transactional=True,
                commit_failed=True,
                rolled_back=names,
            )
        self._heads = heads
        return None

    def _write_ledger(self, finished: list[tuple[_Step, StepDone, int | None]]) -> None:
        checksums = Checksums(finished[0][0].planned.path.parent)
        applied = [
            ledger.applied_now(
                done.revision, done.name, batch or 0, done.duration_ms, checksums.of(step.planned.path)
            )
            for step, done, batch in finished
            if step.planned.upgrade
        ]
        checksums.save()
        reverted = tuple(done.revision for step, done, _ in finished if not step.planned.upgrade)
        if reverted:
            ledger.record_reverted(self.connection, reverted)
        ledger.record_applied(self.connection, applied)

    # one transaction for one step

    def _run_alone(
        self, context: Any, guard: interrupts.Guard, step: _Step, options: RunOptions, batch: int | None
    ) -> tuple[FailedStep | None, int | None]:
        started = self._announce(step)
        compat.bind_transaction(context, self.connection.begin())
        outside = declared_outside_transaction(step.module)
        try:
            if not options.fake:
                body = guard.body(step.index, step.function)
                if outside:
                    with context.autocommit_block():
                        body()
                else:
                    body()
        except BaseException as exc:
            transaction = compat.bound_transaction(context)
            if transaction is not None and transaction.is_active:
                transaction.rollback()
            elif self.connection.in_transaction():
                self.connection.rollback()
            interrupted = isinstance(exc, KeyboardInterrupt) or guard.signalled
            failed = self._failed(guard, step, exc, started, transactional=False, interrupted=interrupted)
            return failed, batch
        done = StepDone(step.planned.revision, step.planned.name, step.planned.upgrade, _ms(started))
        transaction = compat.bound_transaction(context) or self.connection.begin()
        commit_failed = self._commit(transaction, [(step, done, batch)])
        if commit_failed is not None:
            return commit_failed, batch
        self.done.append(done)
        self.on_progress(done)
        if batch is not None and options.batch_per_step and step.planned.upgrade:
            batch += 1
        return None, batch

    # reporting

    def _announce(self, step: _Step) -> float:
        self._running = step.planned.name
        self.on_progress(StepStarted(step.planned.revision, step.planned.name, step.planned.upgrade))
        self._statements.clear()
        return perf_counter()

    def _took_effect(self, step: _Step) -> tuple[str, ...]:
        """Statements of the failed step that may have been committed despite the failure."""
        statements = [s for s in self._statements if not is_bookkeeping(s)]
        outside = step.own_transaction
        self_committed = any(SELF_COMMIT.match(s) for s in statements)
        if outside or self_committed:
            return tuple(statements)
        # MariaDB/MySQL commit DDL implicitly; DML before the failure is rolled back.
        ddl = any(not READ_ONLY.match(s) and not DML.match(s) for s in statements)
        return tuple(statements) if ddl and not self.transactional else ()

    def _failed(
        self,
        guard: interrupts.Guard,
        step: _Step,
        exc: BaseException,
        started: float,
        *,
        transactional: bool,
        interrupted: bool,
    ) -> FailedStep:
        effects = () if transactional else self._took_effect(step)
        error = "interrupted by a signal" if interrupted else self.scrub(compat.describe_error(exc))
        if effects:
            with self.connection.begin():
                ledger.record_failure(self.connection, step.planned.revision, step.planned.name, error)
        if interrupted:
            raise self._interrupted(guard, step, effects) from None
        return FailedStep(
            name=step.planned.name,
            revision=step.planned.revision,
            error=error,
            duration_ms=_ms(started),
            at_revisions=self._heads,
            at_names=self.names(self._heads),
            transactional=self.transactional and not effects,
            outside_transaction=bool(effects),
            statements=tuple(self.scrub(s) for s in effects),
            hint=self._adoption_hint(error),
        )

    def _interrupted(
        self, guard: interrupts.Guard, step: _Step | None, effects: tuple[str, ...] = ()
    ) -> Interrupted:
        """What the user is told, decided from what was committed (core.interrupts words it)."""
        return interrupts.interrupted(
            name=step.planned.name if step is not None else None,
            guard=guard,
            index=step.index if step is not None else -1,
            finished=len(self.done),
            where=self.names(self._heads),
            transactional=self.transactional,
            outside_revision=step.planned.revision if step is not None and effects else None,
            statements=tuple(self.scrub(s) for s in self._statements if not is_bookkeeping(s)),
        )

    def _adoption_hint(self, error: str) -> str | None:
        """A database with tables but no history is adopted with --fake, not migrated over."""
        if self._heads or self.done or "already exists" not in error.lower():
            return None
        return (
            "the database has tables but no migration history: if its schema matches the migrations, "
            "record them without running them with `migrate --fake` (or `migrate TARGET --fake`)"
        )

    @contextmanager
    def _watching(self) -> Iterator[None]:
        """Remember the statements of the running step; refuse a COMMIT inside the shared batch."""
        from sqlalchemy import event

        def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if self._guard and SELF_COMMIT.match(statement):
                raise _SelfCommitting(statement)

        def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            self._statements.append(statement.strip())

        event.listen(self.connection, "before_cursor_execute", before)
        event.listen(self.connection, "after_cursor_execute", after)
        try:
            yield
        finally:
            event.remove(self.connection, "before_cursor_execute", before)
            event.remove(self.connection, "after_cursor_execute", after)


def _ms(started: float) -> float:
    return (perf_counter() - started) * 1000
