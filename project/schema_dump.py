"""Schema dumps (Laravel's schema:dump): the schema of a migrated database plus its history rows,
as one SQL file per dialect under migrations/schema/, loaded into empty databases before the
remaining migrations run."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from project.errors import ConfigError, OperationFailed
from project.ledger import LEDGER_TABLE, VERSION_TABLE

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

DUMP_DIRECTORY = "schema"
HISTORY_TABLES = (VERSION_TABLE, LEDGER_TABLE)
DUMP_TOOLS = {"postgresql": ("pg_dump",), "mysql": ("mariadb-dump", "mysqldump")}


@dataclass(frozen=True)
class DumpInfo:
    path: Path
    statements: int


def dialect_of(url: URL) -> str:
    backend = url.get_backend_name()
    return "mysql" if backend == "mariadb" else backend


def dump_path(migrations_dir: Path, dialect: str) -> Path:
    return migrations_dir / DUMP_DIRECTORY / f"{dialect}-schema.sql"


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


def _dump_sqlite(connection: Connection) -> list[str]:
    rows = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
        "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, rowid"
    )
    statements = [row[0] for row in rows]
    for table in HISTORY_TABLES:
        for row in connection.exec_driver_sql(f'SELECT * FROM "{table}"'):
            statements.append(f'INSERT INTO "{table}" VALUES ({", ".join(map(_literal, row))})')
    return statements


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


def _dump_postgresql(url: URL) -> list[str]:
    tool = _tool("postgresql")
    env = {**os.environ, "PGPASSWORD": url.password or "", "PGCONNECT_TIMEOUT": "5"}
    target = ["-h", url.host or "localhost", "-p", str(url.port or 5432), "-d", url.database or ""]
    if url.username:
        target += ["-U", url.username]
    schema = _run_tool([tool, *target, "--schema-only", "--no-owner", "--no-privileges"], env)
    tables = [f"--table={table}" for table in HISTORY_TABLES]
    data = _run_tool([tool, *target, "--data-only", "--inserts", *tables], env)
    # psql meta-commands (\restrict ...) are not SQL; everything else runs as one script.
    text = "\n".join(line for line in (schema + data).splitlines() if not line.startswith("\\"))
    return [text]


def _dump_mysql(url: URL) -> list[str]:
    tool = _tool("mysql")
    env = {**os.environ, "MYSQL_PWD": url.password or ""}
    target = ["-h", url.host or "localhost", "-P", str(url.port or 3306)]
    if url.username:
        target += ["-u", url.username]
    common = ["--skip-comments", "--skip-lock-tables", "--skip-add-drop-table", "--single-transaction"]
    schema = _run_tool([tool, *target, *common, "--no-data", url.database or ""], env)
    data = _run_tool([tool, *target, *common, "--no-create-info", url.database or "", *HISTORY_TABLES], env)
    return _split_mysql(schema + data)


def _split_mysql(text: str) -> list[str]:
    """mysqldump writes one statement per `;`-terminated line group (no routines are dumped)."""
    statements, current = [], []
    for line in text.splitlines():
        if not current and (not line.strip() or line.startswith("--")):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).rstrip().removesuffix(";"))
            current = []
    return statements


def write_dump(connection: Connection, url: URL, migrations_dir: Path) -> DumpInfo:
    """Write the dump of a migrated database; refuse on an empty history."""
    dialect = dialect_of(url)
    if dialect == "sqlite":
        statements = _dump_sqlite(connection)
    elif dialect == "postgresql":
        statements = _dump_postgresql(url)
    elif dialect == "mysql":
        statements = _dump_mysql(url)
    else:
        raise ConfigError(f"migrate:dump does not support {dialect} databases")
    path = dump_path(migrations_dir, dialect)
    path.parent.mkdir(parents=True, exist_ok=True)
    separator = "\n" if dialect == "postgresql" else ";\n\n"
    body = separator.join(statements) + (";\n" if dialect != "postgresql" else "\n")
    path.write_text(f"-- {dialect} schema dump written by manage.py migrate:dump\n{body}", encoding="utf-8")
    return DumpInfo(path, len(statements))


def load_dump(connection: Connection, path: Path) -> int:
    """Run a dump inside the connection's transaction where the database allows it."""
    text = path.read_text(encoding="utf-8")
    dialect = connection.dialect.name
    raw = connection.connection.dbapi_connection
    if dialect == "postgresql":
        with raw.cursor() as cursor:
            cursor.execute(text)
            cursor.execute("RESET search_path")  # pg_dump empties it for the session
        return sum(1 for line in text.splitlines() if line.rstrip().endswith(";"))
    statements = [s for s in _split_statements(text) if s.strip()]
    for statement in statements:
        connection.exec_driver_sql(statement)
    return len(statements)


def _split_statements(text: str) -> list[str]:
    """Dumps written by write_dump separate statements with `;` and a blank line."""
    body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    return [part.strip().removesuffix(";") for part in body.split(";\n\n")]
