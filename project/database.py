"""Engine creation over the one DatabaseURL (project/core/url.py), and turning connect failures
into errors that name the database without its secrets."""

from __future__ import annotations

import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manage_migrations import compat
from manage_migrations.core import url as urls
from manage_migrations.core.url import DatabaseURL
from manage_migrations.errors import ConfigError, ConnectionLost, DatabaseUnreachable

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

# How often the server checks that a client running a long statement is still there, so a
# killed migrate releases its locks within seconds (PostgreSQL 14+).
CLIENT_CHECK_INTERVAL = "1s"
SQLITE_CACHE_KIB = 32768
# The DatabaseURL each engine was made from: connect() and check_writable() name it in errors.
_ORIGINS: weakref.WeakKeyDictionary[Engine, DatabaseURL] = weakref.WeakKeyDictionary()


def parse_url(raw: str, root: Path) -> DatabaseURL:
    """Accept postgres://, postgresql://, mysql://, mariadb://, async drivers and relative SQLite paths."""
    return urls.parse(raw, root)


def _check_driver_options(url: DatabaseURL) -> None:
    """Options PyMySQL would only trip over with an AttributeError deep inside connect()."""
    charset = url.param("charset")
    if url.backend in urls.MYSQL_BACKENDS and url.driver == "pymysql" and charset is not None:
        from pymysql.charset import charset_by_name

        if charset_by_name(charset) is None:
            raise ConfigError(
                f"unknown MySQL character set {charset!r} in the charset parameter of {url.display}",
                hint="use e.g. ?charset=utf8mb4, or remove the charset parameter",
            )


def create_engine_for(url: DatabaseURL, application_name: str = "manage.py") -> Engine:
    """An engine whose SQLite connections really run DDL inside transactions."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    backend = url.backend
    _check_driver_options(url)
    try:
        engine = create_engine(url.for_sqlalchemy(), connect_args=url.driver_options(application_name))
    except NoSuchModuleError as exc:
        raise ConfigError(
            f"unknown database scheme {url.drivername!r} in {url.display}",
            hint="use sqlite:///file.sqlite3, postgresql://... or mysql://...",
        ) from exc
    except ImportError as exc:
        if (install := urls.install_hint(url.driver)) is None:
            raise ConfigError(f"cannot use {url.display}: {url.scrub(str(exc))}") from exc
        raise ConfigError(
            f"the database driver {url.driver} ({url.drivername}) is not installed",
            hint=f"install it: {install}",
        ) from exc
    except ArgumentError as exc:
        raise ConfigError(f"cannot use {url.display}: {url.scrub(str(exc))}") from exc
    _ORIGINS[engine] = url

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

    if backend in urls.MYSQL_BACKENDS and not url.has_param("read_timeout"):

        @event.listens_for(engine, "connect")
        def _no_read_timeout_after_connect(dbapi_connection: Any, _record: Any) -> None:
            compat.disable_pymysql_read_timeout(dbapi_connection)

    if backend == "postgresql":

        @event.listens_for(engine, "connect")
        def _notice_dead_clients(dbapi_connection, _record) -> None:
            # `info` is libpq's connection info on psycopg2 and psycopg 3 alike.
            if dbapi_connection.info.server_version >= 140000:
                cursor = dbapi_connection.cursor()
                cursor.execute(f"SET client_connection_check_interval = '{CLIENT_CHECK_INTERVAL}'")
                cursor.close()
                dbapi_connection.commit()

    return engine


def _unreachable_hint(url: DatabaseURL, detail: str, elapsed: float | None) -> str:
    lowered = detail.lower()
    host = f"{url.host or 'localhost'}:{url.port or _default_port(url)}"
    if "password" in lowered or "access denied" in lowered or "authentication" in lowered:
        return "check the user name and password in the database URL"
    if "role" in lowered and "does not exist" in lowered:
        return f"create the role {url.user!r} on the server, or fix the user name in the URL"
    if "does not exist" in lowered or "unknown database" in lowered:
        return f"create the database {url.database!r} first, or fix the name in the URL"
    if "timeout" in lowered or "timed out" in lowered:
        # The time it really took: libpq waits connect_timeout per address a host name has.
        seconds = url.connect_timeout if elapsed is None else max(1, round(elapsed))
        return f"{host} did not answer within {seconds} s; check host, port and firewall"
    if "unable to open database file" in lowered:
        return f"check that the directory of {url.database} exists and is writable"
    return f"is the server running and accepting TCP connections on {host}?"


def _default_port(url: DatabaseURL) -> int | str:
    return {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}.get(url.backend, "")


def connect(engine: Engine) -> Connection:
    """Open a connection, or raise DatabaseUnreachable with a redacted URL and a hint."""
    from sqlalchemy.exc import DBAPIError

    url = _ORIGINS[engine]
    path = url.sqlite_file
    if path is not None:
        directory = path.parent
        if not directory.is_dir():
            raise DatabaseUnreachable(
                f"cannot open {url.display}: directory {directory} does not exist",
                hint="create the directory or fix the path in the database URL",
            )
    started = time.monotonic()
    try:
        return engine.connect()
    except TypeError as exc:
        # The driver rejected a keyword: an option in the URL's query string it does not know.
        raise _bad_option(url, str(exc)) from None
    except DBAPIError as exc:
        message = str(exc.orig) if exc.orig else str(exc)
        if "invalid connection option" in message:  # libpq's word for an unknown query parameter
            raise _bad_option(url, message) from None
        raise unreachable(url, message, time.monotonic() - started) from None


def _bad_option(url: DatabaseURL, message: str) -> ConfigError:
    lines = message.strip().splitlines()
    return ConfigError(
        f"cannot connect to {url.display}: {url.scrub(lines[0] if lines else message)}",
        hint="remove or fix the unsupported option in the URL's query string",
    )


def unreachable(url: DatabaseURL, driver_message: str, elapsed: float | None = None) -> DatabaseUnreachable:
    """The one-line error for a failed connection: redacted URL, the driver's words, a hint."""
    lines = driver_message.strip().splitlines()
    detail = url.scrub(lines[0] if lines else driver_message)
    return DatabaseUnreachable(
        f"cannot connect to {url.display}: {detail}", hint=_unreachable_hint(url, detail, elapsed)
    )


def schema_exists(connection: Connection, name: str) -> bool:
    """Whether the server has the schema (PostgreSQL) or database (MariaDB/MySQL) `name`."""
    query = (
        "SELECT 1 FROM pg_namespace WHERE nspname = %(name)s"
        if connection.dialect.name == "postgresql"
        else "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %(name)s"
    )
    return connection.exec_driver_sql(query, {"name": name}).first() is not None


def enter_schema(connection: Connection, schema: str) -> None:
    """Point the connection at a tenant's schema (PostgreSQL) or database (MariaDB), Alembic's
    multi-tenancy recipe: unqualified names in migrations, reflection and the tool's own tables
    all resolve there. A missing one is refused: migrating a typo into existence helps nobody."""
    from manage_migrations.program import command_prefix

    dialect = connection.dialect
    quoted = dialect.identifier_preparer.quote_identifier(schema)
    if dialect.name == "postgresql":
        # One round trip: the path is set only if the schema exists (a fan-out does this per tenant).
        switch = (
            "SELECT set_config('search_path', %(quoted)s, false) FROM pg_namespace WHERE nspname = %(name)s"
        )
        found = connection.exec_driver_sql(switch, {"quoted": quoted, "name": schema}).first() is not None
    elif dialect.name in urls.MYSQL_BACKENDS:
        found = schema_exists(connection, schema)
        if found:
            connection.exec_driver_sql(f"USE {quoted}")
    else:
        raise ConfigError(
            f"tenants by schema need PostgreSQL or MariaDB/MySQL, not {dialect.name}",
            hint='use mode = "database" with a url template in [tool.manage.tenants]',
        )
    connection.commit()  # a SET rolled back with its transaction would be undone
    if not found:
        url = _ORIGINS[connection.engine]
        raise ConfigError(
            f"the schema {schema} does not exist on {url.display}",
            hint=f"create it with `{command_prefix()} tenants:create {schema}`",
        )
    dialect.default_schema_name = schema


def lost(url: DatabaseURL, schema: str | None, exc: Exception) -> ConnectionLost:
    """The one message for a server that went away in the middle of a command."""
    detail = compat.describe_error(exc).strip().splitlines()
    where = url.display if schema is None else f"{url.display} (schema {schema})"
    return ConnectionLost(
        f"lost the connection to {where}: {url.scrub(detail[0] if detail else str(exc))}",
        hint="nothing uncommitted was kept; once the server is back, run the command again",
    )


def check_writable(connection: Connection) -> None:
    """SQLite opens a read-only file without complaint; find out before the first migration does."""
    from sqlalchemy.exc import OperationalError

    url = _ORIGINS[connection.engine]
    if url.backend != "sqlite":
        return
    transaction = connection.begin()
    try:
        version = int(connection.exec_driver_sql("PRAGMA user_version").scalar() or 0)
        connection.exec_driver_sql(f"PRAGMA user_version = {version}")
    except OperationalError as exc:
        detail = str(exc.orig).strip() if exc.orig else str(exc)
        raise DatabaseUnreachable(
            f"cannot write to {url.display}: {detail}",
            hint="make the file and its directory (SQLite writes a journal there) writable, "
            "or remove mode=ro from the URL",
        ) from None
    finally:
        transaction.rollback()
