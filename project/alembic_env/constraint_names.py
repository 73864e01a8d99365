"""Names for the constraints and indexes a generated migration creates that the models leave
unnamed: without one, SQLite's batch mode and every downgrade (DROP CONSTRAINT) fail."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from alembic.operations import ops
from sqlalchemy import (
    CheckConstraint,
    Column,
    Constraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    UniqueConstraint,
    exc,
)

from manage_migrations import compat

# The convention of models/base.py (DESIGN.md), for the kinds a model's own convention lacks.
DEFAULT_CONVENTION: Mapping[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
KINDS = {
    "unique": "unique constraint",
    "foreignkey": "foreign key",
    "check": "check constraint",
    "primary": "primary key",
    "index": "index",
}
NOISE = re.compile(r"[`\"()\s]")


@dataclass(frozen=True)
class Shape:
    """What a name can be made of, whether the constraint comes from a model, a reflected table
    or an operation: `kind` is "unique", "foreignkey", "check", "primary" or "index"."""

    kind: str
    table: str
    columns: tuple[str, ...] = ()
    referred: tuple[str, ...] = ()  # FK targets as "table.column" or "schema.table.column"
    sql: str = ""


@dataclass(frozen=True)
class ChosenName:
    """A name given to a constraint or index the models leave unnamed (for the report)."""

    kind: str
    name: str
    table: str


def check_token(sql: str) -> str:
    """An unnamed CHECK's stand-in for %(constraint_name)s: a digest of its expression, so the
    same check gets the same name on every backend and in every run."""
    return hashlib.sha1(NOISE.sub("", sql.lower()).encode()).hexdigest()[:8]


def sql_text(constraint: CheckConstraint) -> str:
    """The expression without any dialect's quirks (literal values written out)."""
    try:
        return str(constraint.sqltext.compile(compile_kwargs={"literal_binds": True}))
    except exc.SQLAlchemyError:
        return str(constraint.sqltext)


def _stand_in(shape: Shape, table: Table, named: bool) -> Constraint | Index:
    columns = [table.c[column] for column in shape.columns]
    if shape.kind == "unique":
        return UniqueConstraint(*columns)
    if shape.kind == "primary":
        return PrimaryKeyConstraint(*columns)
    if shape.kind == "foreignkey":
        return ForeignKeyConstraint(columns, list(shape.referred))
    if shape.kind == "index":
        return Index(None, *columns)
    return CheckConstraint(shape.sql, name=check_token(shape.sql) if named else None)


def _named_by(shape: Shape, convention: Mapping[Any, Any]) -> str | None:
    """The name `convention` gives the shape, found by building it on a throwaway table."""
    for named in (False, True):
        table = Table(shape.table, MetaData(naming_convention=dict(convention)))
        for column in dict.fromkeys(shape.columns):
            table.append_column(Column(column, Integer))
        try:
            item = _stand_in(shape, table, named)
            if not isinstance(item, Index):
                table.append_constraint(item)
        except exc.InvalidRequestError:
            # The template needs %(constraint_name)s: an unnamed CHECK gets its digest.
            continue
        name = item.name
        if isinstance(name, str) and name and not (named and name == check_token(shape.sql)):
            return str(name)
    return None


def choose(shape: Shape, convention: Mapping[Any, Any] | None) -> str | None:
    """The models' own convention first, then the default one for kinds it does not cover."""
    if convention:
        name = _named_by(shape, convention)
        if name:
            return name
    return _named_by(shape, DEFAULT_CONVENTION)


def _named(constraint: Any) -> bool:
    return isinstance(constraint.name, str) and bool(constraint.name)


def shape_of(constraint: Constraint, table: str) -> Shape | None:
    """None for what needs no name: a CHECK an Enum or Boolean makes (named after its type)."""
    if isinstance(constraint, UniqueConstraint | PrimaryKeyConstraint):
        kind = "unique" if isinstance(constraint, UniqueConstraint) else "primary"
        columns = tuple(column.name for column in constraint.columns)
        return Shape(kind, table, columns) if columns else None
    if isinstance(constraint, ForeignKeyConstraint):
        columns = tuple(element.parent.name for element in constraint.elements)
        referred = tuple(element.target_fullname for element in constraint.elements)
        return Shape("foreignkey", table, columns, referred)
    if isinstance(constraint, CheckConstraint) and getattr(constraint, "_create_rule", None) is None:
        return Shape("check", table, sql=sql_text(constraint))
    return None


@dataclass
class Namer:
    """Names unnamed constraints by the convention of the model table's MetaData (tables the
    models do not have, such as dropped ones, by the default convention)."""

    conventions: Mapping[tuple[str | None, str], Mapping[Any, Any]]

    @classmethod
    def of(cls, metadata: Iterable[MetaData]) -> Namer:
        return cls(
            {
                (table.schema, table.name): meta.naming_convention
                for meta in metadata
                for table in meta.tables.values()
            }
        )

    def _name(self, constraint: Any, table: str, schema: str | None) -> ChosenName | None:
        shape = shape_of(constraint, table)
        name = choose(shape, self.conventions.get((schema, table))) if shape else None
        return ChosenName(KINDS[shape.kind], name, table) if shape and name else None

    def name_all(self, container: ops.OpContainer, *, drops: bool) -> list[ChosenName]:
        """Name every unnamed constraint and index `container` creates; with `drops` (a
        downgrade undoing what the upgrade created) also the ones it drops, by the same rule,
        while a table it re-creates keeps its primary key as the database reported it."""
        chosen: list[ChosenName] = []
        for operation in container.ops:
            if isinstance(operation, ops.ModifyTableOps):
                chosen.extend(self.name_all(operation, drops=drops))
            elif isinstance(operation, ops.CreateTableOp):
                chosen.extend(self._name_inline(operation, primary_key=not drops))
            elif isinstance(operation, ops.AddConstraintOp) or (
                drops and isinstance(operation, ops.DropConstraintOp)
            ):
                chosen.extend(self._name_operation(operation))
            elif isinstance(operation, ops.CreateIndexOp) or (
                drops and isinstance(operation, ops.DropIndexOp)
            ):
                chosen.extend(self._name_index(operation))
        return chosen

    def _name_inline(self, operation: ops.CreateTableOp, *, primary_key: bool) -> Iterable[ChosenName]:
        for item in operation.columns:
            if isinstance(item, PrimaryKeyConstraint) and not primary_key:
                continue
            if isinstance(item, Constraint) and not _named(item):
                chosen = self._name(item, operation.table_name, operation.schema)
                if chosen:
                    item.name = chosen.name
                    yield chosen

    def _name_operation(self, operation: Any) -> Iterable[ChosenName]:
        if operation.constraint_name is not None:
            return
        creating = operation if isinstance(operation, ops.AddConstraintOp) else compat.reverse_of(operation)
        if creating is None:
            return
        constraint = creating.to_constraint()
        table = constraint.table
        chosen = self._name(constraint, table.name, table.schema)
        if chosen:
            operation.constraint_name = chosen.name
            yield chosen

    def _name_index(self, operation: Any) -> Iterable[ChosenName]:
        creating = operation if isinstance(operation, ops.CreateIndexOp) else compat.reverse_of(operation)
        if operation.index_name is not None or creating is None:
            return
        columns = tuple(column for column in creating.columns if isinstance(column, str))
        if len(columns) != len(creating.columns):
            return
        shape = Shape("index", operation.table_name, columns)
        name = choose(shape, self.conventions.get((operation.schema, operation.table_name)))
        if name:
            operation.index_name = name
            yield ChosenName("index", name, operation.table_name)
