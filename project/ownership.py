"""What a project owns in its database, and what outside it depends on that: destructive commands
(migrate:fresh) act on the owned schemas only, and refuse to reach past them silently."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from manage_migrations.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from manage_migrations.settings import Settings

# Never owned, whatever a model names: dropping in them would break the server, not the project.
SYSTEM_SCHEMAS = frozenset(
    {"pg_catalog", "pg_toast", "information_schema", "mysql", "performance_schema", "sys"}
)


@dataclass(frozen=True)
class Dependent:
    """An object outside the owned schemas that dropping them would remove or change.

    `kind` and `identity` are PostgreSQL's words (pg_identify_object), always schema-qualified;
    `foreign_key` is (schema, table, constraint) where the object is a MariaDB/MySQL foreign key.
    """

    kind: str
    identity: str
    foreign_key: tuple[str, str, str] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.kind} {self.identity}"


@dataclass(frozen=True)
class Owned:
    """The owned schemas and the objects in them, each as (schema, name)."""

    schemas: tuple[str, ...]
    tables: tuple[tuple[str, str], ...] = ()
    views: tuple[tuple[str, str], ...] = ()
    materialized_views: tuple[tuple[str, str], ...] = ()
    sequences: tuple[tuple[str, str], ...] = ()
    types: tuple[tuple[str, str], ...] = ()
    virtual_tables: tuple[tuple[str, str], ...] = ()
    oids: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
    """PostgreSQL: the pg_class and pg_type oids of the objects above, where dependents start."""


def model_schemas(settings: Settings) -> frozenset[str]:
    """The schemas the models name (`__table_args__ = {"schema": ...}` or MetaData(schema=...)).

    A project without models owns no extra schema; a model module that fails to import stops the
    command (exit 3) before anything is dropped, since what it owns cannot be known then.
    """
    from manage_migrations.discovery import NoModelsFound, database_models

    try:
        found = database_models(settings)
    except NoModelsFound:
        return frozenset()
    return frozenset(
        table.schema for metadata in found.metadata for table in metadata.tables.values() if table.schema
    )


def owned_schemas(connection: Connection, settings: Settings) -> tuple[str, ...]:
    """The connection's own schema (PostgreSQL's current_schema(), MariaDB's database, SQLite's
    main) first, then the existing schemas the models name."""
    from sqlalchemy import text

    dialect = connection.dialect.name
    if dialect == "sqlite":
        return ("main",)
    if dialect == "postgresql":
        own = connection.exec_driver_sql("SELECT current_schema()").scalar()
        existing = "SELECT nspname FROM pg_namespace WHERE nspname = ANY(:names)"
    else:
        own = connection.exec_driver_sql("SELECT DATABASE()").scalar()
        existing = "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN :names"
    if own is None:
        raise ConfigError(
            "the connection has no schema of its own to drop objects in",
            hint="on PostgreSQL, give the role a search_path whose first schema exists",
        )
    wanted = sorted(model_schemas(settings) - SYSTEM_SCHEMAS - {own})
    if not wanted:
        return (own,)
    statement = text(existing)
    if dialect != "postgresql":
        from sqlalchemy import bindparam

        statement = statement.bindparams(bindparam("names", expanding=True))
    found = set(connection.execute(statement, {"names": wanted}).scalars())
    return (own, *(name for name in wanted if name in found))


def owned_objects(connection: Connection, schemas: tuple[str, ...]) -> Owned:
    """Every view, table, free-standing sequence and (PostgreSQL) enum type in the owned schemas."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return _postgresql_objects(connection, schemas)
    if dialect == "sqlite":
        return _sqlite_objects(connection)
    return _mysql_objects(connection, schemas)


def outside_dependents(connection: Connection, owned: Owned) -> tuple[Dependent, ...]:
    """Objects outside the owned schemas that dropping the owned objects would remove or change."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return _postgresql_dependents(connection, owned)
    if dialect == "sqlite":
        return ()
    return _mysql_dependents(connection, owned.schemas)


# PostgreSQL

_NOT_EXTENSION_MEMBER = """NOT EXISTS (
    SELECT FROM pg_depend e WHERE e.classid = {catalog}::regclass AND e.objid = {oid} AND e.deptype = 'e')"""

# Tables, views, materialized views, and sequences no table column owns (those go with their table).
_PG_RELATIONS = f"""
SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(:schemas) AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
  AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_class'", oid="c.oid")}
  AND NOT (c.relkind = 'S' AND EXISTS (
      SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
        AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
ORDER BY n.nspname, c.relname
"""

_PG_ENUMS = f"""
SELECT t.oid, n.nspname, t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = ANY(:schemas) AND t.typtype = 'e'
  AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_type'", oid="t.oid")}
ORDER BY n.nspname, t.typname
"""

# Everything DROP ... CASCADE would reach from the owned objects: their dependents (recursively),
# and the owner of anything reached through an internal dependency (a view's rule -> the view).
# Parts that cannot exist alone are left out of the report (a view's columns and rule, row and
# array types, a foreign key's triggers, a table's TOAST storage in pg_toast): the object they
# belong to is listed instead.
_PG_DEPENDENTS = """
WITH RECURSIVE closure(classid, objid, objsubid) AS (
    SELECT 'pg_class'::regclass::oid, seed, 0 FROM unnest(CAST(:relations AS oid[])) AS seed
    UNION SELECT 'pg_type'::regclass::oid, seed, 0 FROM unnest(CAST(:types AS oid[])) AS seed
    UNION
    SELECT step.classid, step.objid, step.objsubid FROM closure c CROSS JOIN LATERAL (
        SELECT d.classid, d.objid, d.objsubid FROM pg_depend d
        WHERE d.refclassid = c.classid AND d.refobjid = c.objid
          AND (c.objsubid = 0 OR d.refobjsubid = c.objsubid) AND d.deptype IN ('n', 'a', 'i', 'P', 'S')
        UNION ALL
        SELECT d.refclassid, d.refobjid, d.refobjsubid FROM pg_depend d
        WHERE d.classid = c.classid AND d.objid = c.objid AND d.deptype = 'i'
    ) step
), described AS (
    SELECT c.*, o.type, o.identity, COALESCE(o.schema, (
        SELECT n.nspname FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
        WHERE r.oid = CASE c.classid
            WHEN 'pg_rewrite'::regclass THEN (SELECT ev_class FROM pg_rewrite WHERE oid = c.objid)
            WHEN 'pg_attrdef'::regclass THEN (SELECT adrelid FROM pg_attrdef WHERE oid = c.objid)
            WHEN 'pg_trigger'::regclass THEN (SELECT tgrelid FROM pg_trigger WHERE oid = c.objid)
            WHEN 'pg_policy'::regclass THEN (SELECT polrelid FROM pg_policy WHERE oid = c.objid)
        END)) AS schema
    FROM closure c, pg_identify_object(c.classid, c.objid, c.objsubid) o
)
SELECT DISTINCT type, identity FROM described c
WHERE (schema IS NULL OR NOT (schema = ANY(:schemas) OR schema LIKE 'pg\\_toast%'))
  AND NOT (c.classid = 'pg_class'::regclass AND c.objsubid <> 0
           AND (SELECT relkind FROM pg_class WHERE oid = c.objid) IN ('v', 'm'))
  AND NOT (c.classid = 'pg_rewrite'::regclass
           AND (SELECT rulename FROM pg_rewrite WHERE oid = c.objid) = '_RETURN')
  AND NOT (c.classid = 'pg_type'::regclass AND EXISTS (
           SELECT FROM pg_type t WHERE t.oid = c.objid
             AND (t.typrelid <> 0 OR EXISTS (SELECT FROM pg_type a WHERE a.typarray = t.oid))))
  AND NOT (c.classid = 'pg_trigger'::regclass
           AND (SELECT tgconstraint FROM pg_trigger WHERE oid = c.objid) <> 0)
"""


def _postgresql_objects(connection: Connection, schemas: tuple[str, ...]) -> Owned:
    from sqlalchemy import text

    kinds: dict[str, list[tuple[str, str]]] = {"r": [], "p": [], "v": [], "m": [], "S": []}
    relation_oids: list[int] = []
    for oid, schema, name, kind in connection.execute(text(_PG_RELATIONS), {"schemas": list(schemas)}):
        kinds[kind].append((schema, name))
        relation_oids.append(oid)
    enums = connection.execute(text(_PG_ENUMS), {"schemas": list(schemas)}).all()
    return Owned(
        schemas,
        tables=tuple(sorted(kinds["r"] + kinds["p"])),
        views=tuple(kinds["v"]),
        materialized_views=tuple(kinds["m"]),
        sequences=tuple(kinds["S"]),
        types=tuple((schema, name) for _, schema, name in enums),
        oids=(tuple(relation_oids), tuple(oid for oid, _, _ in enums)),
    )


def _postgresql_dependents(connection: Connection, owned: Owned) -> tuple[Dependent, ...]:
    from sqlalchemy import text

    relations, types = owned.oids
    if not relations and not types:
        return ()
    rows = connection.execute(
        text(_PG_DEPENDENTS),
        {"relations": list(relations), "types": list(types), "schemas": list(owned.schemas)},
    )
    # Sorted here, not by the database's collation: the same list on every server.
    return tuple(
        Dependent(kind, identity) for identity, kind in sorted((identity, kind) for kind, identity in rows)
    )


# MariaDB / MySQL: a schema is a database; only foreign keys tie one database to another.


def _mysql_objects(connection: Connection, schemas: tuple[str, ...]) -> Owned:
    from sqlalchemy import bindparam, text

    statement = text(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA IN :schemas ORDER BY TABLE_SCHEMA, TABLE_NAME"
    ).bindparams(bindparam("schemas", expanding=True))
    kinds: dict[str, list[tuple[str, str]]] = {"VIEW": [], "SEQUENCE": [], "TABLE": []}
    for schema, name, kind in connection.execute(statement, {"schemas": list(schemas)}):
        # BASE TABLE, and SYSTEM VERSIONED (a MariaDB table with history) alike.
        kinds[kind if kind in kinds else "TABLE"].append((schema, name))
    return Owned(
        schemas, tables=tuple(kinds["TABLE"]), views=tuple(kinds["VIEW"]), sequences=tuple(kinds["SEQUENCE"])
    )


def _mysql_dependents(connection: Connection, schemas: tuple[str, ...]) -> tuple[Dependent, ...]:
    from sqlalchemy import bindparam, text

    statement = text(
        "SELECT DISTINCT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_SCHEMA, "
        "REFERENCED_TABLE_NAME FROM information_schema.KEY_COLUMN_USAGE "
        "WHERE REFERENCED_TABLE_SCHEMA IN :schemas AND TABLE_SCHEMA NOT IN :schemas "
        "ORDER BY TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME"
    ).bindparams(bindparam("schemas", expanding=True))
    return tuple(
        Dependent(
            "foreign key",
            f"{name} on {schema}.{table} (references {referenced_schema}.{referenced_table})",
            foreign_key=(schema, table, name),
        )
        for schema, table, name, referenced_schema, referenced_table in connection.execute(
            statement, {"schemas": list(schemas)}
        )
    )


# SQLite: one database file; virtual tables are dropped as such (their shadow tables go with them).


def _sqlite_objects(connection: Connection) -> Owned:
    rows = connection.exec_driver_sql(
        "SELECT type, name, sql FROM main.sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    ).all()
    # SQLite before 3.37 ignores this pragma: its shadow tables are then counted as tables (and
    # found gone when their turn comes), never left behind.
    shadow = {row[1] for row in connection.exec_driver_sql("PRAGMA main.table_list") if row[2] == "shadow"}
    virtual = {name for kind, name, sql in rows if kind == "table" and _is_virtual(sql)}
    return Owned(
        ("main",),
        tables=tuple(
            ("main", name) for kind, name, _ in rows if kind == "table" and name not in virtual | shadow
        ),
        views=tuple(("main", name) for kind, name, _ in rows if kind == "view"),
        virtual_tables=tuple(("main", name) for name in sorted(virtual)),
    )


def _is_virtual(sql: str | None) -> bool:
    return (sql or "").lstrip().upper().startswith("CREATE VIRTUAL TABLE")
