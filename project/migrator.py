"""Orchestration of every command: returns results, reports progress through a callback, never prints."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from project import alembic_bridge as bridge
from project import checks, database, guard, ledger, locks, targets
from project.core import interrupts
from project.errors import HistoryError, OperationFailed, UsageError
from project.integrity import EditedMigration, edited_migrations, history_problem
from project.recorder import DumpLoaded, LockWaiting, ProgressCallback, Recorder, RunStarted, StepDone
from project.revision_index import RevisionIndex

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from project.alembic_env.autogen import AutogenOutcome, AutogenRequest, Change
    from project.alembic_env.renames import Decide, RenameCandidate
    from project.discovery import DiscoveredModels
    from project.guard import Confirm
    from project.schema_dump import DumpInfo
    from project.settings import Settings
    from project.squash import Pruned, PrunePlan
    from project.wipe import Dropped

TRANSACTIONAL_DDL = frozenset({"postgresql", "sqlite"})


@dataclass(frozen=True)
class FailedStep:
    name: str
    revision: str
    error: str
    duration_ms: float
    at_revisions: tuple[str, ...]
    at_names: tuple[str, ...]
    transactional: bool
    statements: tuple[str, ...] = ()
    hint: str | None = None
    outside_transaction: bool = False


@dataclass(frozen=True)
class RunResult:
    """The outcome of migrate or rollback: what ran, and what failed if anything did."""

    database: str
    batch: int | None
    steps: tuple[StepDone, ...]
    failed: FailedStep | None = None
    pretend: bool = False
    edited: tuple[EditedMigration, ...] = ()

    @property
    def nothing_to_do(self) -> bool:
        return not self.steps and self.failed is None


@dataclass(frozen=True)
class FreshResult:
    """migrate:fresh: what was dropped, then the migrate run."""

    dropped: Dropped
    run: RunResult


@dataclass(frozen=True)
class MakeResult:
    """What make:migration found and did; `refused_drops` (table -> rows) means nothing was written."""

    path: Path | None
    changes: tuple[Change, ...]
    models: DiscoveredModels | None
    unconfirmed_renames: tuple[RenameCandidate, ...] = ()
    refused_drops: tuple[tuple[str, int], ...] = ()
    dry_run: bool = False


@dataclass
class _Session:
    settings: Settings
    url: URL
    connection: Connection

    @property
    def shown_url(self) -> str:
        return database.display_url(self.url, self.settings.root)

    @property
    def transactional(self) -> bool:
        return self.url.get_backend_name() in TRANSACTIONAL_DDL


@contextmanager
def _session(settings: Settings, url: URL | None = None) -> Iterator[_Session]:
    url = url or database.parse_url(settings.database_url, settings.root)
    engine = database.create_engine_for(url)
    try:
        with database.connect(engine) as connection:
            yield _Session(settings, url, connection)
    finally:
        engine.dispose()


@contextmanager
def _writing_session(settings: Settings, on_progress: ProgressCallback | None = None) -> Iterator[_Session]:
    """The session of every command that changes the schema: the one place to serialise them.

    The lock is taken before the session reads any state, so a process that waited for another
    one sees what that one did (typically: nothing left to migrate).
    """
    url = database.parse_url(settings.database_url, settings.root)

    def waiting(holder: str) -> None:
        if on_progress is not None:
            on_progress(LockWaiting(holder, settings.lock_timeout))

    shown = database.display_url(url, settings.root)
    with locks.migration_lock(url, settings.lock_timeout, waiting, shown), _session(settings, url) as session:
        database.check_writable(session.connection)
        yield session


def _read_state(connection: Connection) -> tuple[tuple[str, ...], list[ledger.LedgerRow]]:
    """Version heads and ledger rows, leaving no transaction open for Alembic to inherit."""
    try:
        return ledger.read_version_heads(connection), ledger.read_ledger(connection)
    finally:
        connection.rollback()


def _read_failures(connection: Connection) -> list[ledger.FailureRow]:
    try:
        return ledger.read_failures(connection)
    finally:
        connection.rollback()


def _index(settings: Settings) -> RevisionIndex:
    return RevisionIndex.load(settings.migrations_dir, settings.root)


def _check_history(
    index: RevisionIndex, version_heads: tuple[str, ...], rows: list[ledger.LedgerRow]
) -> None:
    problem = history_problem(index, version_heads, rows)
    if problem is not None:
        raise problem


def _refuse_unresolved_failures(connection: Connection) -> None:
    """A migration that failed outside a transaction left unknown state: a person must look first."""
    failures = _read_failures(connection)
    if not failures:
        return
    failure = failures[0]
    raise HistoryError(
        f"{failure.name} failed outside a transaction ({failure.error}); "
        "what it did before the error was not rolled back",
        hint=f"inspect the objects it creates or changes, undo or finish its work by hand, then run "
        f"`python manage.py migrate:resolve {failure.revision}`",
    )


def _names(script: Any, revisions: tuple[str, ...]) -> tuple[str, ...]:
    names = []
    for revision in revisions:
        found = script.revision_map._revision_map.get(revision)
        names.append(Path(found.path).stem if found is not None else revision)
    return tuple(names)


def _refuse_multiple_heads(script: Any) -> None:
    _refuse_several(_names(script, bridge.heads(script)))


def _refuse_several(head_names: tuple[str, ...]) -> None:
    if len(head_names) > 1:
        raise HistoryError(
            f"the migration history has {len(head_names)} heads: {', '.join(head_names)}",
            hint="write the merge migration with `python manage.py make:migration --merge`",
        )


def _run(
    session: _Session,
    config: Any,
    script: Any,
    steps: list[Any],
    recorder: Recorder,
    version_heads: tuple[str, ...],
) -> FailedStep | None:
    """Run steps from `version_heads`; on failure say which one failed and where the database now
    stands."""
    from sqlalchemy import event

    executed: list[tuple[int, str]] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        executed.append((len(recorder.done), statement.strip()))

    event.listen(session.connection, "after_cursor_execute", remember)
    batch = session.transactional and not any(bridge.needs_own_transaction(step) for step in steps)
    guard = interrupts.Guard(session.connection, batch=batch)
    try:
        with guard:
            if batch:
                _run_with_savepoints(session.connection, config, script, guard.interruptible(steps), recorder)
            else:
                bridge.run_steps(config, script, guard.interruptible(steps))
    except KeyboardInterrupt:
        if session.connection.in_transaction():
            session.connection.rollback()
        index = guard.interrupted_index(len(recorder.done))
        file = bridge.step_file(steps[index]) if index < len(steps) else None
        outside = file is not None and bridge.runs_outside_transaction(steps[index]) and index in guard.sent
        if outside:
            with session.connection.begin():
                ledger.record_failure(session.connection, file.revision, file.name, "interrupted by a signal")
        heads, _ = _read_state(session.connection)
        raise interrupts.interrupted(
            name=file.name if file else None,
            guard=guard,
            index=index,
            finished=len(recorder.done),
            where=_names(script, heads),
            transactional=session.transactional,
            outside_revision=file.revision if outside else None,
            statements=tuple(
                database.scrub(statement, session.url)
                for at, statement in executed
                if at == index and not _is_bookkeeping(statement)
            ),
        ) from None
    except Exception as exc:
        failed_step = steps[len(recorder.done)]
        failed_file = bridge.step_file(failed_step)
        duration = recorder.elapsed_ms()
        if session.connection.in_transaction():
            session.connection.rollback()
        error = database.scrub(bridge.describe_error(exc), session.url)
        outside = bridge.runs_outside_transaction(failed_step)
        if outside:
            with session.connection.begin():
                ledger.record_failure(session.connection, failed_file.revision, failed_file.name, error)
        heads, _ = _read_state(session.connection)
        statements = tuple(
            database.scrub(statement, session.url)
            for index, statement in executed
            if index == len(recorder.done) and not _is_bookkeeping(statement)
        )
        return FailedStep(
            name=failed_file.name,
            revision=failed_file.revision,
            error=error,
            duration_ms=duration,
            at_revisions=heads,
            at_names=_names(script, heads),
            transactional=session.transactional and not outside,
            outside_transaction=outside,
            statements=() if session.transactional else statements,
            hint=_adoption_hint(version_heads, error),
        )
    finally:
        event.remove(session.connection, "after_cursor_execute", remember)
    return None


def _run_with_savepoints(
    connection: Connection, config: Any, script: Any, steps: list[Any], recorder: Recorder
) -> None:
    """One transaction for the batch and a savepoint per migration: one commit (one fsync on
    SQLite) instead of one per migration, with the same outcome as a transaction per migration:
    a failed migration is rolled back to its savepoint and the ones before it are committed."""
    batch = connection.begin()
    try:
        bridge.run_batch(config, script, steps)
    except BaseException:
        if recorder.has_unwritten:
            # The bookkeeping itself failed: keep nothing rather than tables without history.
            batch.rollback()
            recorder.done.clear()
        else:
            batch.commit()
        raise
    batch.commit()


def _adoption_hint(version_heads: tuple[str, ...], error: str) -> str | None:
    """A database with tables but no history is adopted with --fake, not migrated over."""
    if version_heads or "already exists" not in error.lower():
        return None
    return (
        "the database has tables but no migration history: if its schema matches the migrations, "
        "record them without running them with `migrate --fake` (or `migrate TARGET --fake`)"
    )


def _start(
    session: _Session, on_progress: ProgressCallback | None, **options: Any
) -> tuple[Recorder, Any, Any]:
    """A recorder, the Alembic config bound to the session, and the loaded revision files."""
    recorder = Recorder(**options)
    if on_progress is not None:
        recorder.on_progress = on_progress
    config = bridge.make_config(session.settings, connection=session.connection, recorder=recorder)
    return recorder, config, bridge.load_script(config)


def _record_environment(session: _Session) -> None:
    """Remember where the database was migrated; once production, always production."""
    connection = session.connection
    with connection.begin():
        recorded = ledger.read_environment(connection)
        if recorded != guard.PRODUCTION:
            ledger.record_environment(connection, session.settings.environment)


def migrate(
    settings: Settings,
    *,
    target: str | None = None,
    fake: bool = False,
    batch_per_step: bool = False,
    pretend: bool = False,
    use_dump: bool = True,
    confirm: Confirm | None = None,
    on_progress: ProgressCallback | None = None,
) -> RunResult:
    """Apply pending migrations (up to `target`) as one batch, one transaction per migration.

    An empty database first gets the newest schema dump, if there is one (unless `use_dump` is off).
    """
    with _writing_session(settings, on_progress) as session:
        return _migrate(session, target, fake, batch_per_step, pretend, use_dump, confirm, on_progress)


def _migrate(
    session: _Session,
    target: str | None,
    fake: bool,
    batch_per_step: bool,
    pretend: bool,
    use_dump: bool,
    confirm: Confirm | None,
    on_progress: ProgressCallback | None,
) -> RunResult:
    version_heads, rows = _read_state(session.connection)
    index = _index(session.settings)
    _check_history(index, version_heads, rows)
    _refuse_unresolved_failures(session.connection)
    edited = edited_migrations(index, rows)
    if target is None:
        _refuse_several(tuple(index.revisions[head].name for head in index.heads()))
    empty = not version_heads
    if use_dump and empty and not pretend and not fake and _load_dump(session, on_progress, index):
        version_heads, rows = _read_state(session.connection)
    if target is None and _up_to_date(index, version_heads):
        # The everyday case answered from the file headers: Alembic need not load every file.
        return RunResult(session.shown_url, None, (), edited=edited)
    recorder, config, script = _start(session, on_progress, batch_per_step=batch_per_step, pretend=pretend)
    destination = "heads" if target is None else targets.resolve(script, target)
    steps = bridge.upgrade_steps(script, destination, version_heads)
    recorder.batch = ledger.next_batch(rows)
    if not steps:
        return RunResult(session.shown_url, None, (), edited=edited)
    if confirm is not None and not pretend and not fake and _guarded(session):
        # Reading every migration's source is only worth it where consent may be needed.
        dropping = [step for step in steps if guard.drops_data(bridge.upgrade_source(step))]
        if dropping:
            names = ", ".join(bridge.step_file(step).name for step in dropping)
            _consent(session, f"run migrations that drop tables or columns ({names})", confirm)
    if not pretend:
        interrupts.defer()  # from here on, a signal is answered with where the database stands
    recorder.on_progress(
        RunStarted(session.shown_url, recorder.batch, len(steps), upgrade=True, pretend=pretend)
    )
    if pretend:
        _pretend(session, config, script, steps, version_heads)
        return RunResult(session.shown_url, recorder.batch, tuple(recorder.done), pretend=True, edited=edited)
    with session.connection.begin():
        ledger.ensure_ledger(session.connection)
    batch = recorder.batch
    failed = _run(session, config, script, bridge.faked(steps) if fake else steps, recorder, version_heads)
    if recorder.done:
        _record_environment(session)
    return RunResult(session.shown_url, batch, tuple(recorder.done), failed, edited=edited)


def _up_to_date(index: RevisionIndex, version_heads: tuple[str, ...]) -> bool:
    """Nothing to apply. The header index never finds more applied revisions than Alembic (it
    only skips dependencies named by branch label), so "nothing pending" here is never wrong."""
    return index.ancestors(version_heads) == set(index.revisions)


def _recorded_environment(session: _Session) -> str | None:
    try:
        return ledger.read_environment(session.connection)
    finally:
        session.connection.rollback()


def _guarded(session: _Session) -> bool:
    """Whether the production guard applies to this run and database at all."""
    return guard.applies(session.settings, _recorded_environment(session))


def _consent(session: _Session, action: str, confirm: Confirm) -> None:
    guard.require_consent(session.settings, _recorded_environment(session), action, confirm)


def _load_dump(session: _Session, on_progress: ProgressCallback | None, index: RevisionIndex) -> bool:
    """Load the dump for this dialect into a database that has no tables at all."""
    from sqlalchemy import inspect

    from project import schema_dump, squash

    path = schema_dump.dump_path(session.settings.migrations_dir, schema_dump.dialect_of(session.url))
    if not path.is_file():
        return False
    has_tables = bool(inspect(session.connection).get_table_names())
    session.connection.rollback()
    if has_tables:
        return False
    squash.refuse_stale_dump(path, index)
    with session.connection.begin():
        statements = schema_dump.load_dump(session.connection, path)
    if on_progress is not None:
        on_progress(DumpLoaded(path, statements))
    return True


def dump_schema(settings: Settings) -> DumpInfo:
    """Write the schema and history of the migrated database as SQL under migrations/schema/."""
    from project import schema_dump

    with _session(settings) as session:
        version_heads, _ = _read_state(session.connection)
        _refuse_empty_dump(version_heads)
        info = schema_dump.write_dump(session.connection, session.url, settings.migrations_dir)
        session.connection.rollback()
        return info


def _refuse_empty_dump(version_heads: tuple[str, ...]) -> None:
    if not version_heads:
        raise OperationFailed(
            "nothing to dump: no migration has been applied to this database",
            hint="run migrate first",
        )


def dump_and_prune(
    settings: Settings,
    *,
    confirm: Confirm,
    pretend: bool = False,
    on_plan: Callable[[PrunePlan], None] | None = None,
    on_progress: ProgressCallback | None = None,
) -> Pruned:
    """migrate:dump --prune: dump a database at head, then replace the files the dump covers by
    one squash migration (squash.py). Nothing is written or deleted without consent."""
    from project import schema_dump, squash
    from project.recorder import checksum

    with _writing_session(settings, on_progress) as session:
        version_heads, rows = _read_state(session.connection)
        _refuse_empty_dump(version_heads)
        index = _index(settings)
        _check_history(index, version_heads, rows)
        _refuse_unresolved_failures(session.connection)
        dialect = schema_dump.dialect_of(session.url)
        edited = edited_migrations(index, rows)
        plan = squash.plan_prune(
            index, version_heads, edited, settings.migrations_dir, dialect, pretend=pretend
        )
        if on_plan is not None:
            on_plan(plan)
        if pretend:
            return squash.Pruned(plan, None)
        if not plan.nothing_to_prune:
            count = len(plan.deleted)
            guard.require_confirmation(
                f"Delete {count} migration file{'s' if count > 1 else ''}?",
                confirm,
                "refused to prune without confirmation; nothing was written or deleted",
            )
        dump = schema_dump.write_dump(session.connection, session.url, settings.migrations_dir)
        session.connection.rollback()
        if not plan.nothing_to_prune:
            squash.verify_dump(plan, dump)
            squash.apply(plan, checksum(plan.head.path))
        return squash.Pruned(plan, dump)


def _pretend(
    session: _Session, config: Any, script: Any, steps: list[Any], version_heads: tuple[str, ...]
) -> None:
    """Collect the SQL of each step without changing anything.

    Where DDL is transactional the steps really run inside one transaction that is rolled back,
    so batch-mode SQLite migrations show their true statements; elsewhere Alembic's offline mode.
    """
    from sqlalchemy import event

    recorder: Recorder = config.attributes["recorder"]
    if not session.transactional or any(bridge.runs_outside_transaction(step) for step in steps):
        config.output_buffer = _SqlCollector(recorder.captured_sql)
        starting = ",".join(version_heads) or None
        bridge.run_steps(config, script, steps, as_sql=True, starting_rev=starting)
        return

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if _is_bookkeeping(statement):
            return
        text = statement.strip()
        if parameters:
            text += f"  -- {parameters!r}"
        recorder.captured_sql.append(text)

    connection = session.connection
    event.listen(connection, "before_cursor_execute", capture)
    transaction = connection.begin()
    try:
        bridge.run_steps(config, script, steps)
    except Exception as exc:
        name = bridge.step_file(steps[len(recorder.done)]).name
        raise OperationFailed(
            f"cannot pretend {name}: {bridge.describe_error(exc)}",
            hint="a migration that commits on its own (autocommit_block(), e.g. ALTER TYPE ... ADD VALUE) "
            "cannot run inside the rolled-back transaction --pretend uses; nothing was changed",
        ) from exc
    finally:
        transaction.rollback()
        event.remove(connection, "before_cursor_execute", capture)


CATALOG_MARKERS = ("pg_catalog", "information_schema", "sqlite_master", "sqlite_temp_master")


def _is_bookkeeping(statement: str) -> bool:
    """Version-table writes and the reflection queries Alembic runs are not the migration's SQL."""
    lowered = statement.lstrip().lower()
    if any(table in lowered for table in ledger.TOOL_TABLES):
        return True
    if lowered.startswith(("pragma", "begin")):
        return True
    return lowered.startswith(("select", "show")) and any(m in lowered for m in CATALOG_MARKERS)


class _SqlCollector(io.StringIO):
    """Alembic's offline output, cut into statements as it is written."""

    def __init__(self, sink: list[str]) -> None:
        super().__init__()
        self.sink = sink

    def write(self, text: str) -> int:
        stripped = text.strip()
        if stripped and not _is_bookkeeping(stripped):
            self.sink.append(stripped)
        return len(text)


def _rollback_order(
    script: Any, version_heads: tuple[str, ...], rows: list[ledger.LedgerRow]
) -> tuple[list[str], dict[str, int]]:
    """Applied revisions, oldest first; ones applied without a ledger row count as batch 0."""
    applied = bridge.applied_revisions(script, version_heads)
    recorded = [row for row in rows if row.revision in applied]
    recorded_ids = {row.revision for row in recorded}
    legacy = [
        file.revision
        for file in bridge.ordered_files(script)
        if file.revision in applied and file.revision not in recorded_ids
    ]
    batches = {revision: 0 for revision in legacy}
    batches.update({row.revision: row.batch for row in recorded})
    return legacy + [row.revision for row in recorded], batches


def _check_rollback_targets(script: Any, version_heads: tuple[str, ...], targets: list[str]) -> None:
    """Each revision must be a head when its turn comes, or Alembic would corrupt the history."""
    heads = set(version_heads)
    for revision in targets:
        if revision not in heads:
            (name,) = _names(script, (revision,))
            raise HistoryError(
                f"cannot roll back {name}: a newer applied migration depends on it",
                hint="roll back the newer migrations first (--step N)",
            )
        heads.discard(revision)
        # Only a parent still reachable from another head stays out of the new heads.
        still_applied = bridge.applied_revisions(script, heads) if heads else set()
        parents = bridge.find_revision(script, revision).down_revision
        heads |= {parent for parent in bridge._as_tuple(parents) if parent not in still_applied}


def rollback(
    settings: Settings,
    *,
    step: int | None = None,
    batch: int | None = None,
    to: str | None = None,
    fake: bool = False,
    confirm: Confirm | None = None,
    on_progress: ProgressCallback | None = None,
) -> RunResult:
    """Undo the last batch, the last `step` migrations, batch `batch` if it is the newest, or
    everything applied after `to`."""
    guard.refuse_if_prohibited(settings, "migrate:rollback")
    with _writing_session(settings, on_progress) as session:
        return _rollback(session, _Selection(step, batch, to), fake, confirm, on_progress)


@dataclass(frozen=True)
class _Selection:
    """Which applied migrations a rollback undoes; all of them when `everything` is set."""

    step: int | None = None
    batch: int | None = None
    to: str | None = None
    everything: bool = False


def _rollback(
    session: _Session,
    selection: _Selection,
    fake: bool,
    confirm: Confirm | None,
    on_progress: ProgressCallback | None,
) -> RunResult:
    from project.squash import refuse_rolling_back

    recorder, config, script = _start(session, on_progress)
    version_heads, rows = _read_state(session.connection)
    index = _index(session.settings)
    _check_history(index, version_heads, rows)
    _refuse_unresolved_failures(session.connection)
    order, batches = _rollback_order(script, version_heads, rows)
    chosen = _select(script, order, batches, selection)
    refuse_rolling_back(index, chosen)
    if not chosen:
        return RunResult(session.shown_url, None, ())
    chosen.reverse()
    _check_rollback_targets(script, version_heads, chosen)
    if confirm is not None and not fake:
        _consent(session, f"roll back {len(chosen)} migration{'s' if len(chosen) > 1 else ''}", confirm)
    steps = bridge.downgrade_steps(script, chosen)
    by_batch = selection.step is None and selection.to is None and not selection.everything
    shown_batch = batches[chosen[0]] if by_batch else None
    interrupts.defer()
    recorder.on_progress(RunStarted(session.shown_url, shown_batch, len(steps), upgrade=False))
    failed = _run(session, config, script, bridge.faked(steps) if fake else steps, recorder, version_heads)
    return RunResult(session.shown_url, shown_batch, tuple(recorder.done), failed)


def _select(script: Any, order: list[str], batches: dict[str, int], selection: _Selection) -> list[str]:
    """The applied revisions to undo, oldest first."""
    if selection.to is not None:
        revision = targets.resolve(script, selection.to)
        if revision not in order:
            (name,) = _names(script, (revision,))
            raise UsageError(
                f"{name} is not applied, so there is nothing to roll back to",
                hint="see migrate:status for the applied migrations",
            )
        return order[order.index(revision) + 1 :]
    if not order:
        return []
    if selection.everything:
        return list(order)
    if selection.step is not None:
        return order[-selection.step :]
    newest_batch = max(batches.values())
    wanted = newest_batch if selection.batch is None else selection.batch
    if wanted != newest_batch:
        raise UsageError(
            f"batch {wanted} is not the newest batch still applied (that is {newest_batch})",
            hint="roll back the newer batches first, or use --step N",
        )
    return [revision for revision in order if batches[revision] == wanted]


def reset(
    settings: Settings,
    *,
    confirm: Confirm | None = None,
    on_progress: ProgressCallback | None = None,
) -> RunResult:
    """Roll back every applied migration, newest first."""
    guard.refuse_if_prohibited(settings, "migrate:reset")
    with _writing_session(settings, on_progress) as session:
        return _rollback(session, _Selection(everything=True), False, confirm, on_progress)


def refresh(
    settings: Settings,
    *,
    step: int | None = None,
    confirm: Confirm | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[RunResult, RunResult | None]:
    """Roll back everything (or the last `step` migrations), then migrate; no migrate after a failure."""
    guard.refuse_if_prohibited(settings, "migrate:refresh")
    with _writing_session(settings, on_progress) as session:
        selection = _Selection(step=step, everything=step is None)
        undone = _rollback(session, selection, False, confirm, on_progress)
        if undone.failed is not None:
            return undone, None
        return undone, _migrate(session, None, False, False, False, True, None, on_progress)


def fresh(
    settings: Settings,
    *,
    confirm: Confirm | None = None,
    on_progress: ProgressCallback | None = None,
) -> FreshResult:
    """Drop every object in the configured database or schema, then migrate from scratch."""
    from project.wipe import drop_everything

    guard.refuse_if_prohibited(settings, "migrate:fresh")
    with _writing_session(settings, on_progress) as session:
        if confirm is not None:
            _consent(session, "drop every table", confirm)
        # Every migration is read before anything is dropped: a broken file stops fresh early.
        _refuse_multiple_heads(bridge.load_script(bridge.make_config(settings)))
        with session.connection.begin():
            dropped = drop_everything(session.connection)
        if on_progress is not None:
            on_progress(dropped)
        run = _migrate(session, None, False, False, False, True, None, on_progress)
        return FreshResult(dropped, run)


@dataclass(frozen=True)
class HistoryEntry:
    """One revision as Alembic users know it: id, parents, message, and where it sits."""

    revision: str
    parents: tuple[str, ...]
    name: str
    message: str
    is_head: bool
    is_merge: bool


def history(settings: Settings) -> tuple[HistoryEntry, ...]:
    """The revision graph, newest first; reads files only, never the database."""
    script = bridge.load_script(bridge.make_config(settings))
    heads = set(bridge.heads(script))
    return tuple(
        HistoryEntry(
            file.revision,
            file.down_revisions,
            file.name,
            file.message,
            file.revision in heads,
            len(file.down_revisions) > 1,
        )
        for file in reversed(bridge.ordered_files(script))
    )


@dataclass(frozen=True)
class SqlResult:
    name: str
    upgrade: bool
    statements: tuple[str, ...]


def sql(settings: Settings, target: str, *, upgrade: bool = True) -> SqlResult:
    """The SQL of one migration in Alembic's offline mode: no connection is opened."""
    recorder = Recorder(pretend=True)
    config = bridge.make_config(settings, recorder=recorder)
    script = bridge.load_script(config)
    revision = targets.resolve(script, target)
    step = bridge.single_step(script, revision, upgrade=upgrade)
    file = bridge.step_file(step)
    start = ",".join(file.down_revisions) or None if upgrade else revision
    config.output_buffer = _SqlCollector(recorder.captured_sql)
    try:
        bridge.run_steps(config, script, [step], as_sql=True, starting_rev=start)
    except Exception as exc:
        raise OperationFailed(
            f"cannot render the SQL of {file.name} offline: {bridge.describe_error(exc)}",
            hint="operations that need to read the database (e.g. SQLite batch ALTERs) have no "
            "offline SQL; `migrate --pretend` shows what they run",
        ) from exc
    return SqlResult(file.name, upgrade, recorder.done[-1].sql or () if recorder.done else ())


def checksum_mismatches(settings: Settings) -> tuple[EditedMigration, ...]:
    """Applied migrations whose file changed since it ran (for migrate:check); reads only."""
    with _session(settings) as session:
        _, rows = _read_state(session.connection)
        return edited_migrations(_index(settings), rows)


@dataclass(frozen=True)
class Accepted:
    database: str
    migrations: tuple[EditedMigration, ...]


def accept_checksums(
    settings: Settings, wanted: tuple[str, ...] = (), on_progress: ProgressCallback | None = None
) -> Accepted:
    """Store the current checksum of edited migrations (all, or the named ones) after review."""
    with _writing_session(settings, on_progress) as session:
        _, rows = _read_state(session.connection)
        edited = edited_migrations(_index(settings), rows)
        if wanted:
            by_key = {key: item for item in edited for key in (item.revision, item.name)}
            unknown = [name for name in wanted if name not in by_key]
            if unknown:
                raise UsageError(
                    f"{unknown[0]} is not an applied migration whose file was edited",
                    hint="migrate:status marks edited migrations; give a revision id or a file name",
                )
            edited = tuple(dict.fromkeys(by_key[name] for name in wanted))
        with session.connection.begin():
            for item in edited:
                ledger.update_checksum(session.connection, item.revision, item.current)
        return Accepted(session.shown_url, edited)


@dataclass(frozen=True)
class Resolved:
    database: str
    name: str
    revision: str


def resolve_failure(settings: Settings, wanted: str, on_progress: ProgressCallback | None = None) -> Resolved:
    """Forget a failure recorded outside a transaction, after a person has repaired the database."""
    with _writing_session(settings, on_progress) as session:
        failures = _read_failures(session.connection)
        match = next((f for f in failures if wanted in (f.revision, f.name)), None)
        if match is None:
            recorded = ", ".join(f.revision for f in failures) or "none"
            raise UsageError(
                f"no failed migration {wanted} is recorded (recorded: {recorded})",
                hint="migrate:status marks failed migrations as Failed",
            )
        with session.connection.begin():
            ledger.clear_failure(session.connection, match.revision)
        return Resolved(session.shown_url, match.name, match.revision)


def make_migration(
    settings: Settings,
    name: str | None,
    *,
    empty: bool = False,
    merge: bool = False,
    dry_run: bool = False,
    allow_drops: bool = False,
    renames: Mapping[str, str] | None = None,
    ask: Decide | None = None,
) -> MakeResult:
    """Autogenerate one revision file from the models; write nothing when nothing changed.

    Probable renames are confirmed by `renames` (old -> new) or by `ask`; without either they
    stay drop + add and come back in `unconfirmed_renames`.
    """
    from project import collector
    from project.alembic_env.autogen import AutogenOutcome, AutogenRequest
    from project.discovery import discover_models
    from project.naming import migration_message

    message = migration_message(name) if name is not None else "auto"
    settings.migrations_dir.mkdir(parents=True, exist_ok=True)
    if merge:
        return _merge(settings, name)
    if empty:
        config = bridge.make_config(settings)
        script = bridge.load_script(config)
        _refuse_multiple_heads(script)
        created = bridge.generate_revision(config, script, message, autogenerate=False)
        return MakeResult(_checked_path(created), (), None)

    request = AutogenRequest(
        drop_empty=True,
        derive_name=name is None,
        dry_run=dry_run,
        allow_drops=allow_drops,
        renames=dict(renames or {}),
        ask=ask,
    )
    outcome = AutogenOutcome()
    with collector.paused():
        models = discover_models(settings.root, settings.model_packages)
        with _session(settings) as session:
            created = _autogenerate(session, models, message, request, outcome)
    unmatched = sorted(set(request.renames) - outcome.used_answers)
    if unmatched:
        _remove_created(created)
        raise UsageError(
            f"--rename {unmatched[0]}:{request.renames[unmatched[0]]} matches no table or column "
            "that disappears while one of the same shape appears",
            hint="the old name is `table` or `table.column` as in the database, the new one as in the models",
        )
    return MakeResult(
        _checked_path(created),
        tuple(outcome.changes),
        models,
        tuple(outcome.unconfirmed),
        tuple(sorted(outcome.refused_drops.items())),
        dry_run,
    )


def _created_script(created: Any) -> Any:
    if isinstance(created, list):
        return created[0] if created else None
    return created


def _remove_created(created: Any) -> None:
    script = _created_script(created)
    if script is not None:
        Path(script.path).unlink(missing_ok=True)


def _autogenerate(
    session: _Session,
    models: DiscoveredModels,
    message: str,
    request: AutogenRequest,
    outcome: AutogenOutcome,
) -> Any:
    """Compare the models with a fully migrated database; a dry run only fills `outcome`."""
    config = bridge.make_config(
        session.settings,
        connection=session.connection,
        metadata=list(models.metadata),
        autogen_request=request,
        autogen_outcome=outcome,
    )
    script = bridge.load_script(config)
    _refuse_multiple_heads(script)
    version_heads, rows = _read_state(session.connection)
    _check_history(_index(session.settings), version_heads, rows)
    pending = bridge.upgrade_steps(script, "heads", version_heads)
    if pending:
        count = len(pending)
        raise OperationFailed(
            f"{count} migration{'s are' if count > 1 else ' is'} pending; run migrate first",
            hint="make:migration compares the models with a database that is fully migrated",
        )
    from project import collector

    try:
        with collector.paused():
            return bridge.generate_revision(config, script, message, autogenerate=True)
    finally:
        if session.connection.in_transaction():
            session.connection.rollback()


def _merge(settings: Settings, name: str | None) -> MakeResult:
    """Write the migration that joins every head (after a git merge brought in two branches)."""
    from project.naming import migration_message

    with _writing_session(settings):
        config = bridge.make_config(settings)
        script = bridge.load_script(config)
        heads = bridge.heads(script)
        if len(heads) < 2:
            raise UsageError(
                "nothing to merge: the migration history has a single head",
                hint="--merge is for when two branches both added a migration",
            )
        message = migration_message(name) if name is not None else "merge heads"
        created = bridge.merge_heads(config, message)
    return MakeResult(_checked_path(created), (), None)


@dataclass(frozen=True)
class CheckResult:
    """migrate:check: every problem found; `drift_checked` is false when the database was not at
    head, since models can only be compared with a fully migrated database."""

    database: str
    problems: tuple[checks.Problem, ...]
    drift_checked: bool

    @property
    def ok(self) -> bool:
        return not self.problems


def check(settings: Settings) -> CheckResult:
    """The CI gate: one head, nothing pending, no applied file missing, models match migrations."""
    from project import history
    from project.discovery import discover_models

    with _session(settings) as session:
        script = bridge.load_script(bridge.make_config(settings))
        version_heads, rows = _read_state(session.connection)
        heads = bridge.heads(script)
        rows_by_state = history.status_rows(_index(settings), version_heads, rows)
        problems = [
            *checks.multiple_heads(_names(script, heads)),
            *checks.pending(row.name for row in rows_by_state if row.state == "Pending"),
            *checks.missing_files(row.name for row in rows_by_state if row.state == "Missing"),
            *checks.edited_files(row.name for row in rows_by_state if row.edited),
        ]
        drift_checked = not problems
        if drift_checked:
            models = discover_models(settings.root, settings.model_packages)
            from project.alembic_env.autogen import AutogenOutcome, AutogenRequest

            outcome = AutogenOutcome()
            request = AutogenRequest(drop_empty=True, dry_run=True)
            _autogenerate(session, models, "check", request, outcome)
            problems += checks.drift(outcome.changes)
        return CheckResult(session.shown_url, tuple(problems), drift_checked)


def _checked_path(created: Any) -> Path | None:
    """The written file, compiled and imported before it is reported: a broken one is removed."""
    from project.generated import check_generated

    script = _created_script(created)
    if script is None:
        return None
    path = Path(script.path)
    check_generated(path, getattr(script, "module", None))
    return _sorted_last(path)


STAMP_FORMAT = "%Y_%m_%d_%H%M%S"
STAMP_LENGTH = len("2026_01_01_000000")


def _stamp_of(path: Path) -> datetime | None:
    try:
        return datetime.strptime(path.name[:STAMP_LENGTH], STAMP_FORMAT)
    except ValueError:
        return None


def _sorted_last(path: Path) -> Path:
    """Two migrations made within one second must still sort in creation order."""
    own = _stamp_of(path)
    others = [stamp for other in path.parent.glob("*.py") if other != path and (stamp := _stamp_of(other))]
    if own is None or not others or own > max(others):
        return path
    stamp = (max(others) + timedelta(seconds=1)).strftime(STAMP_FORMAT)
    renamed = path.with_name(stamp + path.name[STAMP_LENGTH:])
    path.rename(renamed)
    return renamed
