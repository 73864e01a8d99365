"""Keeps the ledger in step when plain `alembic upgrade` / `downgrade` runs our environment
(Alembic's on_version_apply hook); manage.py's own runs write it in project.core.executor."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

from manage_migrations import ledger
from manage_migrations.checksums import checksum


@dataclass
class Recorder:
    """One batch per plain `alembic` run, a row per applied revision, in the step's transaction."""

    batch: int | None = None
    mark: float = field(default_factory=perf_counter)

    def restart_clock(self) -> None:
        self.mark = perf_counter()

    def __call__(self, *, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        duration_ms = (perf_counter() - self.mark) * 1000
        if not ctx.as_sql:
            connection = ctx.connection
            ledger.ensure_ledger(connection)
            if not step.is_upgrade:
                ledger.record_reverted(connection, tuple(step.up_revision_ids))
            else:
                if self.batch is None:
                    self.batch = ledger.next_batch(ledger.read_ledger(connection))
                path = Path(step.up_revision.path)
                row = ledger.applied_now(
                    step.up_revision_id, path.stem, self.batch, duration_ms, checksum(path)
                )
                ledger.record_applied(connection, [row])
        self.restart_clock()
