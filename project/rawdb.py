"""Read-only access to the history tables through the plain DB-API driver, so read-only commands
answer without importing SQLAlchemy. Anything unusual returns None: the caller then takes the
SQLAlchemy path, which also produces the proper error messages."""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

from project.ledger import FAILURE_TABLE, LEDGER_TABLE, VERSION_TABLE, LedgerRow

CONNECT_TIMEOUT_SECONDS = 5
LEDGER_COLUMNS = "revision, name, batch, applied_at, duration_ms, checksum"
HISTORY_TABLES = (VERSION_TABLE, LEDGER_TABLE, FAILURE_TABLE)
DRIVERS = {
    "sqlite": ("", "pysqlite"),
    "postgres": ("", "psycopg2"),
    "postgresql": ("", "psycopg2"),
    "mysql": ("", "pymysql"),
    "mariadb": ("", "pymysql"),
}
MYSQL_QUERY_KEYS = frozenset({"charset"})


class ConnectFailed(Exception):
    """The server was tried and refused or did not answer: trying again through SQLAlchemy would
    only wait for the timeout a second time."""


class HistoryState(NamedTuple):
    heads: tuple[str, ...]
    rows: list[LedgerRow]
    failed: frozenset[str]


def _connect(raw_url: str, root: Path) -> tuple[Any, str] | bool | None:
    parts = urlsplit(raw_url)
    scheme, _, driver = parts.scheme.partition("+")
    if scheme not in DRIVERS or driver not in DRIVERS[scheme]:
        return None
    query = dict(parse_qsl(parts.query))
    if scheme == "sqlite":
        return _connect_sqlite(parts.path, parts.netloc, query, root)
    database = unquote(parts.path.lstrip("/"))
    credentials = {
        "host": parts.hostname or "localhost",
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }
    if parts.port:
        credentials["port"] = parts.port
    if scheme in ("postgres", "postgresql"):
        import psycopg2

        options = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, "application_name": "manage.py", **query}
        try:
            connection = psycopg2.connect(
                dbname=database, **{k: v for k, v in credentials.items() if v is not None}, **options
            )
        except psycopg2.OperationalError as exc:
            raise ConnectFailed(str(exc)) from None
        return connection, "postgresql"
    if set(query) - MYSQL_QUERY_KEYS:
        return None
    import pymysql

    try:
        connection = pymysql.connect(
            database=database,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=CONNECT_TIMEOUT_SECONDS,
            **{k: v for k, v in credentials.items() if v is not None},
            **query,
        )
    except pymysql.err.OperationalError as exc:
        raise ConnectFailed(str(exc.args[-1] if exc.args else exc)) from None
    return connection, "mysql"


def _connect_sqlite(
    path: str, netloc: str, query: dict[str, str], root: Path
) -> tuple[Any, str] | bool | None:
    import sqlite3

    if netloc or query or path in ("", "/", "/:memory:"):
        return None
    database = Path(unquote(path[1:]))
    if not database.is_absolute():
        database = root / database
    if not database.exists() and database.parent.is_dir():
        return False  # no database file yet: an empty history, and nothing is created
    if not database.is_file():
        return None
    # Read-only: a status query must never create the database file.
    return sqlite3.connect(f"file:{database}?mode=ro", uri=True), "sqlite"


def _existing_tables(cursor: Any, dialect: str) -> set[str]:
    if dialect == "sqlite":
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?, ?)", HISTORY_TABLES
        )
        return {row[0] for row in cursor.fetchall()}
    if dialect == "postgresql":
        cursor.execute("SELECT to_regclass(%s), to_regclass(%s), to_regclass(%s)", HISTORY_TABLES)
        found = cursor.fetchone()
        return {name for name, oid in zip(HISTORY_TABLES, found, strict=True) if oid}
    cursor.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_name IN (%s, %s, %s)",
        HISTORY_TABLES,
    )
    return {row[0] for row in cursor.fetchall()}


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def read_state(raw_url: str, root: Path) -> HistoryState | None:
    """Version heads, ledger rows and failed revisions, or None when the plain driver cannot be used.

    Raises ConnectFailed when the server itself could not be reached.
    """
    try:
        opened = _connect(raw_url, root)
    except ConnectFailed:
        raise
    except Exception:
        return None
    if opened is None:
        return None
    if opened is False:
        return HistoryState((), [], frozenset())
    connection, dialect = opened
    with contextlib.closing(connection):
        cursor = connection.cursor()
        tables = _existing_tables(cursor, dialect)
        heads: tuple[str, ...] = ()
        rows: list[LedgerRow] = []
        failed: frozenset[str] = frozenset()
        if VERSION_TABLE in tables:
            cursor.execute(f"SELECT version_num FROM {VERSION_TABLE}")
            heads = tuple(row[0] for row in cursor.fetchall())
        if LEDGER_TABLE in tables:
            cursor.execute(f"SELECT {LEDGER_COLUMNS} FROM {LEDGER_TABLE} ORDER BY id")
            rows = [
                LedgerRow(rev, name, batch, _as_datetime(applied), duration, checksum)
                for rev, name, batch, applied, duration, checksum in cursor.fetchall()
            ]
        if FAILURE_TABLE in tables:
            cursor.execute(f"SELECT revision FROM {FAILURE_TABLE}")
            failed = frozenset(row[0] for row in cursor.fetchall())
        connection.rollback()
    return HistoryState(heads, rows, failed)
