"""migrate:dump and loading the dump into an empty database equal migrating from scratch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import REPO_ROOT, fresh_database, make_project
from helpers import create_table_revision


def reflected_schema(url: str) -> dict[str, dict]:
    """Everything the inspector sees, in comparable form."""
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        schema = {}
        for table in sorted(inspector.get_table_names()):
            schema[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                    for c in inspector.get_columns(table)
                ],
                "pk": inspector.get_pk_constraint(table)["constrained_columns"],
                "fks": sorted(
                    (fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"])
                    for fk in inspector.get_foreign_keys(table)
                ),
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)
                ),
                "uniques": sorted(u["name"] for u in inspector.get_unique_constraints(table)),
            }
        return schema
    finally:
        engine.dispose()


def _history(url: str) -> tuple[set, list]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            version = {
                row[0] for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            }
            ledger = [
                tuple(row)
                for row in connection.exec_driver_sql(
                    "SELECT revision, name, batch, checksum FROM manage_migrations ORDER BY id"
                )
            ]
        return version, ledger
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    first = fresh_database(request.param, tmp_path / "one")
    second = fresh_database(request.param, tmp_path / "two")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    try:
        yield next(first), next(second)
    finally:
        first.close()
        second.close()


def test_dump_then_load_equals_migrating_from_scratch(
    two_databases: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch_url, dumped_url = two_databases
    project = make_project(tmp_path, scratch_url, monkeypatch)
    for source in (REPO_ROOT / "models").glob("*.py"):
        project.write_model(source.name, source.read_text())
    for source in (REPO_ROOT / "migrations").glob("*.py"):
        (project.migrations / source.name).write_text(source.read_text())
    assert project.run("migrate").exit_code == 0

    dumped = project.run("migrate:dump")

    assert dumped.exit_code == 0, dumped.output
    backend = sa.make_url(scratch_url).get_backend_name()
    dump_file = project.migrations / "schema" / f"{'mysql' if backend == 'mysql' else backend}-schema.sql"
    assert dump_file.is_file()
    assert " to migrations/schema/" in dumped.stdout

    head = sorted(_history(scratch_url)[0])[0]
    create_table_revision(project.migrations, 9, "after_dump", head)
    loaded = project.run("migrate", url=dumped_url)
    assert loaded.exit_code == 0, loaded.output
    assert "Loaded schema dump" in loaded.stdout
    assert "2026_01_01_000009_create_after_dump_table" in loaded.stdout
    assert loaded.stdout.count(" DONE") == 1
    assert project.run("migrate").exit_code == 0

    assert reflected_schema(dumped_url) == reflected_schema(scratch_url)
    version, rows = _history(scratch_url)
    # One run built the dumped database: one batch, as a run from scratch records it.
    assert _history(dumped_url) == (version, [(*row[:2], 1, row[3]) for row in rows])


def test_no_dump_migrates_from_scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path, f"sqlite:///{tmp_path / 'a.sqlite3'}", monkeypatch)
    first = create_table_revision(project.migrations, 1, "alpha", None)
    create_table_revision(project.migrations, 2, "beta", first)
    assert project.run("migrate").exit_code == 0
    assert project.run("migrate:dump").exit_code == 0

    other = f"sqlite:///{tmp_path / 'b.sqlite3'}"
    result = project.run("migrate", "--no-dump", url=other)

    assert "Loaded schema dump" not in result.stdout
    assert result.stdout.count(" DONE") == 2


def test_dump_refuses_an_unmigrated_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path, f"sqlite:///{tmp_path / 'a.sqlite3'}", monkeypatch)
    create_table_revision(project.migrations, 1, "alpha", None)
    result = project.run("migrate:dump")
    assert result.exit_code == 1
    assert "nothing to dump" in result.stderr
    assert not (project.migrations / "schema").exists()
