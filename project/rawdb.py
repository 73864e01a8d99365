"""Read-only access to the history tables through the plain DB-API driver, so read-only commands
answer without importing SQLAlchemy. Anything unusual returns None: the caller then takes the
SQLAlchemy path, which also produces the proper error messages."""

from __future__ import annotations

import contextlib
import importlib
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from manage_migrations.ledger import FAILURE_TABLE, LEDGER_TABLE, VERSION_TABLE, LedgerRow, parse_row

if TYPE_CHECKING:
    from manage_migrations.core.url import DatabaseURL

LEDGER_COLUMNS = "revision, name, batch, applied_at, duration_ms, checksum"
HISTORY_TABLES = (VERSION_TABLE, LEDGER_TABLE, FAILURE_TABLE)
# Query parameters PyMySQL takes as they are (SQLAlchemy converts the timeouts to int the same way).
MYSQL_QUERY_KEYS = frozenset({"charset", "connect_timeout", "read_timeout"})
MYSQL_INT_KEYS = frozenset({"connect_timeout", "read_timeout"})


class ConnectFailed(Exception):
    """The server was tried and refused or did not answer: trying again through SQLAlchemy would
    only wait for the timeout a second time."""

    def __init__(self, message: str, elapsed: float) -> None:
        super().__init__(message)
        self.elapsed = elapsed


class HistoryState(NamedTuple):
    heads: tuple[str, ...]
    rows: list[LedgerRow]
    failed: frozenset[str]


def _connect(url: DatabaseURL) -> tuple[Any, str] | bool | None:
    if url.backend == "sqlite" and url.driver == "pysqlite":
        return _connect_sqlite(url)
    keys = [key for key, _ in url.query]
    if len(keys) != len(set(keys)):
        return None  # a repeated parameter: leave its meaning to SQLAlchemy's dialect
    query = dict(url.query)
    # The keywords SQLAlchemy's dialects pass: only what the URL has, plus our defaults.
    credentials = {"host": url.host, "port": url.port, "user": url.user, "password": url.password}
    given = {key: value for key, value in credentials.items() if value is not None}
    options = {**url.driver_options(), **query}
    started = time.monotonic()
    if url.backend == "postgresql" and url.driver in ("psycopg2", "psycopg"):
        driver = importlib.import_module(url.driver)
        try:
            connection = driver.connect(dbname=url.database, **given, **options)
        except driver.OperationalError as exc:
            raise ConnectFailed(str(exc), time.monotonic() - started) from None
        return connection, "postgresql"
    if url.backend not in ("mysql", "mariadb") or url.driver != "pymysql" or set(query) - MYSQL_QUERY_KEYS:
        return None
    import pymysql

    options = {key: int(str(value)) if key in MYSQL_INT_KEYS else value for key, value in options.items()}
    try:
        connection = pymysql.connect(database=url.database, **given, **options)  # type: ignore[call-overload]
    except pymysql.err.OperationalError as exc:
        message = str(exc.args[-1] if exc.args else exc)
        raise ConnectFailed(message, time.monotonic() - started) from None
    return connection, "mysql"


def _connect_sqlite(url: DatabaseURL) -> tuple[Any, str] | bool | None:
    import sqlite3

    database = url.sqlite_file
    if url.query or database is None:
        return None
    if not database.exists() and database.parent.is_dir():
        return False  # no database file yet: an empty history, and nothing is created
    if not database.is_file():
        return None
    # Read-only: a status query must never create the database file. The path goes into an
    # SQLite URI, where "?" and "#" would end it.
    path = str(database.resolve()).replace("%", "%25").replace("?", "%3F").replace("#", "%23")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True), "sqlite"


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


def read_state(url: DatabaseURL) -> HistoryState | None:
    """Version heads, ledger rows and failed revisions, or None when the plain driver cannot be used.

    Raises ConnectFailed when the server itself could not be reached.
    """
    try:
        opened = _connect(url)
    except ConnectFailed:
        raise
    except Exception:
        return None
    if opened is None:
        return None
    if not isinstance(opened, tuple):  # no database file yet: an empty history, nothing created
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
            rows = [parse_row(tuple(row)) for row in cursor.fetchall()]
        if FAILURE_TABLE in tables:
            cursor.execute(f"SELECT revision FROM {FAILURE_TABLE}")
            failed = frozenset(row[0] for row in cursor.fetchall())
        connection.rollback()
    return HistoryState(heads, rows, failed)
