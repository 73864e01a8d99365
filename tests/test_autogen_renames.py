"""Probable renames: confirmed ones keep the data, unconfirmed ones warn; on every backend."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time

from conftest import CLI_ENV, REPO_ROOT, USERS_MODEL, Project
from schema_state import assert_matches_models

PEOPLE_MODEL = USERS_MODEL.replace('"users"', '"people"')
FULL_NAME_MODEL = USERS_MODEL.replace("name: Mapped[str]", "full_name: Mapped[str]")


def _seed(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)
    project.make("create users")
    assert project.run("migrate").exit_code == 0
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'grace')")
    engine.dispose()


def test_confirmed_table_rename_keeps_rows(any_project: Project, twin_url: str) -> None:
    project = any_project
    _seed(project)
    project.write_model("users.py", PEOPLE_MODEL)

    result = project.run("make:migration", "rename users", "--rename", "users:people")

    assert result.exit_code == 0, result.output
    assert "~ table users  renamed to people" in result.output
    assert 'op.rename_table("users", "people")' in project.migration_files()[-1].read_text()
    assert project.run("migrate").exit_code == 0
    assert project.query("SELECT id, name FROM people ORDER BY id") == [(1, "ada"), (2, "grace")]
    assert_matches_models(project, twin_url)
    assert "No changes detected." in project.run("make:migration", "again").output

    assert project.run("migrate:rollback").exit_code == 0
    assert project.query("SELECT id, name FROM users ORDER BY id") == [(1, "ada"), (2, "grace")]
    project.write_model("users.py", USERS_MODEL)
    assert_matches_models(project, twin_url)


def test_confirmed_column_rename_keeps_rows(any_project: Project, twin_url: str) -> None:
    project = any_project
    _seed(project)
    project.write_model("users.py", FULL_NAME_MODEL)

    result = project.run("make:migration", "rename name", "--rename", "users.name:full_name")

    assert result.exit_code == 0, result.output
    assert "~ column users.name  renamed to full_name" in result.output
    assert project.run("migrate").exit_code == 0
    assert project.query("SELECT id, full_name FROM users ORDER BY id") == [(1, "ada"), (2, "grace")]
    assert_matches_models(project, twin_url)

    assert project.run("migrate:rollback").exit_code == 0
    assert project.query("SELECT id, name FROM users ORDER BY id") == [(1, "ada"), (2, "grace")]
    project.write_model("users.py", USERS_MODEL)
    assert_matches_models(project, twin_url)


def test_without_a_terminal_a_probable_rename_writes_nothing(sqlite_project: Project) -> None:
    _seed(sqlite_project)
    sqlite_project.write_model("users.py", FULL_NAME_MODEL)

    result = sqlite_project.run("make:migration", "rework users")

    assert result.exit_code == 7, result.output
    assert "- column users.name  (destructive)" in result.output
    assert "+ column users.full_name" in result.output
    assert "error: column users.name disappears while users.full_name appears" in result.output
    assert "--rename users.name:full_name" in result.output
    assert len(sqlite_project.migration_files()) == 1


def test_a_rename_that_matches_nothing_is_a_usage_error(sqlite_project: Project) -> None:
    _seed(sqlite_project)
    sqlite_project.write_model("users.py", FULL_NAME_MODEL)

    result = sqlite_project.run("make:migration", "rework", "--rename", "users.nick:full_name")

    assert result.exit_code == 2
    assert "--rename users.nick:full_name matches no table or column" in result.output
    assert len(sqlite_project.migration_files()) == 1
    assert sqlite_project.run("make:migration", "rework", "--rename", "nonsense").exit_code == 2


def _run_on_terminal(project: Project, answer: bytes, *args: str) -> str:
    """Run the real manage.py with a pseudo-terminal as stdin/stdout and answer its prompt."""
    primary, secondary = pty.openpty()
    env = {**os.environ, **CLI_ENV, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "manage_migrations", "--database-url", project.url, "make:migration", *args],
        cwd=project.root,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
    )
    os.close(secondary)
    output = b""
    deadline = time.monotonic() + 60
    answered = filled = False
    while time.monotonic() < deadline:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        if not answered and b"renamed to" in output and b"[y/n]" in output:
            os.write(primary, answer)
            answered = True
        if not filled and b"need a value" in output:
            os.write(primary, b"'anon'\n")  # declined: the new NOT NULL column needs one for its rows
            filled = True
    process.wait(timeout=60)
    os.close(primary)
    return output.decode(errors="replace")


def test_on_a_terminal_the_rename_is_asked_and_defaults_to_no(sqlite_project: Project) -> None:
    _seed(sqlite_project)
    sqlite_project.write_model("users.py", FULL_NAME_MODEL)

    declined = _run_on_terminal(sqlite_project, b"\n", "declined")
    assert "Was column users.name renamed to users.full_name?" in declined
    assert "Created" in declined, declined
    assert 'drop_column("name")' in sqlite_project.migration_files()[-1].read_text()
    sqlite_project.migration_files()[-1].unlink()

    confirmed = _run_on_terminal(sqlite_project, b"y\n", "confirmed")
    assert "Created" in confirmed, confirmed
    text = sqlite_project.migration_files()[-1].read_text()
    assert 'new_column_name="full_name"' in text
    assert "drop_column" not in text
