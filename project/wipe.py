"""What migrate:fresh drops: every object in the connection's own database or schema, never more."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Dropped:
    tables: int = 0
    views: int = 0
    sequences: int = 0
    types: int = 0

    @property
    def total(self) -> int:
        return self.tables + self.views + self.sequences + self.types


def drop_everything(connection: Connection) -> Dropped:
    """Drop views, tables (tool tables included) and, on PostgreSQL, sequences and enum types.

    Only the current schema (PostgreSQL) or database (MariaDB, SQLite file) is reflected, so other
    schemas and the database itself stay; the caller owns the transaction.
    """
    from sqlalchemy import inspect

    inspector = inspect(connection)
    quote = connection.dialect.identifier_preparer.quote
    dialect = connection.dialect.name
    views = inspector.get_view_names()
    tables = [name for name, _ in reversed(inspector.get_sorted_table_and_fkc_names()) if name]
    if dialect == "postgresql":
        enums = [enum["name"] for enum in inspector.get_enums() if enum.get("visible", True)]
        for view in views:
            connection.exec_driver_sql(f"DROP VIEW IF EXISTS {quote(view)} CASCADE")
        for table in tables:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(table)} CASCADE")
        # Sequences owned by a dropped table went with it; only free-standing ones remain.
        remaining = set(inspect(connection).get_sequence_names())
        for sequence in remaining:
            connection.exec_driver_sql(f"DROP SEQUENCE IF EXISTS {quote(sequence)} CASCADE")
        for enum in enums:
            connection.exec_driver_sql(f"DROP TYPE IF EXISTS {quote(enum)} CASCADE")
        return Dropped(len(tables), len(views), len(remaining), len(enums))
    if dialect in ("mysql", "mariadb"):
        connection.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
    try:
        for view in views:
            connection.exec_driver_sql(f"DROP VIEW IF EXISTS {quote(view)}")
        for table in tables:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(table)}")
    finally:
        if dialect in ("mysql", "mariadb"):
            connection.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")
    return Dropped(len(tables), len(views))
