"""Typed progress events and result types: the core reports through these and never prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from manage_migrations.integrity import EditedMigration
    from manage_migrations.wipe import Dropped


@dataclass(frozen=True)
class StepStarted:
    """A migration begins: its line shows while it runs (a 20-minute CREATE INDEX is visible)."""

    revision: str
    name: str
    upgrade: bool


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
    fake: bool = False


@dataclass(frozen=True)
class DumpLoaded:
    """An empty database was first given the schema dump, so fewer migrations remain."""

    path: Path
    statements: int
    database: str


@dataclass(frozen=True)
class Dropping:
    """migrate:fresh is about to drop what the project owns in this database."""

    database: str


@dataclass(frozen=True)
class PhaseDone:
    """migrate:refresh finished rolling back: its summary belongs before the migrate heading."""

    result: RunResult


@dataclass(frozen=True)
class LockWaiting:
    """Another process holds the migration lock; announced once before waiting for it."""

    holder: str
    timeout: float


@dataclass(frozen=True)
class LedgerReconciled:
    """The ledger disagreed with alembic_version and was corrected (one line for the user), or
    some of its rows hold values that cannot be read (a warning naming each)."""

    note: str | None
    warnings: tuple[str, ...] = ()


Event = Union[
    StepStarted,
    StepDone,
    RunStarted,
    DumpLoaded,
    Dropping,
    PhaseDone,
    LockWaiting,
    LedgerReconciled,
    "Dropped",
]
ProgressCallback = Callable[[Event], None]


def ignore(_event: Event) -> None:
    return None


@dataclass(frozen=True)
class FailedStep:
    """A migration (or the batch's COMMIT) failed; where the database stands afterwards."""

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
    commit_failed: bool = False
    rolled_back: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunResult:
    """The outcome of migrate or rollback: what ran (committed), and what failed if anything did."""

    database: str
    batch: int | None
    steps: tuple[StepDone, ...]
    failed: FailedStep | None = None
    pretend: bool = False
    edited: tuple[EditedMigration, ...] = ()
    fake: bool = False

    @property
    def nothing_to_do(self) -> bool:
        return not self.steps and self.failed is None
