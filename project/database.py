"""Database URLs (normalising, redacting), engine creation and turning connect failures into errors."""

from __future__ import annotations

import contextlib
import importlib.util
import re
from pathlib import Path
from typing import TYPE_CHECKING

from project.errors import ConfigError, DatabaseUnreachable

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, Engine

CONNECT_TIMEOUT_SECONDS = 5
# How often the server checks that a client running a long statement is still there, so a
# killed migrate releases its locks within seconds (PostgreSQL 14+).
CLIENT_CHECK_INTERVAL = "1s"
POSTGRES_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
SECRET_QUERY_KEYS = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)
USERINFO_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def _postgres_driver() -> str:
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; use whichever driver is installed.
    if importlib.util.find_spec("psycopg2") is not None:
        return "psycopg2"
    return "psycopg"


def parse_url(raw: str, root: Path) -> URL:
    """Accept postgres://, postgresql://, mysql://, mariadb:// and relative SQLite paths."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise ConfigError(
            # The raw text is not echoed: in a malformed URL, no part is known not to be a secret.
            "malformed database URL: it is not of the form dialect://user:password@host/database",
            hint="expected dialect://user:password@host:port/database, "
            "e.g. postgresql://app@127.0.0.1/app or sqlite:///database.sqlite3",
        ) from exc
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        url = url.set(drivername=f"postgresql+{driver or _postgres_driver()}")
    elif backend in ("mysql", "mariadb"):
        url = url.set(drivername=f"{backend}+{driver or 'pymysql'}")
    elif backend == "sqlite" and url.database and url.database != ":memory:" and not is_sqlite_uri(url):
        path = Path(url.database)
        if not path.is_absolute():
            url = url.set(database=str((root / path).resolve()))
    return url


SQLITE_CACHE_KIB = 32768


def is_sqlite_uri(url: URL) -> bool:
    """sqlite:///file:path?mode=ro&uri=true: the database is an SQLite URI, not a plain path."""
    return bool(url.database) and url.database.startswith("file:") and url.query.get("uri") == "true"


def sqlite_path(url: URL) -> Path | None:
    """The file behind an SQLite URL (plain path or URI); None for in-memory databases."""
    if url.database in (None, "", ":memory:"):
        return None
    return Path(url.database.removeprefix("file:") if is_sqlite_uri(url) else url.database)


def secrets_in(raw: str) -> list[str]:
    """The password and secret query values of a URL as typed, even one SQLAlchemy cannot parse."""
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(raw)
        found = [parts.password] if parts.password else []
    except ValueError:
        return []
    found += [value for key, value in parse_qsl(parts.query) if SECRET_QUERY_KEYS.search(key)]
    return [secret for secret in found if len(secret) >= 3]


def redact_text(text: str) -> str:
    """Hide the password of any URL-shaped text, including ones that failed to parse."""
    return USERINFO_PASSWORD.sub(r"\1***@", text)


def display_url(url: URL, root: Path | None = None) -> str:
    """The URL as users may see it: no password, no secret query values, short SQLite paths."""
    safe = url
    secret_keys = [key for key in url.query if SECRET_QUERY_KEYS.search(key)]
    if secret_keys:
        safe = url.update_query_dict({key: "***" for key in secret_keys})
    backend = url.get_backend_name()
    if backend == "sqlite" and root is not None and url.database:
        with contextlib.suppress(ValueError):
            safe = safe.set(database=str(Path(url.database).relative_to(root)))
    text = safe.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")
    if backend in ("postgresql", "mysql", "mariadb"):
        text = text.replace(f"{safe.drivername}://", f"{backend}://", 1)
    elif backend == "sqlite":
        text = text.replace("file%3A", "file:", 1)
    return text


def scrub(text: str, url: URL) -> str:
    """Remove the URL's secrets from any text a driver produced, before it is shown."""
    secrets = [url.password] if url.password else []
    secrets += [str(value) for key, value in url.query.items() if SECRET_QUERY_KEYS.search(key)]
    for secret in secrets:
        if secret and len(str(secret)) >= 3:
            text = text.replace(str(secret), "***")
    return redact_text(text)


def create_engine_for(url: URL, application_name: str = "manage.py") -> Engine:
    """An engine whose SQLite connections really run DDL inside transactions."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    backend = url.get_backend_name()
    connect_args: dict[str, object] = {}
    if backend == "postgresql" and url.get_driver_name() in ("psycopg2", "psycopg"):
        connect_args = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "application_name": application_name,
            **POSTGRES_KEEPALIVES,
        }
    elif backend in ("mysql", "mariadb"):
        # PyMySQL's connect_timeout covers only the TCP connect; without a read timeout a server
        # that accepts and never sends its greeting would hang us forever.
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, "read_timeout": CONNECT_TIMEOUT_SECONDS}
    # Values given in the URL's query string win over these defaults.
    connect_args = {key: value for key, value in connect_args.items() if key not in url.query}
    try:
        engine = create_engine(url, connect_args=connect_args)
    except NoSuchModuleError as exc:
        raise ConfigError(
            f"unknown database scheme {url.drivername!r} in {display_url(url)}",
            hint="use sqlite:///file.sqlite3, postgresql://... or mysql://...",
        ) from exc
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(f"cannot use {display_url(url)}: {scrub(str(exc), url)}") from exc

    if backend == "sqlite":
        # SQLAlchemy's documented recipe: pysqlite otherwise commits before every DDL statement.
        @event.listens_for(engine, "connect")
        def _disable_pysqlite_transactions(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None
            # Every ALTER TABLE makes SQLite re-read the whole schema; with the default 2 MB page
            # cache a batch over a large schema reads it from the file each time.
            dbapi_connection.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")

        @event.listens_for(engine, "begin")
        def _emit_begin(connection) -> None:
            connection.exec_driver_sql("BEGIN")

    if backend in ("mysql", "mariadb") and "read_timeout" not in url.query:

        @event.listens_for(engine, "connect")
        def _no_read_timeout_after_connect(dbapi_connection, _record) -> None:
            # Connected: long migrations must not time out. PyMySQL reapplies this on the next read.
            dbapi_connection._read_timeout = None

    if backend == "postgresql":

        @event.listens_for(engine, "connect")
        def _notice_dead_clients(dbapi_connection, _record) -> None:
            if getattr(dbapi_connection, "server_version", 0) >= 140000:
                cursor = dbapi_connection.cursor()
                cursor.execute(f"SET client_connection_check_interval = '{CLIENT_CHECK_INTERVAL}'")
                cursor.close()
                dbapi_connection.commit()

    return engine


def _unreachable_hint(url: URL, detail: str) -> str:
    lowered = detail.lower()
    host = f"{url.host or 'localhost'}:{url.port or _default_port(url)}"
    if "password" in lowered or "access denied" in lowered or "authentication" in lowered:
        return "check the user name and password in the database URL"
    if "does not exist" in lowered or "unknown database" in lowered:
        return f"create the database {url.database!r} first, or fix the name in the URL"
    if "timeout" in lowered or "timed out" in lowered:
        seconds = url.query.get("connect_timeout", CONNECT_TIMEOUT_SECONDS)
        return f"{host} did not answer within {seconds} s; check host, port and firewall"
    if "unable to open database file" in lowered:
        return f"check that the directory of {url.database} exists and is writable"
    return f"is the server running and accepting TCP connections on {host}?"


def _default_port(url: URL) -> int | str:
    return {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}.get(url.get_backend_name(), "")


def connect(engine: Engine) -> Connection:
    """Open a connection, or raise DatabaseUnreachable with a redacted URL and a hint."""
    from sqlalchemy.exc import DBAPIError

    url = engine.url
    path = sqlite_path(url) if url.get_backend_name() == "sqlite" else None
    if path is not None:
        directory = path.parent
        if not directory.is_dir():
            raise DatabaseUnreachable(
                f"cannot open {display_url(url)}: directory {directory} does not exist",
                hint="create the directory or fix the path in the database URL",
            )
    try:
        return engine.connect()
    except TypeError as exc:
        # The driver rejected a keyword: an option in the URL's query string it does not know.
        raise ConfigError(
            f"cannot connect to {display_url(url)}: {scrub(str(exc), url)}",
            hint="remove or fix the unsupported option in the URL's query string",
        ) from None
    except DBAPIError as exc:
        raise unreachable(url, str(exc.orig) if exc.orig else str(exc)) from None


def unreachable(url: URL, driver_message: str) -> DatabaseUnreachable:
    """The one-line error for a failed connection: redacted URL, the driver's words, a hint."""
    lines = driver_message.strip().splitlines()
    detail = scrub(lines[0] if lines else driver_message, url)
    return DatabaseUnreachable(
        f"cannot connect to {display_url(url)}: {detail}", hint=_unreachable_hint(url, detail)
    )


def display_raw_url(raw: str) -> str:
    """display_url's redaction for callers that must not import SQLAlchemy (read-only fast paths)."""
    from urllib.parse import parse_qsl, urlencode

    # Only the query string is rebuilt: urlunsplit would turn sqlite:///file into sqlite:/file.
    location, has_query, query = raw.partition("?")
    if not has_query:
        return redact_text(raw)
    try:
        pairs = [(k, "***" if SECRET_QUERY_KEYS.search(k) else v) for k, v in parse_qsl(query)]
    except ValueError:
        return "(malformed database URL)"
    return redact_text(f"{location}?{urlencode(pairs, safe='*')}")


def check_writable(connection: Connection) -> None:
    """SQLite opens a read-only file without complaint; find out before the first migration does."""
    from sqlalchemy.exc import OperationalError

    url = connection.engine.url
    if url.get_backend_name() != "sqlite":
        return
    transaction = connection.begin()
    try:
        version = int(connection.exec_driver_sql("PRAGMA user_version").scalar() or 0)
        connection.exec_driver_sql(f"PRAGMA user_version = {version}")
    except OperationalError as exc:
        detail = str(exc.orig).strip() if exc.orig else str(exc)
        raise DatabaseUnreachable(
            f"cannot write to {display_url(url)}: {detail}",
            hint="make the file and its directory (SQLite writes a journal there) writable, "
            "or remove mode=ro from the URL",
        ) from None
    finally:
        transaction.rollback()
