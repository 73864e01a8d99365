"""What a migration test compares: the schema of a database as sqlalchemy.inspect reflects it,
without the tool's own history tables, and a readable difference between two such schemas."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from manage_migrations import ledger

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

Schema = dict[str, Any]
# The serial sequences of the tool's own tables (manage_migrations_id_seq) are history, not schema.
TOOL_SEQUENCE_PREFIXES = tuple(f"{table}_" for table in sorted(ledger.TOOL_TABLES))


def _text(value: object) -> str | None:
    return None if value is None else re.sub(r"\s+", " ", str(value)).strip()


def _table(inspector: Any, dialect: Any, table: str) -> dict[str, Any]:
    """Columns as a set (a downgrade that re-adds a column puts it last), constraints by name."""
    primary = inspector.get_pk_constraint(table)
    return {
        "columns": sorted(
            (
                column["name"],
                str(column["type"].compile(dialect=dialect)),
                bool(column["nullable"]),
                _text(column.get("default")),
            )
            for column in inspector.get_columns(table)
        ),
        "primary key": (primary.get("name"), tuple(primary.get("constrained_columns") or ())),
        "indexes": sorted(
            (index["name"], tuple(map(str, index["column_names"])), bool(index["unique"]))
            for index in inspector.get_indexes(table)
        ),
        "unique constraints": sorted(
            (unique["name"], tuple(unique["column_names"]))
            for unique in inspector.get_unique_constraints(table)
        ),
        "foreign keys": sorted(
            (
                str(key.get("name")),
                tuple(key["constrained_columns"]),
                key["referred_table"],
                tuple(key["referred_columns"]),
                _text((key.get("options") or {}).get("ondelete")),
            )
            for key in inspector.get_foreign_keys(table)
        ),
        "check constraints": sorted(
            (str(check.get("name")), _text(check["sqltext"]))
            for check in inspector.get_check_constraints(table)
        ),
    }


def snapshot(connection: Connection) -> Schema:
    """Tables (columns with types and nullability, indexes, unique / FK / check constraints),
    and on PostgreSQL the enum types and sequences, of the default schema."""
    from sqlalchemy import inspect

    inspector = inspect(connection)
    dialect = connection.dialect
    schema: Schema = {
        f"table {table}": _table(inspector, dialect, table)
        for table in sorted(set(inspector.get_table_names()) - ledger.TOOL_TABLES)
    }
    if dialect.name == "postgresql":
        for enum in inspector.get_enums():  # type: ignore[attr-defined]  # PGInspector
            schema[f"enum type {enum['name']}"] = tuple(enum["labels"])
        for sequence in inspector.get_sequence_names():
            if not sequence.startswith(TOOL_SEQUENCE_PREFIXES):
                schema[f"sequence {sequence}"] = True
    return schema


def difference(expected: Schema, actual: Schema) -> list[str]:
    """One line per object that is missing, left behind or changed (and how)."""
    lines = []
    for key in sorted(expected.keys() | actual.keys()):
        if key not in actual:
            lines.append(f"- {key} is missing")
        elif key not in expected:
            lines.append(f"+ {key} is left behind")
        elif expected[key] != actual[key]:
            lines.extend(_changed(key, expected[key], actual[key]))
    return lines


def _changed(key: str, expected: Any, actual: Any) -> list[str]:
    if not (isinstance(expected, dict) and isinstance(actual, dict)):
        return [f"~ {key}: {expected!r} became {actual!r}"]
    lines: list[str] = []
    for part in expected:
        if expected[part] == actual[part]:
            continue
        before, after = expected[part], actual[part]
        if isinstance(before, list):
            lines.extend(f"- {key}: {part} {item!r} is missing" for item in before if item not in after)
            lines.extend(f"+ {key}: {part} {item!r} is left behind" for item in after if item not in before)
        else:
            lines.append(f"~ {key}: {part} {before!r} became {after!r}")
    return lines
