"""Orchestration of every command: returns results, reports progress through a callback, never prints."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from project import alembic_bridge as bridge
from project import database, ledger, locks
from project.errors import HistoryError, Interrupted, OperationFailed, UsageError
from project.history import EditedMigration, edited_migrations, history_problem
from project.recorder import LockWaiting, ProgressCallback, Recorder, RunStarted, StepDone

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from project.alembic_env.autogen import Change
    from project.discovery import DiscoveredModels
    from project.settings import Settings

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
class StatusRow:
    name: str
    revision: str
    state: str  # "Ran", "Pending", "Failed" or "Missing"
    batch: int | None = None
    applied_at: datetime | None = None
    duration_ms: float | None = None
    edited: bool = False


@dataclass(frozen=True)
class StatusResult:
    database: str
    rows: tuple[StatusRow, ...]
    problem: HistoryError | None = None

    def count(self, state: str) -> int:
        return sum(1 for row in self.rows if row.state == state)


@dataclass(frozen=True)
class MakeResult:
    path: Path | None
    changes: tuple[Change, ...]
    models: DiscoveredModels | None


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
def _session(settings: Settings) -> Iterator[_Session]:
    url = database.parse_url(settings.database_url, settings.root)
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
    with locks.migration_lock(url, settings.lock_timeout, waiting, shown), _session(settings) as session:
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


def _check_history(script: Any, version_heads: tuple[str, ...], rows: list[ledger.LedgerRow]) -> None:
    problem = history_problem(script, version_heads, rows)
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
    heads = bridge.heads(script)
    if len(heads) > 1:
        raise HistoryError(
            f"the migration history has {len(heads)} heads: {', '.join(_names(script, heads))}",
            hint="merge them with `alembic merge heads -m merge` before migrating",
        )


def _run(
    session: _Session,
    config: Any,
    script: Any,
    steps: list[Any],
    recorder: Recorder,
) -> FailedStep | None:
    """Run steps; on failure say which one failed and where the database now stands."""
    try:
        bridge.run_steps(config, script, steps)
    except KeyboardInterrupt:
        if session.connection.in_transaction():
            session.connection.rollback()
        heads, _ = _read_state(session.connection)
        where = ", ".join(_names(script, heads)) or "no migration (empty history)"
        done = len(recorder.done)
        if done < len(steps):
            current = f"during {bridge.step_file(steps[done]).name}, which was rolled back;"
        else:  # the signal landed after the last step had been recorded
            current = "after the last migration;"
        raise Interrupted(
            f"interrupted {current} {done} migration{'' if done == 1 else 's'} finished before it. "
            f"The database is at {where}.",
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
        return FailedStep(
            name=failed_file.name,
            revision=failed_file.revision,
            error=error,
            duration_ms=duration,
            at_revisions=heads,
            at_names=_names(script, heads),
            transactional=session.transactional and not outside,
            outside_transaction=outside,
        )
    return None


def migrate(
    settings: Settings,
    *,
    batch_per_step: bool = False,
    pretend: bool = False,
    on_progress: ProgressCallback | None = None,
) -> RunResult:
    """Apply every pending migration as one batch, one transaction per migration."""
    with _writing_session(settings, on_progress) as session:
        recorder = Recorder(batch_per_step=batch_per_step, pretend=pretend)
        if on_progress is not None:
            recorder.on_progress = on_progress
        config = bridge.make_config(settings, connection=session.connection, recorder=recorder)
        script = bridge.load_script(config)
        version_heads, rows = _read_state(session.connection)
        _check_history(script, version_heads, rows)
        _refuse_multiple_heads(script)
        _refuse_unresolved_failures(session.connection)
        edited = edited_migrations(script, rows)
        steps = bridge.upgrade_steps(script, "heads", version_heads)
        recorder.batch = ledger.next_batch(rows)
        if not steps:
            return RunResult(session.shown_url, None, (), edited=edited)
        recorder.on_progress(
            RunStarted(session.shown_url, recorder.batch, len(steps), upgrade=True, pretend=pretend)
        )
        if pretend:
            _pretend(session, config, script, steps, version_heads)
            return RunResult(
                session.shown_url, recorder.batch, tuple(recorder.done), pretend=True, edited=edited
            )
        with session.connection.begin():
            ledger.ensure_ledger(session.connection)
        batch = recorder.batch
        failed = _run(session, config, script, steps, recorder)
        return RunResult(session.shown_url, batch, tuple(recorder.done), failed, edited=edited)


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
        still_applied = bridge.applied_revisions(script, heads)
        parents = bridge.find_revision(script, revision).down_revision
        heads |= {parent for parent in bridge._as_tuple(parents) if parent not in still_applied}


def rollback(
    settings: Settings,
    *,
    step: int | None = None,
    batch: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> RunResult:
    """Undo the last batch, the last `step` migrations, or batch `batch` if it is the newest."""
    with _writing_session(settings, on_progress) as session:
        recorder = Recorder()
        if on_progress is not None:
            recorder.on_progress = on_progress
        config = bridge.make_config(settings, connection=session.connection, recorder=recorder)
        script = bridge.load_script(config)
        version_heads, rows = _read_state(session.connection)
        _check_history(script, version_heads, rows)
        _refuse_unresolved_failures(session.connection)
        order, batches = _rollback_order(script, version_heads, rows)
        if not order:
            return RunResult(session.shown_url, None, ())
        newest_batch = max(batches.values())
        if step is not None:
            targets = order[-step:]
        else:
            wanted = newest_batch if batch is None else batch
            if wanted != newest_batch:
                raise UsageError(
                    f"batch {wanted} is not the newest batch still applied (that is {newest_batch})",
                    hint="roll back the newer batches first, or use --step N",
                )
            targets = [revision for revision in order if batches[revision] == wanted]
        targets.reverse()
        _check_rollback_targets(script, version_heads, targets)
        steps = bridge.downgrade_steps(script, targets)
        shown_batch = batches[targets[0]] if step is None else None
        recorder.on_progress(RunStarted(session.shown_url, shown_batch, len(steps), upgrade=False))
        failed = _run(session, config, script, steps, recorder)
        return RunResult(session.shown_url, shown_batch, tuple(recorder.done), failed)


def status(settings: Settings) -> StatusResult:
    """Every migration with its state; reads only, creates nothing, takes no lock."""
    with _session(settings) as session:
        config = bridge.make_config(settings)
        script = bridge.load_script(config)
        version_heads, rows = _read_state(session.connection)
        failed = {failure.revision for failure in _read_failures(session.connection)}
        edited = {migration.revision for migration in edited_migrations(script, rows)}
        files = bridge.ordered_files(script)
        known = {file.revision for file in files}
        ledger_rows = {row.revision: row for row in rows}
        problem = history_problem(script, version_heads, rows)
        applied = bridge.applied_revisions(script, [h for h in version_heads if h in known])
        applied |= {revision for revision in ledger_rows if revision in known}

        result: list[StatusRow] = []
        for file in files:
            row = ledger_rows.get(file.revision)
            if file.revision not in applied:
                state = "Failed" if file.revision in failed else "Pending"
                result.append(StatusRow(file.name, file.revision, state))
            else:
                result.append(_ran_row(file.name, file.revision, "Ran", row, file.revision in edited))
        for revision in version_heads:
            if revision not in known and revision not in ledger_rows:
                result.append(StatusRow(str(revision), str(revision), "Missing"))
        for row in rows:
            if row.revision not in known:
                result.append(_ran_row(row.name, row.revision, "Missing", row))
        return StatusResult(session.shown_url, tuple(result), problem)


def _ran_row(
    name: str, revision: str, state: str, row: ledger.LedgerRow | None, edited: bool = False
) -> StatusRow:
    if row is None:
        return StatusRow(name, revision, state, edited=edited)
    applied_at = row.applied_at.replace(tzinfo=UTC).astimezone() if row.applied_at else None
    return StatusRow(name, revision, state, row.batch, applied_at, row.duration_ms, edited)


def checksum_mismatches(settings: Settings) -> tuple[EditedMigration, ...]:
    """Applied migrations whose file changed since it ran (for migrate:check); reads only."""
    with _session(settings) as session:
        script = bridge.load_script(bridge.make_config(settings))
        _, rows = _read_state(session.connection)
        return edited_migrations(script, rows)


@dataclass(frozen=True)
class Accepted:
    database: str
    migrations: tuple[EditedMigration, ...]


def accept_checksums(
    settings: Settings, wanted: tuple[str, ...] = (), on_progress: ProgressCallback | None = None
) -> Accepted:
    """Store the current checksum of edited migrations (all, or the named ones) after review."""
    with _writing_session(settings, on_progress) as session:
        script = bridge.load_script(bridge.make_config(settings))
        _, rows = _read_state(session.connection)
        edited = edited_migrations(script, rows)
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
) -> MakeResult:
    """Autogenerate one revision file from the models; write nothing when nothing changed."""
    from project.discovery import discover_models
    from project.naming import migration_message

    message = migration_message(name) if name is not None else "auto"
    settings.migrations_dir.mkdir(parents=True, exist_ok=True)
    if empty:
        config = bridge.make_config(settings)
        _refuse_multiple_heads(bridge.load_script(config))
        created = bridge.generate_revision(config, message, autogenerate=False)
        return MakeResult(_checked_path(created), (), None)

    models = discover_models(settings.root, settings.model_packages)
    report: list[Change] = []
    with _session(settings) as session:
        config = bridge.make_config(
            settings,
            connection=session.connection,
            metadata=list(models.metadata),
            autogenerate_report=report,
            drop_empty=True,
            derive_name=name is None,
        )
        script = bridge.load_script(config)
        _refuse_multiple_heads(script)
        version_heads, rows = _read_state(session.connection)
        _check_history(script, version_heads, rows)
        pending = bridge.upgrade_steps(script, "heads", version_heads)
        if pending:
            count = len(pending)
            raise OperationFailed(
                f"{count} migration{'s are' if count > 1 else ' is'} pending; run migrate first",
                hint="make:migration compares the models with a database that is fully migrated",
            )
        try:
            created = bridge.generate_revision(config, message, autogenerate=True)
        finally:
            if session.connection.in_transaction():
                session.connection.rollback()
    return MakeResult(_checked_path(created), tuple(report), models)


def _checked_path(created: Any) -> Path | None:
    """The written file, compiled before it is reported: a broken file is removed, not left."""
    if isinstance(created, list):
        created = created[0] if created else None
    if created is None:
        return None
    path = Path(created.path)
    try:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    except SyntaxError as exc:
        path.unlink(missing_ok=True)
        raise OperationFailed(
            f"the generated migration did not compile and was removed: {exc}",
            hint="this is a bug in make:migration; please report it",
        ) from exc
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
