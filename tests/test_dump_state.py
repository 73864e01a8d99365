"""A database built from the schema dump equals one migrated from scratch, the tool's tables
included: the same history rows in one batch, alembic_version, and the recorded environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import Project, fresh_database, make_project
from helpers import create_table_revision


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def three_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """The database the dump is taken from, one built from the dump, one built from scratch."""
    makers = [fresh_database(request.param, tmp_path / name) for name in ("source", "dumped", "scratch")]
    for name in ("source", "dumped", "scratch"):
        (tmp_path / name).mkdir()
    try:
        source, dumped, scratch = (next(maker) for maker in makers)
        yield source, dumped, scratch
    finally:
        for maker in makers:
            maker.close()


def _tool_state(url: str) -> dict[str, list[tuple]]:
    """The tool's tables, without the columns that hold times."""
    queries = {
        "manage_migrations": "SELECT id, revision, name, batch, checksum FROM manage_migrations ORDER BY id",
        "alembic_version": "SELECT version_num FROM alembic_version",
        "manage_state": "SELECT * FROM manage_state",
    }
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table: sorted(map(tuple, connection.exec_driver_sql(sql))) for table, sql in queries.items()
            }
    finally:
        engine.dispose()


def _project_with_history(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Project, str]:
    """Three migrations, applied to `url` in two batches; returns the project and its head."""
    project = make_project(tmp_path, url, monkeypatch)
    first = create_table_revision(project.migrations, 1, "alpha", None)
    assert project.run("migrate").exit_code == 0
    second = create_table_revision(project.migrations, 2, "beta", first)
    third = create_table_revision(project.migrations, 3, "gamma", second)
    assert project.run("migrate").exit_code == 0
    return project, third


def test_a_dump_built_database_equals_one_migrated_from_scratch(
    three_databases: tuple[str, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, dumped, scratch = three_databases
    project, head = _project_with_history(tmp_path, source, monkeypatch)
    assert project.run("migrate:dump").exit_code == 0
    create_table_revision(project.migrations, 4, "delta", head)  # newer than the dump
    monkeypatch.setenv("APP_ENV", "production")

    from_dump = project.run("migrate", url=dumped)
    from_scratch = project.run("migrate", "--no-dump", url=scratch)

    assert from_dump.exit_code == 0 and from_scratch.exit_code == 0, from_dump.output + from_scratch.output
    assert "Loaded schema dump" in from_dump.stdout and "Loaded schema dump" not in from_scratch.stdout
    built = _tool_state(dumped)
    assert built == _tool_state(scratch)
    assert {batch for _, _, _, batch, _ in built["manage_migrations"]} == {1}
    assert built["manage_state"] == [("environment", "production")]


def test_a_dump_that_leaves_the_database_at_head_records_the_environment(
    three_databases: tuple[str, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, dumped, scratch = three_databases
    project, _ = _project_with_history(tmp_path, source, monkeypatch)
    assert project.run("migrate:dump").exit_code == 0
    monkeypatch.setenv("APP_ENV", "production")

    loaded = project.run("migrate", url=dumped)
    assert project.run("migrate", "--no-dump", url=scratch).exit_code == 0

    assert loaded.exit_code == 0, loaded.output
    assert loaded.stdout.splitlines()[-1] == "Nothing to migrate."  # the dump did it all
    assert _tool_state(dumped) == _tool_state(scratch)
    assert _tool_state(dumped)["manage_state"] == [("environment", "production")]
    monkeypatch.setenv("APP_ENV", "local")
    refused = project.run("migrate:rollback", url=dumped)  # marked production: guarded from anywhere
    assert refused.exit_code == 7, refused.output
