"""Orchestration of every command: returns results, reports progress through a callback, never prints."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from project import alembic_bridge as bridge
from project import database, ledger
from project.errors import HistoryError, OperationFailed, UsageError
from project.recorder import ProgressCallback, Recorder, RunStarted, StepDone

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from project.alembic_env.autogen import Change
    from project.alembic_env.renames import Decide, RenameCandidate
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


@dataclass(frozen=True)
class RunResult:
    """The outcome of migrate or rollback: what ran, and what failed if anything did."""

    database: str
    batch: int | None
    steps: tuple[StepDone, ...]
    failed: FailedStep | None = None
    pretend: bool = False

    @property
    def nothing_to_do(self) -> bool:
        return not self.steps and self.failed is None


@dataclass(frozen=True)
class StatusRow:
    name: str
    revision: str
    state: str  # "Ran", "Pending" or "Missing"
    batch: int | None = None
    applied_at: datetime | None = None
    duration_ms: float | None = None


@dataclass(frozen=True)
class StatusResult:
    database: str
    rows: tuple[StatusRow, ...]

    def count(self, state: str) -> int:
        return sum(1 for row in self.rows if row.state == state)


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
def _session(settings: Settings) -> Iterator[_Session]:
    url = database.parse_url(settings.database_url, settings.root)
    engine = database.create_engine_for(url)
    try:
        with database.connect(engine) as connection:
            yield _Session(settings, url, connection)
    finally:
        engine.dispose()


@contextmanager
def _writing_session(settings: Settings) -> Iterator[_Session]:
    """The session of every command that changes the schema: the one place to serialise them."""
    with _session(settings) as session:
        yield session


def _read_state(connection: Connection) -> tuple[tuple[str, ...], list[ledger.LedgerRow]]:
    """Version heads and ledger rows, leaving no transaction open for Alembic to inherit."""
    try:
        return ledger.read_version_heads(connection), ledger.read_ledger(connection)
    finally:
        connection.rollback()


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
    except Exception as exc:
        failed_step = steps[len(recorder.done)]
        failed_file = bridge.step_file(failed_step)
        duration = recorder.elapsed_ms()
        if session.connection.in_transaction():
            session.connection.rollback()
        heads, _ = _read_state(session.connection)
        return FailedStep(
            name=failed_file.name,
            revision=failed_file.revision,
            error=database.scrub(bridge.describe_error(exc), session.url),
            duration_ms=duration,
            at_revisions=heads,
            at_names=_names(script, heads),
            transactional=session.transactional,
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
    with _writing_session(settings) as session:
        recorder = Recorder(batch_per_step=batch_per_step, pretend=pretend)
        if on_progress is not None:
            recorder.on_progress = on_progress
        config = bridge.make_config(settings, connection=session.connection, recorder=recorder)
        script = bridge.load_script(config)
        version_heads, rows = _read_state(session.connection)
        _refuse_multiple_heads(script)
        steps = bridge.upgrade_steps(script, "heads", version_heads)
        recorder.batch = ledger.next_batch(rows)
        if not steps:
            return RunResult(session.shown_url, None, ())
        recorder.on_progress(
            RunStarted(session.shown_url, recorder.batch, len(steps), upgrade=True, pretend=pretend)
        )
        if pretend:
            _pretend(session, config, script, steps, version_heads)
            return RunResult(session.shown_url, recorder.batch, tuple(recorder.done), pretend=True)
        with session.connection.begin():
            ledger.ensure_ledger(session.connection)
        batch = recorder.batch
        failed = _run(session, config, script, steps, recorder)
        return RunResult(session.shown_url, batch, tuple(recorder.done), failed)


def _pretend(
    session: _Session, config: Any, script: Any, steps: list[Any], version_heads: tuple[str, ...]
) -> None:
    """Collect the SQL of each step without changing anything.

    Where DDL is transactional the steps really run inside one transaction that is rolled back,
    so batch-mode SQLite migrations show their true statements; elsewhere Alembic's offline mode.
    """
    from sqlalchemy import event

    recorder: Recorder = config.attributes["recorder"]
    if not session.transactional:
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
    if ledger.VERSION_TABLE in lowered or ledger.LEDGER_TABLE in lowered:
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
    with _writing_session(settings) as session:
        recorder = Recorder()
        if on_progress is not None:
            recorder.on_progress = on_progress
        config = bridge.make_config(settings, connection=session.connection, recorder=recorder)
        script = bridge.load_script(config)
        version_heads, rows = _read_state(session.connection)
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
        files = bridge.ordered_files(script)
        known = {file.revision for file in files}
        ledger_rows = {row.revision: row for row in rows}
        applied = bridge.applied_revisions(script, [h for h in version_heads if h in known])
        applied |= {revision for revision in ledger_rows if revision in known}

        result: list[StatusRow] = []
        for file in files:
            row = ledger_rows.get(file.revision)
            if file.revision not in applied:
                result.append(StatusRow(file.name, file.revision, "Pending"))
            else:
                result.append(_ran_row(file.name, file.revision, "Ran", row))
        for revision in version_heads:
            if revision not in known and revision not in ledger_rows:
                result.append(StatusRow(revision, revision, "Missing"))
        for row in rows:
            if row.revision not in known:
                result.append(_ran_row(row.name, row.revision, "Missing", row))
        return StatusResult(session.shown_url, tuple(result))


def _ran_row(name: str, revision: str, state: str, row: ledger.LedgerRow | None) -> StatusRow:
    if row is None:
        return StatusRow(name, revision, state)
    applied_at = row.applied_at.replace(tzinfo=UTC).astimezone() if row.applied_at else None
    return StatusRow(name, revision, state, row.batch, applied_at, row.duration_ms)


def make_migration(
    settings: Settings,
    name: str | None,
    *,
    empty: bool = False,
    dry_run: bool = False,
    allow_drops: bool = False,
    renames: Mapping[str, str] | None = None,
    ask: Decide | None = None,
) -> MakeResult:
    """Autogenerate one revision file from the models; write nothing when nothing changed.

    Probable renames are confirmed by `renames` (old -> new) or by `ask`; without either they
    stay drop + add and come back in `unconfirmed_renames`.
    """
    from project.alembic_env.autogen import AutogenOutcome, AutogenRequest
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
    request = AutogenRequest(
        drop_empty=True,
        derive_name=name is None,
        dry_run=dry_run,
        allow_drops=allow_drops,
        renames=dict(renames or {}),
        ask=ask,
    )
    outcome = AutogenOutcome()
    with _session(settings) as session:
        config = bridge.make_config(
            settings,
            connection=session.connection,
            metadata=list(models.metadata),
            autogen_request=request,
            autogen_outcome=outcome,
        )
        script = bridge.load_script(config)
        _refuse_multiple_heads(script)
        version_heads, _ = _read_state(session.connection)
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


def _checked_path(created: Any) -> Path | None:
    """The written file, compiled and imported before it is reported: a broken one is removed."""
    from project.generated import check_generated

    script = _created_script(created)
    if script is None:
        return None
    path = Path(script.path)
    check_generated(path)
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
