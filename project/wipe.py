"""What migrate:fresh drops: every object in the schemas the project owns (project.ownership),
never what lies outside them unless --cascade says so, and never the production mark."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from manage_migrations import ledger, ownership
from manage_migrations.errors import OperationFailed, Refused
from manage_migrations.settings import PRODUCTION, is_production

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from manage_migrations.ownership import Dependent, Owned
    from manage_migrations.settings import Settings


@dataclass(frozen=True)
class Dropped:
    """What was dropped, per kind; `outside`: what --cascade removed or changed beyond `schemas`."""

    tables: int = 0
    views: int = 0
    sequences: int = 0
    types: int = 0
    virtual_tables: int = 0
    schemas: tuple[str, ...] = ()
    outside: tuple[str, ...] = ()
    deferred_mark: str | None = None
    """The production mark, when it can only be written back after the migrate run (restore_mark)."""

    @property
    def total(self) -> int:
        return self.tables + self.views + self.sequences + self.types + self.virtual_tables


def drop_owned(connection: Connection, settings: Settings, *, cascade: bool = False) -> Dropped:
    """Drop every view, table (tool tables included), free-standing sequence, enum type and virtual
    table in the owned schemas, by schema-qualified name; the caller owns the transaction.

    Objects outside those schemas that depend on them (a view, a column of our enum type, a foreign
    key) refuse the whole wipe (exit 7) unless `cascade` is set; nothing is dropped then.
    """
    schemas = ownership.owned_schemas(connection, settings)
    mark = ledger.read_environment(connection)
    owned = ownership.owned_objects(connection, schemas)
    dialect = connection.dialect.name
    if dialect == "postgresql":
        _lock_tables(connection, owned)
    dependents = ownership.outside_dependents(connection, owned)
    if dependents and not cascade:
        listed = ", ".join(map(str, dependents))
        raise Refused(
            f"{_count(len(dependents), 'object')} outside {', '.join(schemas)} "
            f"depend{'s' if len(dependents) == 1 else ''} on what migrate:fresh would drop: {listed}",
            hint="drop or change them first, or pass --cascade to drop them too; nothing was dropped",
        )
    if dialect == "postgresql":
        _drop_postgresql(connection, owned)
    elif dialect == "sqlite":
        _drop_sqlite(connection, owned)
    else:
        _drop_mysql(connection, owned, dependents)
    deferred = None
    if is_production(mark):
        if _dump_needs_empty_database(connection, settings):
            deferred = PRODUCTION
        else:
            ledger.record_environment(connection, PRODUCTION)
    return Dropped(
        tables=len(owned.tables),
        views=len(owned.views) + len(owned.materialized_views),
        sequences=len(owned.sequences),
        types=len(owned.types),
        virtual_tables=len(owned.virtual_tables),
        schemas=schemas,
        outside=tuple(map(str, dependents)),
        deferred_mark=deferred,
    )


def restore_mark(connection: Connection, dropped: Dropped) -> None:
    """Write back the production mark that had to wait for the schema dump; once production, always."""
    if dropped.deferred_mark is None:
        return
    if connection.in_transaction():  # what a failed or interrupted run left open is not kept
        connection.rollback()
    with connection.begin():
        if ledger.read_environment(connection) != dropped.deferred_mark:
            ledger.record_environment(connection, dropped.deferred_mark)


def _dump_needs_empty_database(connection: Connection, settings: Settings) -> bool:
    """migrate loads a schema dump only into a database without tables, not even manage_state."""
    from manage_migrations import schema_dump

    dialect = schema_dump.dialect_name(connection.dialect.name)
    return schema_dump.dump_path(settings.migrations_dir, dialect).is_file()


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _names(connection: Connection, objects: tuple[tuple[str, str], ...]) -> str:
    preparer = connection.dialect.identifier_preparer
    return ", ".join(f"{preparer.quote_schema(schema)}.{preparer.quote(name)}" for schema, name in objects)


def _lock_tables(connection: Connection, owned: Owned) -> None:
    """Hold the tables before looking for dependents: no view or foreign key can appear on them
    between the check and the drop (which would take the same lock anyway)."""
    if owned.tables:
        connection.exec_driver_sql(f"LOCK TABLE {_names(connection, owned.tables)} IN ACCESS EXCLUSIVE MODE")


def _drop_postgresql(connection: Connection, owned: Owned) -> None:
    # CASCADE only once every dependent has been checked: inside the owned schemas it reaches
    # functions or domains over our types; outside them, only what --cascade allowed.
    for keyword, objects in (
        ("VIEW", owned.views),
        ("MATERIALIZED VIEW", owned.materialized_views),
        ("TABLE", owned.tables),
        ("SEQUENCE", owned.sequences),
        ("TYPE", owned.types),
    ):
        if objects:
            connection.exec_driver_sql(f"DROP {keyword} IF EXISTS {_names(connection, objects)} CASCADE")


def _drop_mysql(connection: Connection, owned: Owned, dependents: tuple[Dependent, ...]) -> None:
    quote = connection.dialect.identifier_preparer.quote
    for dependent in dependents:
        if dependent.foreign_key is not None:
            schema, table, name = dependent.foreign_key
            table_name = _names(connection, ((schema, table),))
            connection.exec_driver_sql(f"ALTER TABLE {table_name} DROP FOREIGN KEY {quote(name)}")
    connection.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
    try:
        for keyword, objects in (
            ("VIEW", owned.views),
            ("TABLE", owned.tables),
            ("SEQUENCE", owned.sequences),
        ):
            if objects:
                connection.exec_driver_sql(f"DROP {keyword} IF EXISTS {_names(connection, objects)}")
    finally:
        connection.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")


def _drop_sqlite(connection: Connection, owned: Owned) -> None:
    from sqlalchemy.exc import OperationalError

    for view in owned.views:
        connection.exec_driver_sql(f"DROP VIEW IF EXISTS {_names(connection, (view,))}")
    for virtual in owned.virtual_tables:
        # Dropping a virtual table drops its shadow tables; dropping those first breaks it.
        try:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {_names(connection, (virtual,))}")
        except OperationalError as exc:
            raise OperationFailed(
                f"cannot drop the virtual table {virtual[1]}: {exc.orig}",
                hint="this SQLite build lacks the module it was created with; nothing was dropped",
            ) from exc
    for table in owned.tables:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {_names(connection, (table,))}")
