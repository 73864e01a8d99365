"""Probable renames: a table or column that disappears while one of the same shape appears.
Confirmed pairs become rename_table / alter_column(new_column_name=...), which keep the data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alembic.autogenerate import renderers
from alembic.operations import ops

from manage_migrations import compat


@dataclass(frozen=True)
class RenameCandidate:
    """`kind` is "table" or "column"; column names are written `table.column`."""

    kind: str
    old: str
    new: str

    @property
    def flag(self) -> str:
        new = self.new.split(".", 1)[1] if self.kind == "column" else self.new
        return f"--rename {self.old}:{new}"


Decide = Callable[[RenameCandidate], bool]


@renderers.dispatch_for(ops.RenameTableOp)
def _render_rename_table(_context: Any, operation: ops.RenameTableOp) -> str:
    """Alembic can run rename_table but has no renderer for it: autogenerate never emits one."""
    return f"op.rename_table({operation.table_name!r}, {operation.new_table_name!r})"


def _shape(columns: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((column.name, compat.type_affinity_name(column.type)) for column in columns))


def _affinity(column: Any) -> str:
    return compat.type_affinity_name(column.type)


def table_candidates(upgrade: ops.UpgradeOps) -> list[RenameCandidate]:
    dropped = [op for op in upgrade.ops if isinstance(op, ops.DropTableOp)]
    created = [op for op in upgrade.ops if isinstance(op, ops.CreateTableOp)]
    found = []
    for drop in dropped:
        shape = _shape(drop.to_table().columns)
        matches = [create for create in created if _shape(create.to_table().columns) == shape]
        if len(matches) == 1:
            found.append(RenameCandidate("table", drop.table_name, matches[0].table_name))
    return found


def column_candidates(upgrade: ops.UpgradeOps) -> list[RenameCandidate]:
    found = []
    for block in upgrade.ops:
        if not isinstance(block, ops.ModifyTableOps):
            continue
        dropped = [op for op in block.ops if isinstance(op, ops.DropColumnOp)]
        added = [op for op in block.ops if isinstance(op, ops.AddColumnOp)]
        for drop in dropped:
            column = drop.to_column()
            matches = [add for add in added if _affinity(add.column) == _affinity(column)]
            if len(matches) == 1:
                table = block.table_name
                new = matches[0].column.name
                found.append(RenameCandidate("column", f"{table}.{column.name}", f"{table}.{new}"))
    return found


def apply_table_rename(container: ops.OpContainer, old: str, new: str) -> None:
    """Replace drop_table(old) + create_table(new) by rename_table(old, new)."""
    result: list[ops.MigrateOperation] = []
    for operation in container.ops:
        if isinstance(operation, ops.DropTableOp) and operation.table_name == old:
            continue
        if isinstance(operation, ops.CreateTableOp) and operation.table_name == new:
            result.append(ops.RenameTableOp(old, new))
            continue
        result.append(operation)
    container.ops = result


def apply_column_rename(container: ops.OpContainer, table: str, old: str, new: str) -> None:
    """Replace drop_column(old) + add_column(new) by alter_column(old, new_column_name=new)."""
    for block in container.ops:
        if not isinstance(block, ops.ModifyTableOps) or block.table_name != table:
            continue
        dropped = next(op for op in block.ops if isinstance(op, ops.DropColumnOp) and op.column_name == old)
        added = next(op for op in block.ops if isinstance(op, ops.AddColumnOp) and op.column.name == new)
        existing = dropped.to_column()
        rename = ops.AlterColumnOp(
            table,
            old,
            modify_name=new,
            existing_type=existing.type,
            existing_nullable=existing.nullable,
            existing_server_default=existing.server_default,
        )
        block.ops = [rename if op is added else op for op in block.ops if op is not dropped]
        return


def apply_renames(
    upgrade: ops.UpgradeOps,
    downgrade: ops.DowngradeOps,
    decide: Decide,
) -> tuple[list[RenameCandidate], list[RenameCandidate]]:
    """Ask `decide` about each probable rename; returns (confirmed, declined)."""
    confirmed: list[RenameCandidate] = []
    declined: list[RenameCandidate] = []
    for candidate in table_candidates(upgrade) + column_candidates(upgrade):
        if not decide(candidate):
            declined.append(candidate)
            continue
        confirmed.append(candidate)
        if candidate.kind == "table":
            apply_table_rename(upgrade, candidate.old, candidate.new)
            apply_table_rename(downgrade, candidate.new, candidate.old)
        else:
            table, old = candidate.old.split(".", 1)
            new = candidate.new.split(".", 1)[1]
            apply_column_rename(upgrade, table, old, new)
            apply_column_rename(downgrade, table, new, old)
    return confirmed, declined
