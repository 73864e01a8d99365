"""PostgreSQL SERIAL detection with one query: Alembic asks pg_depend once per integer column
whose default is a nextval() (a thousand round trips for a thousand tables); the answers are the
same, since anything the one query cannot answer for certain is asked Alembic's way."""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import BIGINT, INTEGER

log = logging.getLogger("alembic.ddl.postgresql")

# Alembic's own test (alembic/ddl/postgresql.py, autogen_column_reflect).
NEXTVAL = re.compile(r"nextval\('(.+?)'::regclass\)")

# Alembic's query for every sequence at once. A sequence is keyed by its regclass text, which is
# exactly how pg_get_expr() wrote it into the nextval('...') default, under the same search_path.
OWNERS = text(
    "select c.oid::regclass::text, c.relname, a.attname "
    "from pg_class as c join "
    "pg_depend d on d.objid=c.oid and "
    "d.classid='pg_class'::regclass and "
    "d.refclassid='pg_class'::regclass "
    "join pg_class t on t.oid=d.refobjid "
    "join pg_attribute a on a.attrelid=t.oid and "
    "a.attnum=d.refobjsubid "
    "where c.relkind='S'"
)


def _owners(connection: Any) -> dict[str, tuple[str, str] | None]:
    """Sequence -> (sequence name, owning column); None where a sequence has several rows, whose
    `.first()` only the original per-column query can pick."""
    owners: dict[str, tuple[str, str] | None] = {}
    for key, relname, attname in connection.execute(OWNERS):
        owners[key] = None if key in owners else (relname, attname)
    return owners


def install(impl: Any, connection: Any) -> None:
    """Replace the impl's per-column column_reflect hook for this run with a one-query version."""
    original = impl.autogen_column_reflect
    owners: dict[str, tuple[str, str] | None] | None = None

    def autogen_column_reflect(inspector: Any, table: Any, column_info: dict[str, Any]) -> None:
        nonlocal owners
        default = column_info.get("default")
        if not default or not isinstance(column_info["type"], INTEGER | BIGINT):
            return
        match = NEXTVAL.match(default)
        if not match:
            return
        if owners is None:
            owners = _owners(connection)
        owner = owners.get(match.group(1))
        if owner is None:
            # Not owned (no row), or owned twice: ask exactly as Alembic does.
            original(inspector, table, column_info)
            return
        sequence, column = owner
        if column == column_info["name"]:
            log.info(
                "Detected sequence named '%s' as owned by integer column '%s(%s)', "
                "assuming SERIAL and omitting",
                sequence,
                table.name,
                column,
            )
            del column_info["default"]

    impl.autogen_column_reflect = autogen_column_reflect
