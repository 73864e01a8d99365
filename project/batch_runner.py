"""Runs a batch of migrations in the caller's transaction, one savepoint per migration, and writes
the version table and the ledger once at the end instead of after every migration.

Alembic's own loop updates alembic_version (and our hook the ledger) after each migration, which
is what a transaction per migration needs. Inside one transaction only the state after the last
migration that succeeded can ever be committed, so that is the only state worth writing: a
failed migration is rolled back to its savepoint, the bookkeeping of the ones before it is
written, and the caller commits. A crash before the commit leaves nothing of the batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alembic.operations import Operations
from alembic.runtime.migration import HeadMaintainer, MigrationContext, MigrationStep

from project.core.interrupts import transaction_alive
from project.recorder import Recorder


class _HeadsInMemory(HeadMaintainer):
    """Alembic's head arithmetic for each step, without the SQL it would send per step."""

    def _insert_version(self, version: str) -> None:
        self.heads.add(version)

    def _delete_version(self, version: str) -> None:
        self.heads.remove(version)

    def _update_version(self, from_: str, to_: str) -> None:
        self.heads.remove(from_)
        self.heads.add(to_)

    def update_to_step(self, step: Any) -> None:
        # Undoing the only head that has a single parent moves the head to that parent. Alembic
        # reaches the same answer by walking all ancestors of the parent, once per step, which
        # makes rolling back a long history quadratic.
        revision = step.revision
        parents = revision._normalized_down_revisions
        if (
            step.is_downgrade
            and self.heads == {revision.revision}
            and len(parents) == 1
            and tuple(revision._versioned_down_revisions) == tuple(parents)
        ):
            self._update_version(revision.revision, parents[0])
            return
        super().update_to_step(step)


class _Savepoint:
    """SAVEPOINT / RELEASE through the driver's own cursor: a thousand pairs cost a third of a
    second through SQLAlchemy's nested-transaction objects, which this loop does not need (the
    outer transaction belongs to the caller and is still SQLAlchemy's)."""

    NAME = "manage_migration"

    def __init__(self, connection: Any) -> None:
        self.cursor = connection.connection.driver_connection.cursor()

    def begin(self) -> None:
        self.cursor.execute(f"SAVEPOINT {self.NAME}")

    def release(self) -> None:
        self.cursor.execute(f"RELEASE SAVEPOINT {self.NAME}")

    def rollback(self) -> None:
        self.cursor.execute(f"ROLLBACK TO SAVEPOINT {self.NAME}")
        self.cursor.execute(f"RELEASE SAVEPOINT {self.NAME}")


def run_batch(context: MigrationContext, steps: Iterable[MigrationStep], recorder: Recorder) -> None:
    """Run `steps` in savepoints; on success or failure, write what the completed ones did."""
    connection = context.connection
    assert connection is not None
    start = tuple(context.get_current_heads())
    if not start:
        context._ensure_version_table()
    heads = _HeadsInMemory(context, start)
    context.impl.start_migrations()
    recorder.deferred = True
    try:
        with Operations.context(context):
            savepoint = _Savepoint(connection)
            for step in steps:
                savepoint.begin()
                try:
                    step.migration_fn()
                except BaseException:
                    if transaction_alive(connection):
                        savepoint.rollback()
                    raise
                savepoint.release()
                heads.update_to_step(step)
                recorder(ctx=context, step=step.info, heads=set(heads.heads), run_args={})
    finally:
        # An interrupted SQLite write statement ends the whole transaction: nothing left to record.
        if transaction_alive(connection):
            if set(start) != heads.heads:
                _write_version_table(context, heads.heads)
            recorder.flush(connection)


def _write_version_table(context: MigrationContext, heads: set[str]) -> None:
    connection = context.connection
    assert connection is not None
    version = context._version
    connection.execute(version.delete())
    if heads:
        connection.execute(version.insert(), [{"version_num": head} for head in sorted(heads)])
