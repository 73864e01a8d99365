"""Autogenerate post-processing (process_revision_directives): false default changes, renames,
enum types, names for unnamed constraints, missing schemas, a stable order, the report, and the
refusal to drop tables that hold rows."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from alembic.operations import MigrateOperation, ops
from sqlalchemy import ForeignKeyConstraint, Identity, MetaData

from manage_migrations.alembic_env import checks as checks  # registers the CHECK comparator
from manage_migrations.alembic_env.backfill import RequiredFound, RequiredPolicy, fill_required_columns
from manage_migrations.alembic_env.constraint_names import ChosenName, Namer
from manage_migrations.alembic_env.enums import (
    AlterEnumValuesOp,
    CreateEnumTypeOp,
    DropEnumTypeOp,
    database_enums,
    drop_types_of_dropped_tables,
    enums_in,
    manage_enum_types,
)
from manage_migrations.alembic_env.renames import Decide, RenameCandidate, apply_renames
from manage_migrations.alembic_env.schemas import CreateSchemaOp, DropSchemaOp, create_missing_schemas
from manage_migrations.naming import derived_name, migration_message

MANY_DROPS = 3


@dataclass(frozen=True)
class Change:
    """One detected operation as users read it: `+ table invoices`, `- column users.nickname`."""

    symbol: str
    text: str
    destructive: bool = False


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


MYSQL_BOOLEANS = {"true": "1", "false": "0"}


def _comparable(value: Any, dialect: Any) -> str | None:
    """MariaDB/MySQL store TRUE and FALSE defaults as 1 and 0."""
    text = _normalised_default(value)
    if text is not None and dialect.name in ("mysql", "mariadb"):
        return MYSQL_BOOLEANS.get(text.lower(), text)
    return text


def _unrepresentable(value: Any, dialect: Any) -> bool:
    """An Identity on a database without identity columns (SQLite, MariaDB) can never match."""
    return isinstance(value, Identity) and not getattr(dialect, "supports_identity_columns", False)


def _drop_false_default_changes(container: ops.OpContainer, dialect: Any) -> None:
    """Alembic reports some unchanged server defaults (e.g. '' on SQLite) as changed."""
    kept: list[MigrateOperation] = []
    for operation in container.ops:
        if isinstance(operation, ops.ModifyTableOps):
            _drop_false_default_changes(operation, dialect)
            if operation.ops:
                kept.append(operation)
            continue
        if isinstance(operation, ops.AlterColumnOp) and operation.modify_server_default is not False:
            before = _comparable(operation.existing_server_default, dialect)
            after = _comparable(operation.modify_server_default, dialect)
            identity = any(
                _unrepresentable(value, dialect)
                for value in (operation.modify_server_default, operation.existing_server_default)
            )
            if before == after or identity:
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


def _table_of(operation: Any) -> str | None:
    """The table an operation works on; a foreign key names it `source_table`."""
    return getattr(operation, "table_name", None) or getattr(operation, "source_table", None)


def describe(operations: Iterable[Any], dialect: Any) -> Iterator[Change]:
    for operation in operations:
        if isinstance(operation, ops.ModifyTableOps):
            yield from describe(operation.ops, dialect)
        elif isinstance(operation, ops.CreateTableOp):
            yield Change("+", f"table {_qualified(operation.schema, operation.table_name)}")
        elif isinstance(operation, ops.DropTableOp):
            yield Change("-", f"table {_qualified(operation.schema, operation.table_name)}", destructive=True)
        elif isinstance(operation, CreateSchemaOp):
            yield Change("+", f"schema {operation.schema}")
        elif isinstance(operation, DropSchemaOp):
            yield Change("-", f"schema {operation.schema} (when empty)")
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
            yield Change("+", f"{kind} constraint {name} on {_table_of(operation)}")
        elif isinstance(operation, ops.DropConstraintOp):
            kind = operation.constraint_type or "constraint"
            yield Change("-", f"{kind} constraint {operation.constraint_name} on {_table_of(operation)}")
        elif isinstance(operation, ops.RenameTableOp):
            yield Change("~", f"table {operation.table_name}  renamed to {operation.new_table_name}")
        elif isinstance(operation, DropEnumTypeOp):
            yield Change("-", f"enum type {operation.type_name}")
        elif isinstance(operation, CreateEnumTypeOp):
            yield Change("+", f"enum type {operation.type_name}")
        elif isinstance(operation, AlterEnumValuesOp):
            yield _describe_enum_values(operation)
        else:
            table = _table_of(operation)
            label = type(operation).__name__.removesuffix("Op")
            yield Change("~", f"{label} on {table}" if table else label)


def _describe_enum_values(operation: AlterEnumValuesOp) -> Change:
    added = [value for value in operation.after if value not in operation.before]
    removed = [value for value in operation.before if value not in operation.after]
    parts = [f"+{value}" for value in added] + [f"-{value}" for value in removed]
    if not parts:
        parts = ["reordered"]
    return Change("~", f"enum type {operation.type_name}  {' '.join(parts)}", destructive=bool(removed))


@dataclass(frozen=True)
class AutogenRequest:
    """What make:migration asks of autogenerate; plain `alembic revision` gets the defaults."""

    drop_empty: bool = False
    derive_name: bool = False
    dry_run: bool = False
    allow_drops: bool = True
    renames: Mapping[str, str] = field(default_factory=dict)
    ask: Decide | None = None
    required: RequiredPolicy | None = None


@dataclass
class AutogenOutcome:
    """What the hook found, filled in before anything is written."""

    changes: list[Change] = field(default_factory=list)
    renames: list[RenameCandidate] = field(default_factory=list)
    unconfirmed: list[RenameCandidate] = field(default_factory=list)
    used_answers: set[str] = field(default_factory=set)
    refused_drops: dict[str, int] = field(default_factory=dict)
    chosen_names: list[ChosenName] = field(default_factory=list)
    required: RequiredFound = field(default_factory=RequiredFound)


def _decider(request: AutogenRequest, outcome: AutogenOutcome) -> Decide:
    def decide(candidate: RenameCandidate) -> bool:
        new = candidate.new.split(".", 1)[1] if candidate.kind == "column" else candidate.new
        if request.renames.get(candidate.old) in (new, candidate.new):
            outcome.used_answers.add(candidate.old)
            return True
        if request.ask is not None:
            return request.ask(candidate)
        outcome.unconfirmed.append(candidate)
        return False

    return decide


def _row_counts(connection: Any, tables: list[tuple[str | None, str]]) -> dict[str, int]:
    from sqlalchemy import func, select, table

    counts = {}
    for schema, name in tables:
        counts[_qualified(schema, name)] = connection.scalar(
            select(func.count()).select_from(table(name, schema=schema))
        )
    return counts


def _refused_drops(connection: Any, upgrade: ops.UpgradeOps) -> dict[str, int]:
    """Tables the diff would drop, with their rows, when that looks like a mistake."""
    dropped = [(op.schema, op.table_name) for op in upgrade.ops if isinstance(op, ops.DropTableOp)]
    counts = _row_counts(connection, dropped)
    if len(dropped) >= MANY_DROPS or any(counts.values()):
        return counts
    return {}


def directives_hook(metadata: Iterable[MetaData], request: AutogenRequest, outcome: AutogenOutcome) -> Any:
    metadata = list(metadata)

    def process_revision_directives(context: Any, _revision: Any, directives: list[Any]) -> None:
        if not directives:
            return
        script = directives[0]
        for container in (*script.upgrade_ops_list, *script.downgrade_ops_list):
            _drop_false_default_changes(container, context.dialect)
        if request.drop_empty and script.upgrade_ops.is_empty():
            directives[:] = []
            return
        for container in (*script.upgrade_ops_list, *script.downgrade_ops_list):
            _skip_index_drops_of_dropped_tables(container)
        confirmed, _ = apply_renames(script.upgrade_ops, script.downgrade_ops, _decider(request, outcome))
        outcome.renames.extend(confirmed)
        if context.dialect.name == "postgresql":
            existing = database_enums(context.connection)
            wanted = enums_in(metadata)
            manage_enum_types(script.upgrade_ops, set(existing), wanted)
            manage_enum_types(script.downgrade_ops, set(wanted), existing)
        else:
            drop_types_of_dropped_tables(script.downgrade_ops, metadata)
        _settle(context, script, metadata, outcome)
        outcome.changes.extend(describe(script.upgrade_ops.ops, context.dialect))
        outcome.changes.extend(
            Change("=", f"name {chosen.name} chosen for the unnamed {chosen.kind} on {chosen.table}")
            for chosen in outcome.chosen_names
        )
        if request.derive_name:
            named = [op for op in script.upgrade_ops.ops if not isinstance(op, CreateSchemaOp)]
            script.message = migration_message(derived_name(named))
        if request.required is not None:
            ask = not request.dry_run
            fill_required_columns(
                context.connection, script.upgrade_ops, request.required, outcome.required, ask=ask
            )
        if not request.allow_drops:
            outcome.refused_drops.update(_refused_drops(context.connection, script.upgrade_ops))
        unconfirmed = outcome.unconfirmed and not request.allow_drops
        if request.dry_run or outcome.refused_drops or outcome.required.missing or unconfirmed:
            directives[:] = []
            return

    return process_revision_directives


def _settle(context: Any, script: Any, metadata: list[MetaData], outcome: AutogenOutcome) -> None:
    """What makes the file work and come out the same every time: a name for every constraint
    it creates, CREATE SCHEMA before a new schema's tables, tables dropped in FK order."""
    namer = Namer.of(metadata)
    outcome.chosen_names.extend(namer.name_all(script.upgrade_ops, drops=False))
    namer.name_all(script.downgrade_ops, drops=True)
    if context.dialect.name == "postgresql":
        from sqlalchemy import inspect

        create_missing_schemas(
            script.upgrade_ops,
            script.downgrade_ops,
            lambda: set(inspect(context.connection).get_schema_names()),
        )
    _sort_table_groups(script.upgrade_ops, ops.DropTableOp, referenced_first=False)
    _sort_table_groups(script.downgrade_ops, ops.CreateTableOp, referenced_first=True)


def _qualified(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema else name


def _foreign_tables(operation: ops.CreateTableOp | ops.DropTableOp) -> set[str]:
    """The tables a created or dropped table's foreign keys point at, schema-qualified."""
    create = operation if isinstance(operation, ops.CreateTableOp) else getattr(operation, "_reverse", None)
    items = create.columns if isinstance(create, ops.CreateTableOp) else operation.to_table().constraints
    found = set()
    for item in items:
        if isinstance(item, ForeignKeyConstraint):
            for element in item.elements:
                parts = element.target_fullname.split(".")
                found.add(".".join(parts[:-1]) if len(parts) == 3 else parts[0])
    return found


def _referenced_first(dependencies: Mapping[str, set[str]]) -> list[str]:
    """Tables in an order where each comes after the tables it references, ties by name."""
    waiting = {table: set(refs) & set(dependencies) - {table} for table, refs in dependencies.items()}
    ordered: list[str] = []
    while waiting:
        ready = sorted(table for table, refs in waiting.items() if not refs) or sorted(waiting)[:1]
        for table in ready:
            ordered.append(table)
            del waiting[table]
        for refs in waiting.values():
            refs.difference_update(ready)
    return ordered


def _sort_table_groups(container: ops.OpContainer, kind: type[Any], *, referenced_first: bool) -> None:
    """Alembic finds tables to drop in a set, so their order (and the order of their re-creation
    in the downgrade) changed from run to run: put them, each with the ops on it, in FK order."""
    key = {_qualified(op.schema, op.table_name): op for op in container.ops if isinstance(op, kind)}
    if len(key) < 2:
        return

    def group(operation: Any) -> str | None:
        if isinstance(operation, kind | ops.ModifyTableOps):
            name = _qualified(operation.schema, operation.table_name)
            return name if name in key else None
        return None

    order = _referenced_first({name: _foreign_tables(op) for name, op in key.items()})
    if not referenced_first:
        order.reverse()
    groups: dict[str, list[Any]] = {name: [] for name in order}
    others: list[Any] = []
    first = None
    for operation in container.ops:
        name = group(operation)
        if name is None:
            others.append(operation)
            continue
        first = len(others) if first is None else first
        groups[name].append(operation)
    container.ops = others[:first] + [op for name in order for op in groups[name]] + others[first:]
