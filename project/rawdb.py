"""Read-only access to the history tables through the plain DB-API driver, so read-only commands
answer without importing SQLAlchemy. Anything unusual returns None: the caller then takes the
SQLAlchemy path, which also produces the proper error messages."""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from project.ledger import LEDGER_TABLE, VERSION_TABLE, LedgerRow

CONNECT_TIMEOUT_SECONDS = 5
LEDGER_COLUMNS = "revision, name, batch, applied_at, duration_ms, checksum"
DRIVERS = {
    "sqlite": ("", "pysqlite"),
    "postgres": ("", "psycopg2"),
    "postgresql": ("", "psycopg2"),
    "mysql": ("", "pymysql"),
    "mariadb": ("", "pymysql"),
}
MYSQL_QUERY_KEYS = frozenset({"charset"})


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

        connection = psycopg2.connect(
            dbname=database,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="manage.py",
            **{k: v for k, v in credentials.items() if v is not None},
            **query,
        )
        return connection, "postgresql"
    if set(query) - MYSQL_QUERY_KEYS:
        return None
    import pymysql

    connection = pymysql.connect(
        database=database,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        **{k: v for k, v in credentials.items() if v is not None},
        **query,
    )
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
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)",
            (VERSION_TABLE, LEDGER_TABLE),
        )
        return {row[0] for row in cursor.fetchall()}
    if dialect == "postgresql":
        cursor.execute("SELECT to_regclass(%s), to_regclass(%s)", (VERSION_TABLE, LEDGER_TABLE))
        version, ledger = cursor.fetchone()
        return {name for name, found in ((VERSION_TABLE, version), (LEDGER_TABLE, ledger)) if found}
    cursor.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_name IN (%s, %s)",
        (VERSION_TABLE, LEDGER_TABLE),
    )
    return {row[0] for row in cursor.fetchall()}


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def read_state(raw_url: str, root: Path) -> tuple[tuple[str, ...], list[LedgerRow]] | None:
    """Version heads and ledger rows, or None when the plain driver cannot be used."""
    try:
        opened = _connect(raw_url, root)
    except Exception:
        return None
    if opened is None:
        return None
    if opened is False:
        return (), []
    connection, dialect = opened
    with contextlib.closing(connection):
        cursor = connection.cursor()
        tables = _existing_tables(cursor, dialect)
        heads: tuple[str, ...] = ()
        rows: list[LedgerRow] = []
        if VERSION_TABLE in tables:
            cursor.execute(f"SELECT version_num FROM {VERSION_TABLE}")
            heads = tuple(row[0] for row in cursor.fetchall())
        if LEDGER_TABLE in tables:
            cursor.execute(f"SELECT {LEDGER_COLUMNS} FROM {LEDGER_TABLE} ORDER BY id")
            rows = [
                LedgerRow(rev, name, batch, _as_datetime(applied), duration, checksum)
                for rev, name, batch, applied, duration, checksum in cursor.fetchall()
            ]
        connection.rollback()
    return heads, rows
