"""PostgreSQL native ENUM types that plain autogenerate ignores: value changes (a comparator),
types created before an added column and dropped after their last user (directives)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from alembic.autogenerate import comparators, renderers
from alembic.operations import MigrateOperation, Operations, ops
from alembic.util import DispatchPriority, PriorityDispatchResult, to_list
from sqlalchemy import Column, Enum, MetaData

from manage_migrations import compat


@Operations.register_operation("create_enum_type")
class CreateEnumTypeOp(MigrateOperation):
    """Creates a native enum type unless it exists (add_column does not create it)."""

    def __init__(self, type_name: str, values: Sequence[str]) -> None:
        self.type_name = type_name
        self.values = tuple(values)

    def reverse(self) -> DropEnumTypeOp:
        return DropEnumTypeOp(self.type_name, self.values)

    @classmethod
    def create_enum_type(cls, operations: Operations, type_name: str, values: Sequence[str]) -> None:
        Enum(*values, name=type_name).create(operations.get_bind(), checkfirst=True)


@Operations.register_operation("drop_enum_type")
class DropEnumTypeOp(MigrateOperation):
    """Drops a native enum type if it exists; a no-op on databases without native enums."""

    def __init__(self, type_name: str, values: Sequence[str] = ()) -> None:
        self.type_name = type_name
        self.values = tuple(values)

    def reverse(self) -> CreateEnumTypeOp:
        return CreateEnumTypeOp(self.type_name, self.values)

    @classmethod
    def drop_enum_type(cls, operations: Operations, type_name: str) -> None:
        Enum(name=type_name).drop(operations.get_bind(), checkfirst=True)


class AlterEnumValuesOp(MigrateOperation):
    """A native enum whose value list changed; `columns` are every (table, column, default) using it."""

    def __init__(
        self,
        type_name: str,
        before: Sequence[str],
        after: Sequence[str],
        columns: Sequence[tuple[str, str, str | None]],
    ) -> None:
        self.type_name = type_name
        self.before = tuple(before)
        self.after = tuple(after)
        self.columns = tuple(columns)

    def reverse(self) -> AlterEnumValuesOp:
        return AlterEnumValuesOp(self.type_name, self.after, self.before, self.columns)

    @property
    def only_adds(self) -> bool:
        """Values only appended or inserted, old order kept: ALTER TYPE ... ADD VALUE suffices."""
        kept = [value for value in self.after if value in self.before]
        return kept == list(self.before)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _execute(sql: str) -> str:
    return f"op.execute({sql!r})"


@renderers.dispatch_for(CreateEnumTypeOp)
def _render_create_enum_type(_context: Any, operation: CreateEnumTypeOp) -> str:
    values = ", ".join(repr(value) for value in operation.values)
    return f"sa.Enum({values}, name={operation.type_name!r}).create(op.get_bind(), checkfirst=True)"


@renderers.dispatch_for(DropEnumTypeOp)
def _render_drop_enum_type(_context: Any, operation: DropEnumTypeOp) -> str:
    return f"sa.Enum(name={operation.type_name!r}).drop(op.get_bind(), checkfirst=True)"


@renderers.dispatch_for(AlterEnumValuesOp)
def _render_alter_enum_values(_context: Any, operation: AlterEnumValuesOp) -> list[str]:
    if operation.only_adds:
        return _render_add_values(operation)
    return _render_recreate(operation)


def _render_add_values(operation: AlterEnumValuesOp) -> list[str]:
    lines = [
        "# ALTER TYPE ... ADD VALUE cannot run in a transaction block before PostgreSQL 12, and later",
        "# a value added in a transaction cannot be used before it commits: so it commits on its own.",
        "with op.get_context().autocommit_block():",
    ]
    for index, value in enumerate(operation.after):
        if value in operation.before:
            continue
        following = [v for v in operation.after[index + 1 :] if v in operation.before]
        place = f" BEFORE {_literal(following[0])}" if following else ""
        sql = f"ALTER TYPE {_quoted(operation.type_name)} ADD VALUE IF NOT EXISTS {_literal(value)}{place}"
        lines.append(_execute(sql))
    lines.append("")
    return lines


def _render_recreate(operation: AlterEnumValuesOp) -> list[str]:
    """Values removed or reordered: rename the old type, create the new one, cast every column."""
    name = _quoted(operation.type_name)
    old = _quoted(operation.type_name + "_old")
    values = ", ".join(_literal(value) for value in operation.after)
    lines = [
        "# Removing an enum value: PostgreSQL cannot, so the type is recreated and every column cast;",
        "# rows still holding a removed value make the cast fail instead of losing data.",
        _execute(f"ALTER TYPE {name} RENAME TO {old}"),
        _execute(f"CREATE TYPE {name} AS ENUM ({values})"),
    ]
    for table, column, default in operation.columns:
        where = f"ALTER TABLE {_quoted(table)} ALTER COLUMN {_quoted(column)}"
        if default is not None:
            lines.append(_execute(f"{where} DROP DEFAULT"))
        lines.append(_execute(f"{where} TYPE {name} USING {_quoted(column)}::text::{name}"))
        if default is not None:
            lines.append(_execute(f"{where} SET DEFAULT {default}::{name}"))
    lines.append(_execute(f"DROP TYPE {old}"))
    return lines


def _native_enum(column: Any) -> Enum | None:
    column_type = getattr(column, "type", None)
    if isinstance(column_type, Enum) and column_type.native_enum and column_type.name:
        return column_type
    return None


def _metadata_enums(metadata: Iterable[MetaData]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for meta in metadata:
        for table in meta.tables.values():
            for column in table.columns:
                enum = _native_enum(column)
                if enum is not None and enum.name is not None:
                    found.setdefault(enum.name, tuple(enum.enums))
    return found


def _default_without_cast(default: str | None) -> str | None:
    return default.split("::", 1)[0] if default else None


@comparators.dispatch_for("schema", qualifier="postgresql", priority=DispatchPriority.FIRST)
def compare_enum_values(autogen_context: Any, upgrade_ops: ops.UpgradeOps, schemas: set[Any]) -> Any:
    """Enum types of the default schema in both the database and the models whose value lists
    differ (other schemas the models name are compared for their tables only)."""
    if None not in schemas:
        return PriorityDispatchResult.CONTINUE
    inspector = autogen_context.inspector
    existing = {enum["name"]: tuple(enum["labels"]) for enum in inspector.get_enums()}
    wanted = _metadata_enums(to_list(autogen_context.metadata))
    for name in sorted(set(existing) & set(wanted)):
        if existing[name] == wanted[name]:
            continue
        users = []
        for table in inspector.get_table_names():
            for column in inspector.get_columns(table):
                if getattr(column["type"], "name", None) == name and isinstance(column["type"], Enum):
                    users.append((table, column["name"], _default_without_cast(column.get("default"))))
        upgrade_ops.ops.append(AlterEnumValuesOp(name, existing[name], wanted[name], users))
    return PriorityDispatchResult.CONTINUE


def database_enums(connection: Any) -> set[str]:
    """Native enum types that exist now (PostgreSQL only)."""
    if connection.dialect.name != "postgresql":
        return set()
    from sqlalchemy import inspect

    return {enum["name"] for enum in inspect(connection).get_enums()}


def _enums_of(columns: Iterable[Any]) -> dict[str, tuple[str, ...]]:
    return {
        enum.name: tuple(enum.enums)
        for column in columns
        if (enum := _native_enum(column)) is not None and enum.name is not None
    }


def _table_columns(operation: ops.CreateTableOp | ops.DropTableOp) -> list[Any]:
    """The columns a create/drop carries, without building a Table from them (to_table() copies
    every column and constraint: seconds for a thousand tables)."""
    create = operation if isinstance(operation, ops.CreateTableOp) else getattr(operation, "_reverse", None)
    if not isinstance(create, ops.CreateTableOp):
        return list(operation.to_table().columns)
    return [item for item in create.columns if isinstance(item, Column)]


def _columns_of(operation: Any) -> list[Any]:
    if isinstance(operation, ops.CreateTableOp | ops.DropTableOp):
        return _table_columns(operation)
    if isinstance(operation, ops.AddColumnOp):
        return [operation.column]
    if isinstance(operation, ops.DropColumnOp):
        return [operation.to_column()]
    return []


def manage_enum_types(container: ops.OpContainer, present: set[str], users_after: set[str]) -> None:
    """Create a type before a column first needs it; drop it after its last user is gone.

    `present`: the types that exist when the container starts; `users_after`: the types some
    column still uses when it is done. create_table creates its own types, drop_table does not
    drop them, and neither add_column nor drop_column touch them.
    """
    result: list[MigrateOperation] = []
    for operation in container.ops:
        if isinstance(operation, ops.ModifyTableOps):
            before: list[MigrateOperation] = []
            after: list[MigrateOperation] = []
            for inner in operation.ops:
                _enum_ops_for(inner, present, users_after, before, after)
            result.extend(before)
            result.append(operation)
            result.extend(after)
            continue
        before, after = [], []
        _enum_ops_for(operation, present, users_after, before, after)
        result.extend(before)
        result.append(operation)
        result.extend(after)
    container.ops = result


def _enum_ops_for(
    operation: Any,
    present: set[str],
    users_after: set[str],
    before: list[MigrateOperation],
    after: list[MigrateOperation],
) -> None:
    enums = _enums_of(_columns_of(operation))
    if isinstance(operation, ops.CreateTableOp):
        _reuse_existing_types(operation, present)
        present |= set(enums)
    elif isinstance(operation, ops.AddColumnOp):
        for name, values in enums.items():
            if name not in present:
                before.append(CreateEnumTypeOp(name, values))
                present.add(name)
    elif isinstance(operation, ops.DropTableOp | ops.DropColumnOp):
        for name, values in sorted(enums.items()):
            if name in present and name not in users_after:
                after.append(DropEnumTypeOp(name, values))
                present.discard(name)


def _reuse_existing_types(operation: ops.CreateTableOp, present: set[str]) -> None:
    """create_table would CREATE TYPE again (and fail) for a type another table already uses."""
    from sqlalchemy.dialects.postgresql import ENUM

    columns = []
    for item in operation.columns:
        enum = _native_enum(item)
        if enum is not None and enum.name in present:
            item = compat.copy_column(item)
            item.type = ENUM(*enum.enums, name=enum.name, create_type=False)
        columns.append(item)
    operation.columns = columns


def enums_in(metadata: Iterable[MetaData]) -> set[str]:
    return set(_metadata_enums(metadata))


def drop_types_of_dropped_tables(downgrade: ops.OpContainer, metadata: Iterable[MetaData]) -> None:
    """Generated against a database without native enums, a migration that creates a table with
    an Enum may still run on PostgreSQL, where drop_table leaves the type behind: drop each type
    after its last table in the downgrade, unless a table this migration does not drop uses it."""
    dropped = [op for op in downgrade.ops if isinstance(op, ops.DropTableOp)]
    if not dropped:
        return
    names = {(op.schema, op.table_name) for op in dropped}
    kept: set[str] = set()
    by_table: dict[tuple[str | None, str], set[str]] = {}
    for meta in metadata:
        for table in meta.tables.values():
            types = {enum.name for column in table.columns if (enum := _native_enum(column)) is not None}
            if (table.schema, table.name) in names:
                by_table[(table.schema, table.name)] = {name for name in types if name}
            else:
                kept |= {name for name in types if name}
    last: dict[str, int] = {}
    for index, operation in enumerate(downgrade.ops):
        if isinstance(operation, ops.DropTableOp):
            for name in by_table.get((operation.schema, operation.table_name), set()) - kept:
                last[name] = index
    for name, index in sorted(last.items(), key=lambda item: item[1], reverse=True):
        downgrade.ops.insert(index + 1, DropEnumTypeOp(name))
