"""tenants:create's first half: the tenant's schema (or database) made to exist."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from manage_migrations import database
from manage_migrations.core.url import MYSQL_BACKENDS
from manage_migrations.errors import ConfigError, DatabaseUnreachable, ManageError

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Connection

    from manage_migrations.core.url import DatabaseURL
    from manage_migrations.settings import Settings

# Where CREATE DATABASE is sent from on PostgreSQL: a database that is always there.
POSTGRES_MAINTENANCE_DATABASE = "postgres"
# The scratch schema a PostgreSQL tenant dump is taken from and loaded as, then renamed.
TEMPLATE_SCHEMA = "manage_tenant_template"


def ensure(settings: Settings) -> bool:
    """Create the schema (schema mode) or the database (database mode) if it is missing;
    whether it had to be created."""
    url = database.parse_url(settings.database_url, settings.root)
    if settings.schema is not None:
        return _ensure_database(url, settings.schema, schema=True)
    path = url.sqlite_file
    if url.backend == "sqlite":
        if path is None:
            raise ConfigError(f"tenants:create needs a database file, not {url.display}")
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = database.create_engine_for(url)
        try:
            database.connect(engine).close()  # SQLite creates the file on first connect
        finally:
            engine.dispose()
        return True
    if not url.database:
        raise ConfigError(f"the tenant's URL {url.display} names no database")
    return _ensure_database(url, url.database, schema=False)


def require(name: str, settings: Settings) -> None:
    """A database-mode SQLite tenant must exist before anything connects to it: SQLite would
    create an empty file, and a tenant never created would then look like one with nothing applied."""
    from manage_migrations.program import command_prefix

    if settings.schema is not None:
        return  # enter_schema refuses a missing schema
    url = database.parse_url(settings.database_url, settings.root)
    path = url.sqlite_file
    if path is not None and not path.exists():
        raise ConfigError(
            f"the tenant database {url.display} does not exist",
            hint=f"create it with `{command_prefix()} tenants:create {name}`",
        )


def hint_for(name: str, settings: Settings, error: ManageError) -> str | None:
    """The hint of a tenant's failure: tenants:create when the server says the tenant's own
    database is not there (database mode; in schema mode enter_schema says so itself)."""
    from manage_migrations.program import command_prefix

    if settings.schema is not None or not isinstance(error, DatabaseUnreachable):
        return error.hint
    database_name = database.parse_url(settings.database_url, settings.root).database
    lowered = error.message.lower()
    said_missing = "does not exist" in lowered or "unknown database" in lowered
    if database_name and database_name.lower() in lowered and said_missing:
        return f"create it with `{command_prefix()} tenants:create {name}`"
    return error.hint


def _ensure_database(url: DatabaseURL, name: str, *, schema: bool) -> bool:
    """PostgreSQL: CREATE SCHEMA in the tenant's database, or CREATE DATABASE from the maintenance
    database; MariaDB: CREATE DATABASE (its schemas are databases) from no database at all."""
    if url.backend == "postgresql":
        server = url if schema else replace(url, database=POSTGRES_MAINTENANCE_DATABASE)
    elif url.backend in MYSQL_BACKENDS:
        server = replace(url, database=None)
    else:
        raise ConfigError(
            f"tenants by schema need PostgreSQL or MariaDB/MySQL, not {url.backend}",
            hint='use mode = "database" with a url template in [tool.manage.tenants]',
        )
    engine = database.create_engine_for(server)
    try:
        with database.connect(engine) as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            if _exists(connection, name, schema=schema):
                return False
            quoted = connection.dialect.identifier_preparer.quote_identifier(name)
            if url.backend != "postgresql":
                connection.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS {quoted}")
            elif schema:
                connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
            else:
                _create_postgres_database(connection, quoted)
            return True
    finally:
        engine.dispose()


def _exists(connection: Connection, name: str, *, schema: bool) -> bool:
    """A tenant's schema, or (database mode) its database: on MariaDB the same thing."""
    if connection.dialect.name != "postgresql" or schema:
        return database.schema_exists(connection, name)
    query = "SELECT 1 FROM pg_database WHERE datname = %(name)s"
    return connection.exec_driver_sql(query, {"name": name}).first() is not None


def _create_postgres_database(connection: Connection, quoted: str) -> None:
    """CREATE DATABASE has no IF NOT EXISTS: a tenants:create racing this one may win."""
    from sqlalchemy.exc import ProgrammingError

    try:
        connection.exec_driver_sql(f"CREATE DATABASE {quoted}")
    except ProgrammingError as exc:
        if "already exists" not in str(exc.orig):
            raise


def load_template(settings: Settings, dump: Path, batch: int = 1) -> int | None:
    """A new tenant schema from the tenant dump, in one transaction: the dump recreates the
    template schema it was taken from, which is then renamed to the tenant (the server does the
    translation; no SQL is rewritten). None when the tenant's schema already exists."""
    from manage_migrations.ledger import LEDGER_TABLE
    from manage_migrations.schema_dump import load_sql

    assert settings.schema is not None
    url = database.parse_url(settings.database_url, settings.root)
    engine = database.create_engine_for(url)
    try:
        with database.connect(engine) as connection, connection.begin():
            if _exists(connection, settings.schema, schema=True):
                return None
            quoted = connection.dialect.identifier_preparer.quote_identifier
            # A dump loading at the same time waits here for the other one to rename its copy.
            statements = load_sql(connection, dump.read_text(encoding="utf-8"))
            ledger = f"{quoted(TEMPLATE_SCHEMA)}.{quoted(LEDGER_TABLE)}"
            if _table_exists(connection, TEMPLATE_SCHEMA, LEDGER_TABLE):
                connection.exec_driver_sql(f"UPDATE {ledger} SET batch = {int(batch)}")
            connection.exec_driver_sql(
                f"ALTER SCHEMA {quoted(TEMPLATE_SCHEMA)} RENAME TO {quoted(settings.schema)}"
            )
            return statements
    finally:
        engine.dispose()


def drop_template(settings: Settings) -> None:
    """Drop the scratch schema of a tenant dump (also one a killed dump left behind)."""
    url = database.parse_url(settings.database_url, settings.root)
    engine = database.create_engine_for(url)
    try:
        with database.connect(engine) as connection, connection.begin():
            quoted = connection.dialect.identifier_preparer.quote_identifier(TEMPLATE_SCHEMA)
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")
    finally:
        engine.dispose()


def _table_exists(connection: Connection, schema: str, table: str) -> bool:
    query = (
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %(schema)s AND table_name = %(table)s"
    )
    return connection.exec_driver_sql(query, {"schema": schema, "table": table}).first() is not None
