"""CHECK constraints, which plain autogenerate does not compare: added, removed or changed ones
(matched by the name the naming convention gives them; a check the models leave unnamed by the
name a generated migration gives it, or else by its expression)."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from alembic.autogenerate import comparators
from alembic.operations import ops
from alembic.util import PriorityDispatchResult
from sqlalchemy import CheckConstraint, Table

from manage_migrations.alembic_env.constraint_names import choose, shape_of

# Where Alembic 1.18+ keeps get_multi_check_constraints() of every compared table.
PREFETCHED_CHECKS = "alembic_check_constraints"
CAST = re.compile(r"::[a-z_ ]+(\[\])?")
NOISE = re.compile(r"[`\"()\s]")


def _normalised(sql: str) -> str:
    """Quoting, parentheses, spacing and PostgreSQL casts differ between what is written and
    what a database reports back; none of them change the meaning of a simple check."""
    return NOISE.sub("", CAST.sub("", sql.lower()))


def _wanted(table: Table, dialect: Any, unnamed: set[str]) -> dict[str, CheckConstraint]:
    """CHECKs the models would create on this dialect (an Enum's CHECK only where it is not a
    native type), by name; the names chosen for unnamed ones are added to `unnamed`."""
    found: dict[str, CheckConstraint] = {}
    constraints = set(table.constraints) | {c for column in table.columns for c in column.constraints}
    for constraint in constraints:
        if not isinstance(constraint, CheckConstraint):
            continue
        rule = getattr(constraint, "_create_rule", None)
        if rule is not None and not rule(SimpleNamespace(dialect=dialect)):
            continue
        name = None
        if constraint.name is not None:  # format_constraint asserts on an unnamed one
            name = dialect.identifier_preparer.format_constraint(constraint, _alembic_quote=False)
        shape = None if name else shape_of(constraint, table.name)
        if shape is not None:
            name = choose(shape, table.metadata.naming_convention)
            unnamed.add(str(name))
        if name:
            found[str(name)] = constraint
    return found


def _sql_of(constraint: CheckConstraint, dialect: Any) -> str:
    options = {"literal_binds": True, "include_table": False}
    return str(constraint.sqltext.compile(dialect=dialect, compile_kwargs=options))


def _canonical_on_postgresql(connection: Any, table: str, sql: str) -> str | None:
    """How PostgreSQL itself would print this check, found on a throwaway copy of the table."""
    savepoint = connection.begin_nested()
    try:
        connection.exec_driver_sql(f'CREATE TEMP TABLE "_manage_ck_probe" (LIKE "{table}")')
        connection.exec_driver_sql(f'ALTER TABLE "_manage_ck_probe" ADD CONSTRAINT probe CHECK ({sql})')
        row = connection.exec_driver_sql(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = '_manage_ck_probe'::regclass AND conname = 'probe'"
        ).first()
    except Exception:
        return None
    finally:
        savepoint.rollback()
    return re.sub(r"^CHECK\s*", "", row[0]) if row else None


def _differs(autogen_context: Any, table: str, wanted: str, reflected: str) -> bool:
    if _normalised(wanted) == _normalised(reflected):
        return False
    if autogen_context.dialect.name == "postgresql":
        canonical = _canonical_on_postgresql(autogen_context.connection, table, wanted)
        if canonical is not None:
            return _normalised(canonical) != _normalised(reflected)
    return True


def _bound_type(constraint: CheckConstraint) -> Any:
    """The Enum or Boolean whose CHECK this is. Migrations run without the models' naming
    convention, so such a CHECK is created under the type's own name (e.g. `mood`)."""
    rule = getattr(constraint, "_create_rule", None)
    return getattr(getattr(rule, "func", None), "__self__", None)


def _reflected_checks(inspector: Any, table_name: str, schema: str | None) -> list[dict[str, Any]]:
    """The table's CHECKs from what Alembic fetched for all tables in one query (one query per
    table otherwise, on PostgreSQL and MariaDB). Names come back as plain strings: Alembic marks
    its copies as already converted, which would render them as op.f('...')."""
    prefetched = inspector.info_cache.get(PREFETCHED_CHECKS)
    if isinstance(prefetched, dict) and (schema, table_name) in prefetched:
        return [
            {**check, "name": None if check.get("name") is None else str(check["name"])}
            for check in prefetched[(schema, table_name)] or ()
        ]
    return inspector.get_check_constraints(table_name, schema=schema)


@comparators.dispatch_for("table")
def compare_check_constraints(autogen_context: Any, modify_table_ops: ops.ModifyTableOps, *table: Any) -> Any:
    """Alembic's table comparator hook; Alembic passes `table` as (schema, name, table as reflected,
    table in the models)."""
    schema: str | None
    table_name: str
    conn_table: Table | None
    metadata_table: Table | None
    schema, table_name, conn_table, metadata_table = table
    if conn_table is None or metadata_table is None:
        return PriorityDispatchResult.CONTINUE
    dialect = autogen_context.dialect
    try:
        reflected = _reflected_checks(autogen_context.inspector, table_name, schema)
    except NotImplementedError:
        return PriorityDispatchResult.CONTINUE
    unnamed: set[str] = set()
    wanted = _wanted(metadata_table, dialect, unnamed)
    existing = {ck["name"]: ck["sqltext"] for ck in reflected if ck.get("name")}
    real_names = {name: name for name in existing}
    for name, constraint in wanted.items():
        bare = getattr(_bound_type(constraint), "name", None)
        if name not in existing and bare in existing and bare not in wanted:
            existing[name] = existing.pop(bare)
            real_names[name] = real_names.pop(bare)
    anonymous = [ck["sqltext"] for ck in reflected if not ck.get("name")]
    for name in sorted(unnamed - set(existing)):
        candidates = [(old, existing[old]) for old in sorted(set(existing) - set(wanted))]
        candidates += [(None, sql) for sql in anonymous]
        sql = _sql_of(wanted[name], dialect)
        old, found = next(
            (pair for pair in candidates if not _differs(autogen_context, table_name, sql, pair[1])),
            (None, None),
        )
        if found is None:
            continue
        # The same check, created unnamed (e.g. by create_all): not a change.
        existing[name] = existing.pop(old) if old is not None else found
        real_names[name] = real_names.pop(old) if old is not None else name
        if old is None:
            anonymous.remove(found)

    for name in sorted(set(existing) - set(wanted)):
        constraint = CheckConstraint(existing[name], name=real_names[name], table=conn_table)
        modify_table_ops.ops.append(ops.DropConstraintOp.from_constraint(constraint))
    for name in sorted(set(existing) & set(wanted)):
        if _differs(autogen_context, table_name, _sql_of(wanted[name], dialect), existing[name]):
            old = CheckConstraint(existing[name], name=real_names[name], table=conn_table)
            modify_table_ops.ops.append(ops.DropConstraintOp.from_constraint(old))
            modify_table_ops.ops.append(ops.AddConstraintOp.from_constraint(wanted[name]))
    for name in sorted(set(wanted) - set(existing)):
        added: Any = ops.AddConstraintOp.from_constraint(wanted[name])
        added.constraint_name = name
        modify_table_ops.ops.append(added)
    return PriorityDispatchResult.CONTINUE
