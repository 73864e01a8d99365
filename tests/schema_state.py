"""Compare what migrations built with what `metadata.create_all` builds from the same models."""

from __future__ import annotations

import re
from pprint import pformat
from typing import Any

import sqlalchemy as sa
from conftest import Project

from manage_migrations import ledger
from manage_migrations.discovery import discover_models

TOOL_TABLES = ledger.TOOL_TABLES


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))


def _default(text: Any) -> str | None:
    """Sequence names follow the table name, which a rename keeps; all else must match."""
    if text is None:
        return None
    return re.sub(r"nextval\('[^']+'::regclass\)", "nextval(<seq>)", str(text))


def _check_text(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def snapshot(url: str) -> dict[str, Any]:
    """Tables, columns, constraints, indexes and native enum types, by name, from the database."""
    engine = _engine(url)
    try:
        inspector = sa.inspect(engine)
        state: dict[str, Any] = {}
        for table in sorted(set(inspector.get_table_names()) - TOOL_TABLES):
            state[table] = {
                "columns": [
                    (
                        column["name"],
                        str(column["type"].compile(dialect=engine.dialect)),
                        column["nullable"],
                        _default(column.get("default")),
                        str(column.get("computed", {}).get("sqltext")),
                    )
                    for column in inspector.get_columns(table)
                ],
                "checks": sorted(
                    (ck["name"], _check_text(ck["sqltext"])) for ck in inspector.get_check_constraints(table)
                ),
                "uniques": sorted(
                    (uq["name"], tuple(uq["column_names"])) for uq in inspector.get_unique_constraints(table)
                ),
                "indexes": sorted(
                    (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                    for ix in inspector.get_indexes(table)
                ),
                "foreign_keys": sorted(
                    (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                    for fk in inspector.get_foreign_keys(table)
                ),
            }
        if engine.dialect.name == "postgresql":
            state["<enums>"] = sorted((enum["name"], tuple(enum["labels"])) for enum in inspector.get_enums())
        return state
    finally:
        engine.dispose()


def _clear(url: str) -> None:
    engine = _engine(url)
    try:
        with engine.begin() as connection:
            reflected = sa.MetaData()
            reflected.reflect(connection)
            reflected.drop_all(connection)
            if engine.dialect.name == "postgresql":
                for enum in sa.inspect(connection).get_enums():
                    connection.exec_driver_sql(f'DROP TYPE "{enum["name"]}"')
    finally:
        engine.dispose()


def models_schema(project: Project, twin_url: str) -> dict[str, Any]:
    """The schema `create_all` gives the project's current models, on an empty twin database."""
    _clear(twin_url)
    models = discover_models(project.root, ("models",))
    engine = _engine(twin_url)
    try:
        with engine.begin() as connection:
            for metadata in models.metadata:
                metadata.create_all(connection)
    finally:
        engine.dispose()
    return snapshot(twin_url)


def assert_matches_models(project: Project, twin_url: str) -> None:
    migrated = snapshot(project.url)
    expected = models_schema(project, twin_url)
    assert migrated == expected, f"migrated:\n{pformat(migrated)}\ncreate_all:\n{pformat(expected)}"
