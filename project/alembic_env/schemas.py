"""Which schemas and tables autogenerate compares: the default schema plus the schemas the models
name (`__table_args__ = {"schema": "billing"}`), never the tool's tables, excluded ones or tables
that belong to a PostgreSQL extension; and the CREATE SCHEMA a migration needs before its tables."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

from alembic.autogenerate import comparators, renderers
from alembic.operations import MigrateOperation, ops
from alembic.util import DispatchPriority, PriorityDispatchResult, to_list
from sqlalchemy import MetaData

from manage_migrations import ledger
from manage_migrations.errors import ConfigError

# PostgreSQL's pg_depend marks every member of an extension (PostGIS's spatial_ref_sys, ...)
# with deptype 'e': the extension owns it, so no migration may drop it.
EXTENSION_TABLES = (
    "SELECT n.nspname, c.relname FROM pg_depend d "
    "JOIN pg_class c ON d.classid = 'pg_class'::regclass AND d.objid = c.oid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE d.deptype = 'e' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
)


def model_schemas(metadata: Iterable[MetaData]) -> set[str]:
    """Schemas named by a model table (`None`, the connection's own schema, is implied)."""
    return {table.schema for meta in metadata for table in meta.tables.values() if table.schema}


def _matches(patterns: Iterable[str], *names: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns for name in names)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Scope:
    """What autogenerate compares. include_name: the default schema and the schemas the models
    name; in them every table except the tool's own, exclude_tables and extension members.
    include_object: a table only the database has, in a schema of exclude_schemas, is kept."""

    def __init__(
        self,
        *,
        schemas: set[str],
        exclude_tables: Iterable[str],
        exclude_schemas: Iterable[str],
        connection: Any = None,
    ) -> None:
        self.schemas = schemas
        self.exclude_tables = tuple(exclude_tables)
        self.exclude_schemas = tuple(exclude_schemas)
        self.connection = connection
        self._extension_tables: set[tuple[str, str]] | None = None

    def _real_schema(self, schema: str | None) -> str | None:
        if schema is not None or self.connection is None:
            return schema
        return self.connection.dialect.default_schema_name

    def extension_tables(self) -> set[tuple[str, str]]:
        """(schema, table) of every extension member, read once, when the first table is filtered."""
        if self._extension_tables is None:
            self._extension_tables = set()
            if self.connection is not None and self.connection.dialect.name == "postgresql":
                rows = self.connection.exec_driver_sql(EXTENSION_TABLES)
                self._extension_tables = {(schema, name) for schema, name in rows}
        return self._extension_tables

    def include_name(self, name: str | None, type_: str, parents: Any) -> bool:
        if type_ == "schema":
            return name is None or name in self.schemas
        if type_ != "table" or name is None:
            return True
        schema = parents.get("schema_name") if parents else None
        if schema is None and name in ledger.TOOL_TABLES:
            return False
        qualified = f"{schema}.{name}" if schema else name
        if _matches(self.exclude_tables, name, qualified):
            return False
        return self.connection is None or (self._real_schema(schema), name) not in self.extension_tables()

    def include_object(self, item: Any, _name: Any, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ != "table" or not reflected or compare_to is not None or not self.exclude_schemas:
            return True
        schema = self._real_schema(item.schema)
        return schema is None or not _matches(self.exclude_schemas, schema)


@comparators.dispatch_for("schema", priority=DispatchPriority.FIRST)
def refuse_schemas_without_support(autogen_context: Any, _upgrade_ops: Any, _schemas: Any) -> Any:
    """Only PostgreSQL has schemas inside one database: elsewhere a schema-qualified model would
    be re-created by every migration (SQLite) or reach into another database (MariaDB)."""
    dialect = autogen_context.dialect
    if dialect.name == "postgresql":
        return PriorityDispatchResult.CONTINUE
    default = dialect.default_schema_name
    for meta in to_list(autogen_context.metadata):
        for table in meta.sorted_tables:
            if table.schema and table.schema != default:
                elsewhere = (
                    "attach it as a database of its own"
                    if dialect.name == "sqlite"
                    else "on MariaDB/MySQL a schema is another database, migrated on its own"
                )
                raise ConfigError(
                    f"model table {table.schema}.{table.name} names schema {table.schema!r}, "
                    f"which make:migration supports on PostgreSQL only, not on {dialect.name}",
                    hint=f"remove the schema from its __table_args__ ({elsewhere})",
                )
    return PriorityDispatchResult.CONTINUE


class CreateSchemaOp(MigrateOperation):
    """A schema the models name that does not exist yet, created before its first table."""

    def __init__(self, schema: str) -> None:
        self.schema = schema

    def reverse(self) -> DropSchemaOp:
        return DropSchemaOp(self.schema)


class DropSchemaOp(MigrateOperation):
    """The downgrade of a CreateSchemaOp: drops the schema only when nothing is left in it, so
    objects someone else put there since are never dropped with it."""

    def __init__(self, schema: str) -> None:
        self.schema = schema

    def reverse(self) -> CreateSchemaOp:
        return CreateSchemaOp(self.schema)


@renderers.dispatch_for(CreateSchemaOp)
def _render_create_schema(_context: Any, operation: CreateSchemaOp) -> str:
    return f"op.execute({f'CREATE SCHEMA IF NOT EXISTS {_quoted(operation.schema)}'!r})"


@renderers.dispatch_for(DropSchemaOp)
def _render_drop_schema(_context: Any, operation: DropSchemaOp) -> list[str]:
    # Every object in a schema depends on it in pg_depend: none left means it is empty.
    sql = (
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_depend "
        "WHERE refclassid = 'pg_namespace'::regclass "
        f"AND refobjid = to_regnamespace({_literal(_quoted(operation.schema))})) "
        f"THEN DROP SCHEMA IF EXISTS {_quoted(operation.schema)}; END IF; END $$"
    )
    return [
        f"# Schema {operation.schema} was created by this migration: dropped unless something is left in it.",
        f"op.execute({sql!r})",
    ]


def _creates_in(operation: Any) -> str | None:
    return operation.schema if isinstance(operation, ops.CreateTableOp) else None


def create_missing_schemas(
    upgrade: ops.UpgradeOps, downgrade: ops.DowngradeOps, existing: Callable[[], set[str]]
) -> list[str]:
    """CREATE SCHEMA before the first table created in a schema that does not exist, and its
    drop after the last table of it in the downgrade; returns the schemas created."""
    wanted = sorted({schema for op in upgrade.ops if (schema := _creates_in(op))})
    if not wanted:
        return []
    missing = [schema for schema in wanted if schema not in existing()]
    if not missing:
        return []
    upgrade.ops[:0] = [CreateSchemaOp(schema) for schema in missing]
    downgrade.ops.extend(DropSchemaOp(schema) for schema in reversed(missing))
    return missing
