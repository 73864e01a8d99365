"""Autogenerate post-processing: describe detected operations, drop empty results, and drop the
native ENUM types that Alembic's drop_table leaves behind on PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from alembic.autogenerate import renderers
from alembic.operations import MigrateOperation, Operations, ops
from sqlalchemy import Enum, MetaData

from project.naming import migration_message


@dataclass(frozen=True)
class Change:
    """One detected operation as users read it: `+ table invoices`, `- column users.nickname`."""

    symbol: str
    text: str
    destructive: bool = False


@Operations.register_operation("drop_enum_type")
class DropEnumTypeOp(MigrateOperation):
    """Drops a native enum type if it exists; a no-op on databases without native enums."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    @classmethod
    def drop_enum_type(cls, operations: Operations, type_name: str) -> None:
        Enum(name=type_name).drop(operations.get_bind(), checkfirst=True)


@renderers.dispatch_for(DropEnumTypeOp)
def _render_drop_enum_type(_context: Any, operation: DropEnumTypeOp) -> str:
    return f"sa.Enum(name={operation.type_name!r}).drop(op.get_bind(), checkfirst=True)"


def _named_enums(columns: Iterable[Any]) -> set[str]:
    names = set()
    for column in columns:
        column_type = getattr(column, "type", None)
        if isinstance(column_type, Enum) and column_type.native_enum and column_type.name:
            names.add(column_type.name)
    return names


def _enums_in_use(metadata: Iterable[MetaData], except_tables: set[str]) -> set[str]:
    used: set[str] = set()
    for meta in metadata:
        for table in meta.tables.values():
            if table.name not in except_tables:
                used |= _named_enums(table.columns)
    return used


def _add_enum_drops(container: ops.OpContainer, metadata: Iterable[MetaData]) -> None:
    dropped = {op.table_name for op in container.ops if isinstance(op, ops.DropTableOp)}
    created = {op.table_name for op in container.ops if isinstance(op, ops.CreateTableOp)}
    still_used = _enums_in_use(metadata, except_tables=dropped | created)
    result: list[MigrateOperation] = []
    for operation in container.ops:
        result.append(operation)
        if isinstance(operation, ops.DropTableOp):
            for name in sorted(_named_enums(operation.to_table().columns) - still_used):
                result.append(DropEnumTypeOp(name))
    container.ops = result


def _skip_index_drops_of_dropped_tables(container: ops.OpContainer) -> None:
    """Dropping a table drops its indexes; dropping them first fails on MariaDB when a foreign
    key needs the index ("Cannot drop index ...: needed in a foreign key constraint")."""
    dropped = {op.table_name for op in container.ops if isinstance(op, ops.DropTableOp)}
    kept: list[MigrateOperation] = []
    for operation in container.ops:
        if isinstance(operation, ops.DropIndexOp) and operation.table_name in dropped:
            continue
        if isinstance(operation, ops.ModifyTableOps) and operation.table_name in dropped:
            operation.ops = [op for op in operation.ops if not isinstance(op, ops.DropIndexOp)]
            if not operation.ops:
                continue
        kept.append(operation)
    container.ops = kept


def _text(value: Any, dialect: Any) -> str:
    if value is None or value is False:
        return "none"
    if hasattr(value, "compile"):
        try:
            return str(value.compile(dialect=dialect))
        except Exception:
            return str(value)
    return str(getattr(value, "arg", value))


def _normalised_default(value: Any) -> str | None:
    """A server default with quoting, parentheses and PostgreSQL casts taken off."""
    if value is None or value is False:
        return None
    text = _server_default_text(value).strip()
    previous = None
    while text != previous:
        previous = text
        text = re.sub(r"::[\w .\[\]]+(\(\d+\))?$", "", text).strip()
        if text.startswith("(") and text.endswith(")"):
            text = text[1:-1].strip()
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            # A quote inside an SQL string literal is doubled: 'a''b' is the text a'b.
            text = text[1:-1].replace(text[0] * 2, text[0])
    return _canonical_number(text)


def _canonical_number(text: str) -> str:
    """MariaDB reflects a NUMERIC(10, 2) default of 0 as 0.00: the same number, not a change."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    return str(number.normalize()) if number.is_finite() else text


def _drop_false_default_changes(container: ops.OpContainer) -> None:
    """Alembic reports some unchanged server defaults (e.g. '' on SQLite) as changed."""
    kept: list[MigrateOperation] = []
    for operation in container.ops:
        if isinstance(operation, ops.ModifyTableOps):
            _drop_false_default_changes(operation)
            if operation.ops:
                kept.append(operation)
            continue
        if isinstance(operation, ops.AlterColumnOp) and operation.modify_server_default is not False:
            before = _normalised_default(operation.existing_server_default)
            after = _normalised_default(operation.modify_server_default)
            if before == after:
                operation.modify_server_default = False
                if _alters_nothing(operation):
                    continue
        kept.append(operation)
    container.ops = kept


def _alters_nothing(operation: ops.AlterColumnOp) -> bool:
    return (
        operation.modify_type is None
        and operation.modify_nullable is None
        and operation.modify_comment is False
        and operation.modify_name is None
    )


def _server_default_text(value: Any) -> str:
    if value is None or value is False:
        return "none"
    value = getattr(value, "arg", value)
    return str(getattr(value, "text", value))


def _describe_alter(operation: ops.AlterColumnOp, dialect: Any) -> str:
    where = f"column {operation.table_name}.{operation.column_name}"
    details = []
    if operation.modify_type is not None:
        before = _text(operation.existing_type, dialect)
        details.append(f"{before} -> {_text(operation.modify_type, dialect)}")
    if operation.modify_nullable is not None:
        details.append("NULL" if operation.modify_nullable else "NOT NULL")
    if operation.modify_server_default is not False:
        before = _server_default_text(operation.existing_server_default)
        after = _server_default_text(operation.modify_server_default)
        details.append(f"default {before} -> {after}")
    if operation.modify_comment is not False:
        details.append("comment")
    if operation.modify_name:
        details.append(f"renamed to {operation.modify_name}")
    return f"{where}  {', '.join(details)}" if details else where


def describe(operations: Iterable[Any], dialect: Any) -> Iterator[Change]:
    for operation in operations:
        if isinstance(operation, ops.ModifyTableOps):
            yield from describe(operation.ops, dialect)
        elif isinstance(operation, ops.CreateTableOp):
            yield Change("+", f"table {operation.table_name}")
        elif isinstance(operation, ops.DropTableOp):
            yield Change("-", f"table {operation.table_name}", destructive=True)
        elif isinstance(operation, ops.AddColumnOp):
            yield Change("+", f"column {operation.table_name}.{operation.column.name}")
        elif isinstance(operation, ops.DropColumnOp):
            yield Change("-", f"column {operation.table_name}.{operation.column_name}", True)
        elif isinstance(operation, ops.AlterColumnOp):
            yield Change("~", _describe_alter(operation, dialect))
        elif isinstance(operation, ops.CreateIndexOp):
            yield Change("+", f"index {operation.index_name} on {operation.table_name}")
        elif isinstance(operation, ops.DropIndexOp):
            yield Change("-", f"index {operation.index_name} on {operation.table_name}")
        elif isinstance(operation, ops.AddConstraintOp):
            kind = operation.constraint_type or "constraint"
            name = getattr(operation, "constraint_name", None) or "(unnamed)"
            yield Change("+", f"{kind} constraint {name} on {operation.table_name}")
        elif isinstance(operation, ops.DropConstraintOp):
            kind = operation.constraint_type or "constraint"
            yield Change("-", f"{kind} constraint {operation.constraint_name} on {operation.table_name}")
        elif isinstance(operation, DropEnumTypeOp):
            yield Change("-", f"enum type {operation.type_name}")
        else:
            table = getattr(operation, "table_name", None)
            label = type(operation).__name__.removesuffix("Op")
            yield Change("~", f"{label} on {table}" if table else label)


def directives_hook(
    metadata: Iterable[MetaData],
    *,
    report: list[Change] | None,
    drop_empty: bool,
    derive_name: bool = False,
    write: bool = True,
) -> Any:
    """Alembic's process_revision_directives: clean up, name, report; `write=False` only reports."""
    metadata = list(metadata)

    def process_revision_directives(context: Any, _revision: Any, directives: list[Any]) -> None:
        if not directives:
            return
        script = directives[0]
        for container in (*script.upgrade_ops_list, *script.downgrade_ops_list):
            _drop_false_default_changes(container)
        if drop_empty and script.upgrade_ops.is_empty():
            directives[:] = []
            return
        if derive_name:
            script.message = migration_message(suggested_name(script.upgrade_ops.ops))
        for container in (*script.upgrade_ops_list, *script.downgrade_ops_list):
            _skip_index_drops_of_dropped_tables(container)
            _add_enum_drops(container, metadata)
        if report is not None:
            for container in script.upgrade_ops_list:
                report.extend(describe(container.ops, context.dialect))
        if not write:
            directives[:] = []

    return process_revision_directives


def _flatten(operations: Iterable[Any]) -> list[Any]:
    flat: list[Any] = []
    for operation in operations:
        if isinstance(operation, ops.ModifyTableOps):
            flat.extend(_flatten(operation.ops))
        else:
            flat.append(operation)
    return flat


def suggested_name(operations: Iterable[Any]) -> str:
    """A Laravel/Django-style name for a migration from what it does."""
    flat = [op for op in _flatten(operations) if not isinstance(op, ops.CreateIndexOp)]
    created = [op.table_name for op in flat if isinstance(op, ops.CreateTableOp)]
    dropped = [op.table_name for op in flat if isinstance(op, ops.DropTableOp)]
    tables = {getattr(op, "table_name", None) for op in flat}
    if created and len(created) == len(flat):
        return f"create {' and '.join(created[:3])} table{'s' if len(created) > 1 else ''}"
    if dropped and len(dropped) == len(flat):
        return f"drop {' and '.join(dropped[:3])} table{'s' if len(dropped) > 1 else ''}"
    if len(tables) == 1 and None not in tables:
        (table,) = tables
        added = [op.column.name for op in flat if isinstance(op, ops.AddColumnOp)]
        removed = [op.column_name for op in flat if isinstance(op, ops.DropColumnOp)]
        if added and len(added) == len(flat) and len(added) <= 2:
            return f"add {' and '.join(added)} to {table}"
        if removed and len(removed) == len(flat) and len(removed) <= 2:
            return f"remove {' and '.join(removed)} from {table}"
        return f"alter {table}"
    return "auto"
