"""migrate:status without Alembic or SQLAlchemy on the fast path: the revision graph comes from
the files' headers and the history rows from the plain driver (SQLAlchemy only as a fallback).
Reads only: creates nothing and takes no lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from manage_migrations import database, ledger, rawdb
from manage_migrations.core import store
from manage_migrations.core.graph import RevisionGraph
from manage_migrations.errors import HistoryError
from manage_migrations.integrity import edited_migrations, history_problem
from manage_migrations.program import command_prefix

if TYPE_CHECKING:
    from manage_migrations.core.preflight import State
    from manage_migrations.settings import Settings


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
    note: str | None = None
    warnings: tuple[str, ...] = ()

    def count(self, state: str) -> int:
        return sum(1 for row in self.rows if row.state == state)


def read_history(settings: Settings) -> store.History:
    """Version heads, ledger rows and failures: plain driver first, SQLAlchemy as the fallback."""
    url = database.parse_url(settings.database_url, settings.root)
    try:
        plain = rawdb.read_state(url)
    except rawdb.ConnectFailed as exc:
        raise database.unreachable(url, str(exc), exc.elapsed) from None
    if plain is not None:
        return store.History(plain.heads, tuple(plain.rows), plain.failed)
    from manage_migrations.core import session

    with session.reading(settings) as current:
        return store.read(current.connection)


def status(settings: Settings) -> StatusResult:
    """Every migration in order with its state, then what the database ran but has no file for."""
    graph = RevisionGraph.load(settings.migrations_dir, settings.root)
    history = read_history(settings)
    problem = history_problem(graph, history.version_heads, {row.revision: row.name for row in history.rows})
    heads = graph.heads()
    if problem is None and len(heads) > 1:
        problem = HistoryError(
            f"the migration history has {len(heads)} heads: {', '.join(graph.names(heads))}",
            hint=f"write the merge migration with `{command_prefix()} make:migration --merge`",
        )
    known = tuple(head for head in history.version_heads if head in graph.revisions)
    reconciled = store.reconcile(graph, history)
    rows = status_rows(graph, history, reconciled)
    shown = database.parse_url(settings.database_url, settings.root).display
    note = reconciled.note if known == history.version_heads else None
    return StatusResult(shown, rows, problem, note, reconciled.warnings)


def rows_for(graph: RevisionGraph, state: State) -> tuple[StatusRow, ...]:
    return status_rows(graph, state.history, state.reconciled)


def status_rows(
    graph: RevisionGraph, history: store.History, reconciled: store.Reconciled
) -> tuple[StatusRow, ...]:
    """Files in order (Ran, Pending or Failed), then applied revisions whose file is gone (Missing).

    Applied means "in the ancestry of alembic_version"; the ledger only adds batch and time.
    Revisions pruned into a squash migration the database has reached are folded into its row,
    as Django's showmigrations does with a squashed migration's `replaces`.
    """
    ledger_rows = {row.revision: row for row in reconciled.rows}
    edited = {migration.revision for migration in edited_migrations(graph, list(reconciled.rows))}
    result: list[StatusRow] = []
    for header in graph.ordered():
        if header.revision in reconciled.applied:
            row = ledger_rows.get(header.revision)
            edited_file = header.revision in edited
            result.append(
                _ran_row(
                    header.name, header.revision, "Ran", row, edited=edited_file, replaces=header.replaces
                )
            )
        else:
            state = "Failed" if header.revision in history.failed else "Pending"
            result.append(StatusRow(header.name, header.revision, state, replaces=header.replaces))
    for revision in history.version_heads:
        if revision not in graph.revisions:
            row = next((r for r in history.rows if r.revision == revision), None)
            result.append(_ran_row(row.name if row else str(revision), str(revision), "Missing", row))
    return tuple(result)


def _ran_row(
    name: str,
    revision: str,
    state: str,
    row: ledger.LedgerRow | None,
    *,
    edited: bool = False,
    replaces: tuple[str, ...] = (),
) -> StatusRow:
    if row is None:
        return StatusRow(name, revision, state, edited=edited, replaces=replaces)
    applied_at = row.applied_at.replace(tzinfo=UTC).astimezone() if row.applied_at else None
    return StatusRow(name, revision, state, row.batch, applied_at, row.duration_ms, edited, replaces)
