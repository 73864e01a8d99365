"""NOT NULL columns that existing rows cannot satisfy: added without a server default to a table
with rows, or made NOT NULL while rows hold NULL, they fail only when `migrate` runs. Like Django's
makemigrations, make:migration gets a one-off value for those rows and fills them in the migration
(add as nullable, UPDATE, then NOT NULL); the value is not kept as a server default."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from alembic.autogenerate import renderers
from alembic.operations import MigrateOperation, ops

from manage_migrations import compat


@dataclass(frozen=True)
class RequiredColumn:
    """A NOT NULL column whose existing rows need a value; `rows` is how many."""

    table: str
    column: str
    schema: str | None
    rows: int
    added: bool
    example: str

    @property
    def key(self) -> str:
        """How `--default` names it: `table.column` (`schema.table.column` outside the default)."""
        return ".".join(part for part in (self.schema, self.table, self.column) if part)

    @property
    def flag(self) -> str:
        """`--default users.email="''"`: ready to paste into a shell."""
        value = f'"{self.example}"' if "'" in self.example else self.example
        return f"--default {self.key}={value}"


AskDefault = Callable[[RequiredColumn], "str | None"]


@dataclass(frozen=True)
class RequiredPolicy:
    """One-off values by `RequiredColumn.key` (SQL expressions), and who to ask for a missing one."""

    values: Mapping[str, str] = field(default_factory=dict)
    ask: AskDefault | None = None


@dataclass
class RequiredFound:
    """Columns filled (with their value) and columns still missing a value (nothing is written)."""

    filled: list[tuple[RequiredColumn, str]] = field(default_factory=list)
    missing: list[RequiredColumn] = field(default_factory=list)
    used: set[str] = field(default_factory=set)


class BackfillOp(MigrateOperation):
    """UPDATE table SET column = <one-off SQL> WHERE column IS NULL."""

    def __init__(self, table: str, column: str, value: str, schema: str | None = None) -> None:
        self.table_name = table
        self.column = column
        self.value = value
        self.schema = schema


@renderers.dispatch_for(BackfillOp)
def _render_backfill(_context: Any, operation: BackfillOp) -> str:
    """Core constructs, so each database quotes the names its own way; repr() keeps user text inert."""
    column = operation.column
    table = f"sa.table({operation.table_name!r}, sa.column({column!r}), schema={operation.schema!r})"
    return (
        f"op.execute({table}.update().where(sa.column({column!r}).is_(None))"
        f".values({{{column!r}: sa.text({operation.value!r})}}))"
    )


EXAMPLES: tuple[tuple[type, str], ...] = (
    (bool, "false"),
    (int, "0"),
    (float, "0"),
    (decimal.Decimal, "0"),
    (str, "''"),
    (datetime.datetime, "CURRENT_TIMESTAMP"),
    (datetime.date, "CURRENT_DATE"),
)


def _example(type_: Any) -> str:
    """A value to show in the hint, of the column's kind; the user decides the real one."""
    try:
        python_type = type_.python_type
    except NotImplementedError:
        return "<SQL>"
    return next((text for kind, text in EXAMPLES if issubclass(python_type, kind)), "<SQL>")


def _needs_value(column: Any) -> bool:
    """The database fills none of these: no server default, identity, computed value or key."""
    return not (
        column.nullable
        or column.server_default is not None
        or column.computed is not None
        or column.identity is not None
        or column.primary_key
    )


def _count(connection: Any, table: str, schema: str | None, null_column: str | None) -> int:
    import sqlalchemy as sa

    query = sa.select(sa.func.count()).select_from(sa.table(table, schema=schema))
    if null_column is not None:
        query = query.where(sa.column(null_column).is_(None))
    return int(connection.scalar(query) or 0)


def _not_null_later(block: ops.ModifyTableOps, column: Any) -> ops.ModifyTableOps:
    alter = ops.AlterColumnOp(
        block.table_name,
        column.name,
        schema=block.schema,
        modify_nullable=False,
        existing_type=column.type,
        existing_nullable=True,
        existing_comment=column.comment,
    )
    return ops.ModifyTableOps(block.table_name, [alter], schema=block.schema)


class _Filler:
    """Walks the upgrade operations once, deciding each required column's value."""

    def __init__(self, connection: Any, policy: RequiredPolicy, found: RequiredFound, ask: bool) -> None:
        self.connection = connection
        self.policy = policy
        self.found = found
        self.ask = policy.ask if ask else None

    def value_for(self, block: ops.ModifyTableOps, name: str, type_: Any, *, added: bool) -> str | None:
        """The given value (even for an empty table: other databases may have rows), else the
        answer to the question when rows need one."""
        table, schema = block.table_name, block.schema
        rows = _count(self.connection, table, schema, None if added else name)
        required = RequiredColumn(table, name, schema, rows, added, _example(type_))
        value = self.policy.values.get(required.key)
        if value is not None:
            self.found.used.add(required.key)
        elif not rows:
            return None
        if value is None and self.ask is not None:
            value = (self.ask(required) or "").strip() or None
        if value is None:
            self.found.missing.append(required)
            return None
        self.found.filled.append((required, value))
        return value

    def rewrite(self, upgrade: ops.UpgradeOps) -> None:
        result: list[Any] = []
        for block in upgrade.ops:
            if not isinstance(block, ops.ModifyTableOps):
                result.append(block)
                continue
            before: list[Any] = []
            after: list[Any] = []
            for index, operation in enumerate(block.ops):
                if isinstance(operation, ops.AddColumnOp) and _needs_value(operation.column):
                    column = operation.column
                    value = self.value_for(block, column.name, column.type, added=True)
                    if value is not None:
                        nullable = compat.copy_column(column)
                        nullable.nullable = True
                        block.ops[index] = ops.AddColumnOp(block.table_name, nullable, schema=block.schema)
                        after += [self.backfill(block, column.name, value), _not_null_later(block, column)]
                elif isinstance(operation, ops.AlterColumnOp) and operation.modify_nullable is False:
                    name, type_ = operation.column_name, operation.existing_type
                    value = self.value_for(block, name, type_, added=False)
                    if value is not None:
                        before.append(self.backfill(block, operation.column_name, value))
            result += [*before, block, *after]
        upgrade.ops = result

    @staticmethod
    def backfill(block: ops.ModifyTableOps, column: str, value: str) -> BackfillOp:
        return BackfillOp(block.table_name, column, value, schema=block.schema)


def fill_required_columns(
    connection: Any, upgrade: ops.UpgradeOps, policy: RequiredPolicy, found: RequiredFound, *, ask: bool
) -> None:
    """Fill the rows of required columns in `upgrade` with the policy's values (asking for those
    it lacks when `ask`); columns left without a value are recorded in `found.missing`."""
    _Filler(connection, policy, found, ask).rewrite(upgrade)
