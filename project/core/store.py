"""THE history store: alembic_version is the truth of what is applied; the ledger only adds batch,
time, duration and checksum; failure marks and the recorded environment sit beside them.

Reads come back as one `History`; a ledger that disagrees with alembic_version is reconciled
here (rows of unapplied revisions dropped, applied revisions without a row get an unknown batch)
so no command ever sees two answers to "what is applied".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from manage_migrations import ledger
from manage_migrations.core.planner import Applied
from manage_migrations.errors import HistoryError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from manage_migrations.core.graph import RevisionGraph


@dataclass(frozen=True)
class History:
    """The history tables as read, before reconciliation."""

    version_heads: tuple[str, ...]
    rows: tuple[ledger.LedgerRow, ...]
    failed: frozenset[str] = frozenset()
    has_ledger: bool = True


@dataclass(frozen=True)
class Reconciled:
    """What is applied, per alembic_version, with the ledger rows that agree with it."""

    applied: frozenset[str]
    rows: tuple[ledger.LedgerRow, ...]
    stale: tuple[ledger.LedgerRow, ...]
    unrecorded: tuple[str, ...]

    @property
    def note(self) -> str | None:
        """One line for the user when the ledger had to be corrected."""
        parts = []
        if self.stale:
            names = ", ".join(row.name for row in self.stale[:3]) + (" ..." if len(self.stale) > 3 else "")
            parts.append(
                f"the ledger listed {len(self.stale)} migration(s) alembic_version does not ({names}); "
                "alembic_version wins"
            )
        if self.unrecorded:
            parts.append(f"{len(self.unrecorded)} applied migration(s) have no ledger row (batch unknown)")
        return "; ".join(parts) or None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Ledger rows holding values that cannot be read; the command goes on without them."""
        return tuple(row.warning for row in self.rows if row.warning is not None)

    def as_applied(self, version_heads: tuple[str, ...]) -> Applied:
        batches: dict[str, int | None] = {revision: None for revision in self.unrecorded}
        batches.update({row.revision: row.batch for row in self.rows})
        return Applied(version_heads, batches, tuple(row.revision for row in self.rows))


def read(connection: Connection) -> History:
    """The history tables in one go, leaving no transaction open for Alembic to inherit."""
    try:
        present = ledger.present_tables(connection)
        return History(
            ledger.read_version_heads(connection, present),
            tuple(ledger.read_ledger(connection, present)),
            frozenset(failure.revision for failure in ledger.read_failures(connection, present)),
            ledger.LEDGER_TABLE in present,
        )
    finally:
        connection.rollback()


def version_heads_quickly(connection: Connection) -> tuple[str, ...] | None:
    """alembic_version alone, in one statement: a fan-out asks every tenant "anything to do?"
    before it takes the tenant's lock. None when it cannot tell (no table yet): ask `read`."""
    from sqlalchemy.exc import DBAPIError

    try:
        return ledger.read_version_heads(connection, frozenset({ledger.VERSION_TABLE}))
    except DBAPIError:
        return None
    finally:
        connection.rollback()


def reconcile(graph: RevisionGraph, history: History) -> Reconciled:
    applied = graph.applied(head for head in history.version_heads if head in graph.revisions)
    if any(head not in graph.revisions for head in history.version_heads):
        # A head without a file hides its ancestry: the ledger is the best witness left.
        applied |= graph.applied(row.revision for row in history.rows if row.revision in graph.revisions)
    squashed = {pruned for pruned, squash in graph.replaced_by.items() if squash.revision in applied}
    kept = tuple(row for row in history.rows if row.revision in applied or row.revision in squashed)
    stale = tuple(row for row in history.rows if row not in kept)
    recorded = {row.revision for row in kept}
    unrecorded = tuple(revision for revision in graph.in_order(applied) if revision not in recorded)
    return Reconciled(applied, kept, stale, unrecorded)


def next_batch(rows: tuple[ledger.LedgerRow, ...]) -> int:
    return ledger.next_batch(list(rows))


def forget_stale(connection: Connection, reconciled: Reconciled) -> None:
    """Drop the ledger rows alembic_version disowns (a plain `alembic downgrade` ran, say)."""
    if reconciled.stale:
        ledger.record_reverted(connection, tuple(row.revision for row in reconciled.stale))


def ensure_tables(connection: Connection) -> None:
    ledger.ensure_ledger(connection)
    ledger.ensure_version_table(connection)


class VersionConflict(HistoryError):
    """alembic_version changed under us: another process migrated this database meanwhile."""


def replace_version(connection: Connection, expected: tuple[str, ...], heads: tuple[str, ...]) -> None:
    """Compare-and-set: replace alembic_version's rows only if they are still `expected`.

    The migration lock serialises manage.py runs; this catches everything else (a plain
    `alembic upgrade` at the same time, a lock lost with its connection)."""
    if tuple(sorted(expected)) == tuple(sorted(heads)):
        return
    table = ledger.version_table()
    for revision in expected:
        deleted = connection.execute(table.delete().where(table.c.version_num == revision)).rowcount
        if deleted != 1:
            raise _conflict(connection)
    if heads:
        connection.execute(table.insert(), [{"version_num": head} for head in heads])
    if tuple(sorted(ledger.read_version_heads(connection))) != tuple(sorted(heads)):
        raise _conflict(connection)


def _conflict(connection: Connection) -> VersionConflict:
    found = ", ".join(ledger.read_version_heads(connection)) or "no revision"
    return VersionConflict(
        f"alembic_version changed while this run was migrating (it now holds {found}): another "
        "process migrated this database at the same time; this run's changes were rolled back",
        hint="run migrate:status to see where the database stands, then migrate again",
    )
