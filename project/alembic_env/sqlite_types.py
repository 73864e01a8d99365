"""SQLite keeps a column's declared type only as text and reflects a name it does not know by its
affinity (`BINARY(16)` comes back as `NUMERIC(16)`): such a type would be "changed" forever."""

from __future__ import annotations

from typing import Any

from manage_migrations import compat


def compare_type(
    context: Any, _inspected_column: Any, _metadata_column: Any, inspected_type: Any, metadata_type: Any
) -> bool | None:
    """Unchanged when the model's DDL type reflects as exactly what the database holds; otherwise
    Alembic's own comparison decides (None)."""
    dialect = context.dialect
    try:
        declared = metadata_type.compile(dialect=dialect)
        reflected = compat.sqlite_reflected_type(dialect, declared)
        if type(reflected) is type(inspected_type) and reflected.compile(
            dialect=dialect
        ) == inspected_type.compile(dialect=dialect):
            return False
    except Exception:  # a type that does not compile here: leave it to Alembic
        return None
    return None
