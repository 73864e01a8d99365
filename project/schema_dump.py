"""Schema dumps (Laravel's schema:dump): the schema of a migrated database plus its history rows,
as one SQL file per dialect under migrations/schema/, loaded into empty databases before the
remaining migrations run. The user's schema comes first, the tool's tables after a marker line,
so a squashed migration can load the schema alone and let Alembic write the history."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manage_migrations.errors import ConfigError, OperationFailed
from manage_migrations.ledger import (
    LEDGER_TABLE,
    TOOL_TABLES,
    VERSION_TABLE,
    has_table,
    ledger_table,
    read_version_heads,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from manage_migrations.core.url import DatabaseURL

DUMP_DIRECTORY = "schema"
HISTORY_TABLES = (VERSION_TABLE, LEDGER_TABLE)
DUMP_TOOLS = {"postgresql": ("pg_dump",), "mysql": ("mariadb-dump", "mysqldump")}
REVISIONS_PREFIX = "-- revisions: "
HISTORY_MARKER = "-- manage.py history: the tool's tables and rows (a squashed migration stops here)"


@dataclass(frozen=True)
class DumpInfo:
    path: Path
    statements: int
    revisions: tuple[str, ...] = ()
    database: str = ""  # the dumped database, as users see its URL


@dataclass(frozen=True)
class _Sections:
    """What a dump holds: the user's schema, then the tool's tables and the history rows."""

    schema: list[str]
    history: list[str]


def dialect_name(name: str) -> str:
    """One dump serves MariaDB and MySQL alike, whichever URL scheme reached them."""
    return "mysql" if name == "mariadb" else name


def dialect_of(url: DatabaseURL) -> str:
    return dialect_name(url.backend)


def dump_path(migrations_dir: Path, dialect: str) -> Path:
    return migrations_dir / DUMP_DIRECTORY / f"{dialect}-schema.sql"


def squashed_path(migrations_dir: Path, dialect: str, revision: str) -> Path:
    """The frozen copy a squash migration loads: later dumps move on, this one stays at `revision`."""
    return migrations_dir / DUMP_DIRECTORY / f"{dialect}-squashed-{revision}.sql"


def dump_revisions(path: Path) -> tuple[str, ...] | None:
    """The version heads a dump was written at, or None for a dump older than that header line."""
    with path.open(encoding="utf-8") as file:
        for _, line in zip(range(5), file, strict=False):
            if line.startswith(REVISIONS_PREFIX):
                return tuple(line.removeprefix(REVISIONS_PREFIX).split())
    return None


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime | date):
        value = value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return "'" + str(value).replace("'", "''") + "'"


def _dump_sqlite(connection: Connection) -> _Sections:
    rows = connection.exec_driver_sql(
        "SELECT tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
        "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, rowid"
    )
    sections = _Sections([], [])
    for table, sql in rows:
        (sections.history if table in TOOL_TABLES else sections.schema).append(sql)
    for table in HISTORY_TABLES:
        for row in connection.exec_driver_sql(f'SELECT * FROM "{table}"'):
            sections.history.append(f'INSERT INTO "{table}" VALUES ({", ".join(map(_literal, row))})')
    return sections


def _tool(dialect: str) -> str:
    for candidate in DUMP_TOOLS[dialect]:
        found = shutil.which(candidate)
        if found:
            return found
    raise ConfigError(
        f"migrate:dump on {dialect} needs {' or '.join(DUMP_TOOLS[dialect])} on PATH",
        hint="install the database's client tools (e.g. postgresql-client or mariadb-client)",
    )


def _run_tool(arguments: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(arguments, capture_output=True, text=True, env=env, timeout=600)
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"
        raise OperationFailed(f"{Path(arguments[0]).name} failed: {detail}")
    return result.stdout


def _owned_sequences(connection: Connection, tables: list[str]) -> list[str]:
    """Sequences behind the tool tables' serial columns: pg_dump keeps them with --exclude-table."""
    names = ", ".join(f"'{table}'" for table in tables)
    rows = connection.exec_driver_sql(
        "SELECT s.relname FROM pg_class s JOIN pg_depend d ON d.objid = s.oid "
        "JOIN pg_class t ON t.oid = d.refobjid WHERE s.relkind = 'S' AND d.deptype IN ('a', 'i') "
        f"AND t.relnamespace = current_schema()::regnamespace AND t.relname IN ({names})"
    )
    return [row[0] for row in rows]


def _without_meta_commands(text: str) -> str:
    """psql meta-commands (\\restrict ...) are not SQL; everything else runs as one script."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("\\")).strip()


def _dump_postgresql(
    connection: Connection, url: DatabaseURL, tool_tables: list[str], schema_name: str | None = None
) -> _Sections:
    """The whole database, or with `schema_name` that one schema (a tenant's), its objects named
    with it: loading such a dump recreates the schema itself, which can then be renamed."""
    tool = _tool("postgresql")
    env = {**os.environ, "PGPASSWORD": url.password or "", "PGCONNECT_TIMEOUT": "5"}
    target = ["-h", url.host or "localhost", "-p", str(url.port or 5432), "-d", url.database or ""]
    if url.user:
        target += ["-U", url.user]
    prefix = f"{schema_name}." if schema_name else ""
    schema_only = [tool, *target, "--schema-only", "--no-owner", "--no-privileges"]
    excluded = [*tool_tables, *_owned_sequences(connection, tool_tables)]
    only = [f"--schema={schema_name}"] if schema_name else []
    schema = _run_tool([*schema_only, *only, *(f"--exclude-table={prefix}{name}" for name in excluded)], env)
    history = _run_tool([*schema_only, *(f"--table={prefix}{name}" for name in tool_tables)], env)
    tables = [f"--table={prefix}{table}" for table in HISTORY_TABLES]
    data = _run_tool([tool, *target, "--data-only", "--rows-per-insert=1000", *tables], env)
    return _Sections([_without_meta_commands(schema)], [_without_meta_commands(history + data)])


def _dump_mysql(url: DatabaseURL, tool_tables: list[str]) -> _Sections:
    tool = _tool("mysql")
    env = {**os.environ, "MYSQL_PWD": url.password or ""}
    target = ["-h", url.host or "localhost", "-P", str(url.port or 3306)]
    if url.user:
        target += ["-u", url.user]
    common = ["--skip-comments", "--skip-lock-tables", "--skip-add-drop-table", "--single-transaction"]
    name = url.database or ""
    ignored = [f"--ignore-table={name}.{table}" for table in TOOL_TABLES]
    schema = _run_tool([tool, *target, *common, "--no-data", *ignored, name], env)
    history = _run_tool([tool, *target, *common, "--no-data", name, *tool_tables], env)
    data = _run_tool([tool, *target, *common, "--no-create-info", name, *HISTORY_TABLES], env)
    return _Sections(_split_mysql(schema), _split_mysql(history + data))


def _split_mysql(text: str) -> list[str]:
    """mysqldump writes one statement per `;`-terminated line group (no routines are dumped)."""
    statements: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if not current and (not line.strip() or line.startswith("--")):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).rstrip().removesuffix(";"))
            current = []
    return statements


def _sections(connection: Connection, url: DatabaseURL, dialect: str, schema: str | None) -> _Sections:
    """`schema`: a tenant's schema (PostgreSQL) or database (MariaDB) on the URL's server."""
    from dataclasses import replace

    from sqlalchemy import inspect

    tool_tables = sorted(set(inspect(connection).get_table_names()) & TOOL_TABLES)
    if dialect == "sqlite":
        return _dump_sqlite(connection)
    if dialect == "postgresql":
        return _dump_postgresql(connection, url, tool_tables, schema)
    if dialect == "mysql":
        return _dump_mysql(replace(url, database=schema) if schema else url, tool_tables)
    raise ConfigError(f"migrate:dump does not support {dialect} databases")


def _render(statements: list[str], dialect: str) -> str:
    if not statements:
        return ""
    if dialect == "postgresql":
        return "\n".join(statements) + "\n"
    return ";\n\n".join(statements) + ";\n"


def write_dump(
    connection: Connection, url: DatabaseURL, migrations_dir: Path, schema: str | None = None
) -> DumpInfo:
    """Write the dump of a migrated database, headed by the revisions it was taken at."""
    dialect = dialect_of(url)
    revisions = read_version_heads(connection)
    sections = _sections(connection, url, dialect, schema)
    path = dump_path(migrations_dir, dialect)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"-- {dialect} schema dump written by manage.py migrate:dump\n"
        f"{REVISIONS_PREFIX}{' '.join(revisions)}\n"
        f"{_render(sections.schema, dialect)}\n{HISTORY_MARKER}\n{_render(sections.history, dialect)}",
        encoding="utf-8",
    )
    statements = _count(sections.schema, dialect) + _count(sections.history, dialect)
    return DumpInfo(path, statements, revisions, url.display)


def _count(statements: list[str], dialect: str) -> int:
    if dialect != "postgresql":
        return len(statements)
    return sum(1 for text in statements for line in text.splitlines() if line.rstrip().endswith(";"))


def load_dump(connection: Connection, path: Path, *, batch: int) -> int:
    """Run a whole dump (schema and history) inside the connection's transaction where the
    database allows it. Its history rows become batch `batch`: the database was built by this one
    run, as if it had applied them, whatever batches the dumped database ran them in."""
    statements = load_sql(connection, path.read_text(encoding="utf-8"))
    if has_table(connection, LEDGER_TABLE):
        connection.execute(ledger_table().update().values(batch=batch))
    return statements


def schema_section(text: str) -> str:
    """A dump without the tool's tables and rows: the user's schema alone."""
    before, _, _ = text.partition(f"\n{HISTORY_MARKER}\n")
    return before


def has_sections(text: str) -> bool:
    """Dumps written before the history marker existed cannot be split."""
    return f"\n{HISTORY_MARKER}\n" in text


def load_sql(connection: Connection, text: str) -> int:
    """Run dump text on the connection: PostgreSQL as one script, the others statement by statement."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        raw: Any = connection.connection.dbapi_connection
        with raw.cursor() as cursor:
            cursor.execute(text)
            cursor.execute("RESET search_path")  # pg_dump empties it for the session
        return sum(1 for line in text.splitlines() if line.rstrip().endswith(";"))
    statements = sql_statements(text)
    for statement in statements:
        connection.exec_driver_sql(statement)
    return len(statements)


def sql_statements(text: str) -> list[str]:
    """The statements of a SQLite or MySQL dump (PostgreSQL dumps run as one script)."""
    return [statement for statement in _split_statements(text) if statement.strip()]


def _split_statements(text: str) -> list[str]:
    """Dumps written by write_dump separate statements with `;` and a blank line."""
    body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    return [part.strip().removesuffix(";") for part in body.split(";\n\n")]
