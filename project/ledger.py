"""The ledger: which revision ran in which batch, when and for how long (Laravel's repository)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

LEDGER_TABLE = "manage_migrations"
VERSION_TABLE = "alembic_version"
STATE_TABLE = "manage_state"
FAILURE_TABLE = "manage_failed_migrations"
TOOL_TABLES = frozenset({LEDGER_TABLE, VERSION_TABLE, STATE_TABLE, FAILURE_TABLE})
ENVIRONMENT_KEY = "environment"


@dataclass(frozen=True)
class LedgerRow:
    """One ledger row; a value that cannot be read (the table edited by hand, say) is None,
    and `unreadable` says which value it was, for a warning naming the row."""

    revision: str
    name: str
    batch: int | None
    applied_at: datetime | None
    duration_ms: float | None
    checksum: str | None
    unreadable: tuple[str, ...] = ()

    @property
    def warning(self) -> str | None:
        if not self.unreadable:
            return None
        return (
            f"the ledger row of {self.name} ({self.revision}) has {', '.join(self.unreadable)}; "
            "shown as unknown"
        )


def parse_row(values: tuple[object, ...]) -> LedgerRow:
    """A ledger row from the driver's values (revision, name, batch, applied_at, duration_ms,
    checksum), read leniently: SQLite keeps whatever was written into a column."""
    revision, name, batch, applied_at, duration, checksum = values
    unreadable: list[str] = []
    batch_value = _as_int(batch)
    if batch_value is None:
        unreadable.append(f"batch {batch!r}, not a number")
    applied = _as_datetime(applied_at)
    if applied is None:
        unreadable.append(f"applied_at {applied_at!r}, not a date and time")
    duration_value = _as_float(duration)
    if duration_value is None and duration is not None:
        unreadable.append(f"duration_ms {duration!r}, not a number")
    return LedgerRow(
        str(revision),
        str(name),
        batch_value,
        applied,
        duration_value,
        checksum if isinstance(checksum, str) else None,
        tuple(unreadable),
    )


def _as_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _as_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value)) if isinstance(value, str) else None
    except ValueError:
        return None


@dataclass(frozen=True)
class FailureRow:
    """A migration that failed outside a transaction: what it did before the error is unknown."""

    revision: str
    name: str
    error: str
    failed_at: datetime


@functools.cache
def ledger_table() -> Table:
    from sqlalchemy import Column, DateTime, Float, Integer, MetaData, String, Table

    return Table(
        LEDGER_TABLE,
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("revision", String(64), nullable=False, unique=True),
        Column("name", String(255), nullable=False),
        Column("batch", Integer, nullable=False),
        Column("applied_at", DateTime, nullable=False),
        Column("duration_ms", Float),
        Column("checksum", String(64)),
    )


@functools.cache
def failure_table() -> Table:
    from sqlalchemy import Column, DateTime, MetaData, String, Table, Text

    return Table(
        FAILURE_TABLE,
        MetaData(),
        Column("revision", String(64), primary_key=True),
        Column("name", String(255), nullable=False),
        Column("error", Text, nullable=False),
        Column("failed_at", DateTime, nullable=False),
    )


def has_table(connection: Connection, name: str, present: frozenset[str] | None = None) -> bool:
    """Whether the table exists; `present` (from present_tables) answers without a query."""
    from sqlalchemy import inspect

    return name in present if present is not None else inspect(connection).has_table(name)


def present_tables(connection: Connection) -> frozenset[str]:
    """The tool's tables that exist where unqualified names resolve, in one catalog query instead
    of one per table (and not a listing of every table: a fan-out asks this of each tenant)."""
    from sqlalchemy import bindparam, text

    names = sorted(TOOL_TABLES)
    dialect = connection.dialect.name
    if dialect == "postgresql":
        checks = ", ".join(f"to_regclass(:name_{index}) IS NOT NULL" for index in range(len(names)))
        row = connection.execute(text(f"SELECT {checks}"), _bound(names)).one()
        return frozenset(name for name, found in zip(names, row, strict=True) if found)
    if dialect == "sqlite":
        query = text("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN :names")
    else:
        query = text(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name IN :names"
        )
    query = query.bindparams(bindparam("names", expanding=True))
    return frozenset(str(row[0]) for row in connection.execute(query, {"names": names})) & TOOL_TABLES


def _bound(names: list[str]) -> dict[str, str]:
    return {f"name_{index}": name for index, name in enumerate(names)}


def ensure_ledger(connection: Connection) -> None:
    ledger_table().create(connection, checkfirst=True)


@functools.cache
def version_table() -> Table:
    """alembic_version exactly as Alembic creates it, so plain `alembic` keeps working."""
    from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table

    return Table(
        VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )


def ensure_version_table(connection: Connection) -> None:
    version_table().create(connection, checkfirst=True)


def read_ledger(connection: Connection, present: frozenset[str] | None = None) -> list[LedgerRow]:
    """Rows in the order they were applied; an empty list when the table does not exist yet."""
    from sqlalchemy import column, select, table

    if not has_table(connection, LEDGER_TABLE, present):
        return []
    # Untyped columns: the driver's values go to parse_row as they are, so a value SQLAlchemy's
    # DateTime could not convert becomes a warning instead of an exception.
    names = ("revision", "name", "batch", "applied_at", "duration_ms", "checksum")
    raw = table(LEDGER_TABLE, column("id"), *(column(name) for name in names))
    query = select(*(raw.c[name] for name in names)).order_by(raw.c.id)
    return [parse_row(tuple(row)) for row in connection.execute(query)]


def read_version_heads(connection: Connection, present: frozenset[str] | None = None) -> tuple[str, ...]:
    """The revisions recorded in alembic_version, read without Alembic's machinery."""
    from sqlalchemy import column, select, table

    if not has_table(connection, VERSION_TABLE, present):
        return ()
    version = table(VERSION_TABLE, column("version_num"))
    return tuple(connection.execute(select(version.c.version_num)).scalars())


def next_batch(rows: list[LedgerRow]) -> int:
    return max((row.batch for row in rows if row.batch is not None), default=0) + 1


@dataclass(frozen=True)
class AppliedRow:
    """A ledger row about to be written: what `record_applied` stores for one migration."""

    revision: str
    name: str
    batch: int
    applied_at: datetime
    duration_ms: float
    checksum: str | None


# Well under SQLite's oldest limit of 999 bound parameters per statement.
_IN_CHUNK = 500


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[start : start + _IN_CHUNK] for start in range(0, len(values), _IN_CHUNK)]


def applied_now(
    revision: str, name: str, batch: int, duration_ms: float, checksum: str | None = None
) -> AppliedRow:
    return AppliedRow(revision, name, batch, datetime.now(UTC).replace(tzinfo=None), duration_ms, checksum)


def record_applied(connection: Connection, rows: list[AppliedRow]) -> None:
    """Replace the ledger rows of these revisions: a few statements however many rows."""
    if not rows:
        return
    table = ledger_table()
    record_reverted(connection, tuple(row.revision for row in rows))
    connection.execute(
        table.insert(),
        [
            {
                "revision": row.revision,
                "name": row.name,
                "batch": row.batch,
                "applied_at": row.applied_at,
                "duration_ms": round(row.duration_ms, 3),
                "checksum": row.checksum,
            }
            for row in rows
        ],
    )


def record_reverted(connection: Connection, revisions: tuple[str, ...]) -> None:
    table = ledger_table()
    for chunk in _chunks(list(revisions)):
        connection.execute(table.delete().where(table.c.revision.in_(chunk)))


@functools.cache
def state_table() -> Table:
    """Facts about the database itself, e.g. the environment it was last migrated in."""
    from sqlalchemy import Column, MetaData, String, Table

    return Table(
        STATE_TABLE,
        MetaData(),
        Column("name", String(64), primary_key=True),
        Column("value", String(255), nullable=False),
    )


def read_environment(connection: Connection) -> str | None:
    """The environment recorded by the last run that changed this database, if any."""
    from sqlalchemy import select

    if not has_table(connection, STATE_TABLE):
        return None
    table = state_table()
    return connection.execute(select(table.c.value).where(table.c.name == ENVIRONMENT_KEY)).scalar()


def record_environment(connection: Connection, environment: str) -> None:
    table = state_table()
    table.create(connection, checkfirst=True)
    connection.execute(table.delete().where(table.c.name == ENVIRONMENT_KEY))
    connection.execute(table.insert().values(name=ENVIRONMENT_KEY, value=environment))


def record_failure(connection: Connection, revision: str, name: str, error: str) -> None:
    table = failure_table()
    table.create(connection, checkfirst=True)
    connection.execute(table.delete().where(table.c.revision == revision))
    connection.execute(
        table.insert().values(
            revision=revision, name=name, error=error, failed_at=datetime.now(UTC).replace(tzinfo=None)
        )
    )


def read_failures(connection: Connection, present: frozenset[str] | None = None) -> list[FailureRow]:
    from sqlalchemy import select

    if not has_table(connection, FAILURE_TABLE, present):
        return []
    table = failure_table()
    rows = connection.execute(select(table).order_by(table.c.failed_at)).mappings()
    return [FailureRow(row["revision"], row["name"], row["error"], row["failed_at"]) for row in rows]


def clear_failure(connection: Connection, revision: str) -> None:
    table = failure_table()
    connection.execute(table.delete().where(table.c.revision == revision))


def update_checksum(connection: Connection, revision: str, checksum: str) -> None:
    table = ledger_table()
    connection.execute(table.update().where(table.c.revision == revision).values(checksum=checksum))
