"""migrate:status without Alembic or SQLAlchemy on the fast path: the revision graph comes from
the files' headers and the history rows from the plain driver (SQLAlchemy only as a fallback).
Reads only: creates nothing and takes no lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from project import database, ledger, rawdb
from project.errors import HistoryError
from project.integrity import edited_migrations, history_problem, squashed_revisions
from project.revision_index import RevisionIndex

if TYPE_CHECKING:
    from project.settings import Settings


@dataclass(frozen=True)
class StatusRow:
    name: str
    revision: str
    state: str  # "Ran", "Pending", "Failed" or "Missing"
    batch: int | None = None
    applied_at: datetime | None = None
    duration_ms: float | None = None
    edited: bool = False
    replaces: tuple[str, ...] = ()  # a squash migration: the pruned revisions it stands for


@dataclass(frozen=True)
class StatusResult:
    database: str
    rows: tuple[StatusRow, ...]
    problem: HistoryError | None = None

    def count(self, state: str) -> int:
        return sum(1 for row in self.rows if row.state == state)


def read_history(settings: Settings) -> rawdb.HistoryState:
    """Version heads, ledger rows and failures: plain driver first, SQLAlchemy as the fallback."""
    url = database.parse_url(settings.database_url, settings.root)
    try:
        plain = rawdb.read_state(url)
    except rawdb.ConnectFailed as exc:
        raise database.unreachable(url, str(exc), exc.elapsed) from None
    if plain is not None:
        return plain
    engine = database.create_engine_for(url)
    try:
        with database.connect(engine) as connection:
            return rawdb.HistoryState(
                ledger.read_version_heads(connection),
                ledger.read_ledger(connection),
                frozenset(failure.revision for failure in ledger.read_failures(connection)),
            )
    finally:
        engine.dispose()


def status(settings: Settings) -> StatusResult:
    """Every migration in order with its state, then what the database ran but has no file for."""
    index = RevisionIndex.load(settings.migrations_dir, settings.root)
    version_heads, rows, failed = read_history(settings)
    rows_by_state = status_rows(index, version_heads, rows, failed)
    problem = history_problem(index, version_heads, rows)
    shown = database.parse_url(settings.database_url, settings.root).display
    return StatusResult(shown, rows_by_state, problem)


def status_rows(
    index: RevisionIndex,
    version_heads: tuple[str, ...],
    rows: list[ledger.LedgerRow],
    failed: frozenset[str] = frozenset(),
) -> tuple[StatusRow, ...]:
    """Files in order (Ran, Pending or Failed), then applied revisions whose file is gone (Missing).

    Revisions pruned into a squash migration the database has reached are folded into its row,
    as Django's showmigrations does with a squashed migration's `replaces`.
    """
    ledger_rows = {row.revision: row for row in rows}
    squashed = squashed_revisions(index, version_heads)
    edited = {migration.revision for migration in edited_migrations(index, rows)}
    applied = index.ancestors(head for head in version_heads if head in index.revisions)
    applied |= {revision for revision in ledger_rows if revision in index.revisions}

    result: list[StatusRow] = []
    for header in index.ordered():
        if header.revision in applied:
            row = ledger_rows.get(header.revision)
            edited_file = header.revision in edited
            result.append(_ran_row(header.name, header.revision, "Ran", row, edited_file, header.replaces))
        else:
            state = "Failed" if header.revision in failed else "Pending"
            result.append(StatusRow(header.name, header.revision, state, replaces=header.replaces))
    for revision in version_heads:
        if revision not in index.revisions and revision not in ledger_rows:
            result.append(StatusRow(str(revision), str(revision), "Missing"))
    for row in rows:
        if row.revision not in index.revisions and row.revision not in squashed:
            result.append(_ran_row(row.name, row.revision, "Missing", row))
    return tuple(result)


def _ran_row(
    name: str,
    revision: str,
    state: str,
    row: ledger.LedgerRow | None,
    edited: bool = False,
    replaces: tuple[str, ...] = (),
) -> StatusRow:
    if row is None:
        return StatusRow(name, revision, state, edited=edited, replaces=replaces)
    applied_at = row.applied_at.replace(tzinfo=UTC).astimezone() if row.applied_at else None
    return StatusRow(name, revision, state, row.batch, applied_at, row.duration_ms, edited, replaces)
