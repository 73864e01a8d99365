"""The shipped example app and the real manage.py / plain alembic, run as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from conftest import CLI_ENV, REPO_ROOT, Project


def _run(cwd: Path, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "APP_ENV")}
    env.update(CLI_ENV)
    if url:
        env["DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _tables(path: Path) -> set[str]:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


EXAMPLE_TABLES = {"users", "posts", "tags", "post_tags"}


def test_real_manage_py_migrates_the_example_app_from_a_clone(repo_copy: Path) -> None:
    result = _run(repo_copy, "manage.py", "migrate")

    assert result.returncode == 0, result.stderr
    assert "Running migrations on sqlite:///database.sqlite3 (batch 1)" in result.stdout
    assert result.stdout.count(" DONE") == len(list((repo_copy / "migrations").glob("*.py")))
    assert EXAMPLE_TABLES | {"alembic_version", "manage_migrations", "manage_state"} == _tables(
        repo_copy / "database.sqlite3"
    )

    again = _run(repo_copy, "manage.py", "migrate")
    assert again.stdout.strip() == "Nothing to migrate."
    unknown = _run(repo_copy, "manage.py", "migrate:nope")
    assert unknown.returncode == 2


def test_plain_alembic_uses_the_same_environment(repo_copy: Path) -> None:
    head = _run(repo_copy, "-m", "alembic", "upgrade", "head")
    assert head.returncode == 0, head.stderr
    assert _tables(repo_copy / "database.sqlite3") >= EXAMPLE_TABLES
    current = _run(repo_copy, "-m", "alembic", "current")
    assert "(head)" in current.stdout

    down = _run(repo_copy, "-m", "alembic", "downgrade", "-1")
    assert down.returncode == 0, down.stderr
    assert "tags" not in _tables(repo_copy / "database.sqlite3")
    status = _run(repo_copy, "manage.py", "migrate:status")
    assert "Pending" in status.stdout
    assert "2 ran, 1 pending." in status.stdout

    check = _run(repo_copy, "manage.py", "migrate")
    assert check.returncode == 0
    autogenerate = _run(repo_copy, "-m", "alembic", "check")
    assert autogenerate.returncode == 0, autogenerate.stdout + autogenerate.stderr


def test_example_app_round_trips_with_no_drift(project: Project) -> None:
    for source in (REPO_ROOT / "models").glob("*.py"):
        project.write_model(source.name, source.read_text())
    for source in (REPO_ROOT / "migrations").glob("*.py"):
        (project.migrations / source.name).write_text(source.read_text())

    assert project.run("migrate").exit_code == 0
    assert project.tables() >= EXAMPLE_TABLES
    no_drift = project.run("make:migration", "drift")
    assert "No changes detected." in no_drift.output, no_drift.output

    reset = project.run("migrate:rollback", "--step", str(len(project.migration_files())))
    assert reset.exit_code == 0, reset.output
    assert project.tables() & EXAMPLE_TABLES == set()
    if project.backend == "postgresql":
        assert project.query("SELECT typname FROM pg_type WHERE typtype = 'e'") == []
    assert project.run("migrate").exit_code == 0
    assert project.tables() >= EXAMPLE_TABLES

    fresh = project.run("migrate:fresh")  # foreign keys and enums in the way
    assert fresh.exit_code == 0, fresh.output
    assert "Dropped 7 tables" in fresh.stdout  # 4 of the app, 3 of the tool
    check = project.run("migrate:check")
    assert check.exit_code == 0, check.output
