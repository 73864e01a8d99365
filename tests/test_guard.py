"""The production guard: a terminal prompt (default no), a refusal without a TTY, --force, the
environment recorded in the database, and prohibit_destructive."""

from __future__ import annotations

import pytest
from conftest import Project
from helpers import create_table_revision, run_on_terminal, write_revision

DESTRUCTIVE = [
    ("migrate:fresh",),
    ("migrate:reset",),
    ("migrate:refresh",),
    ("migrate:rollback",),
]


def _migrated(project: Project) -> list[str]:
    first = create_table_revision(project.migrations, 1, "alpha", None)
    second = create_table_revision(project.migrations, 2, "beta", first)
    assert project.run("migrate").exit_code == 0
    return [first, second]


def _recorded_environment(project: Project) -> str | None:
    rows = project.query("SELECT value FROM manage_state WHERE name = 'environment'")
    return rows[0][0] if rows else None


def test_production_refuses_destructive_commands_without_a_tty(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    revisions = _migrated(project)
    assert _recorded_environment(project) == "production"

    for args in DESTRUCTIVE:
        refused = project.run(*args)
        assert refused.exit_code == 7, (args, refused.output)
        assert "without confirmation" in refused.stderr
        assert "--force" in refused.stderr
        assert project.version() == {revisions[-1]}
        assert {"alpha", "beta"} <= project.tables()

    forced = project.run("migrate:reset", "--force")
    assert forced.exit_code == 0, forced.output
    assert project.version() == set()


def test_migrate_asks_only_when_a_pending_migration_drops(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    revisions = _migrated(project)
    write_revision(
        project.migrations,
        "2026_01_01_000003",
        "drop_beta",
        "rev0003",
        revisions[-1],
        upgrade='op.drop_table("beta")',
    )

    refused = project.run("migrate")
    assert refused.exit_code == 7
    assert "2026_01_01_000003_drop_beta" in refused.stderr
    assert "beta" in project.tables()

    assert project.run("migrate", "--pretend").exit_code == 0
    assert project.run("migrate", "--force").exit_code == 0
    assert "beta" not in project.tables()


def test_a_database_recorded_as_production_is_guarded_from_local(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    revisions = _migrated(project)
    monkeypatch.setenv("APP_ENV", "local")
    create_table_revision(project.migrations, 3, "gamma", revisions[-1])
    assert project.run("migrate").exit_code == 0
    assert _recorded_environment(project) == "production"  # a local run does not unmark it

    refused = project.run("migrate:rollback")
    assert refused.exit_code == 7
    assert "last migrated in production" in refused.stderr
    assert "gamma" in project.tables()
    assert project.run("migrate:rollback", "--force").exit_code == 0
    assert "gamma" not in project.tables()


def test_local_databases_need_no_confirmation(project: Project) -> None:
    _migrated(project)
    assert _recorded_environment(project) == "local"
    assert project.run("migrate:rollback").exit_code == 0


def test_prohibit_destructive_wins_over_force(sqlite_project: Project) -> None:
    revisions = _migrated(sqlite_project)
    (sqlite_project.root / "pyproject.toml").write_text("[tool.manage]\nprohibit_destructive = true\n")
    for args in DESTRUCTIVE:
        result = sqlite_project.run(*args, "--force")
        assert result.exit_code == 7, (args, result.output)
        assert "prohibited" in result.stderr
    assert sqlite_project.version() == {revisions[-1]}


def _run_on_terminal(project: Project, answer: bytes, *args: str) -> tuple[int, str]:
    return run_on_terminal(project, answer, *args, question=b"are you sure?", env={"APP_ENV": "production"})


def test_terminal_prompt_defaults_to_no_and_accepts_yes(project: Project) -> None:
    revisions = _migrated(project)

    code, output = _run_on_terminal(project, b"\n", "migrate:fresh")
    assert code == 7, output
    assert project.version() == {revisions[-1]}
    assert "Dropped" not in output

    code, output = _run_on_terminal(project, b"y\n", "migrate:rollback", "--step", "1")
    assert code == 0, output
    assert "1 migration rolled back" in output
    assert project.version() == {revisions[0]}
