"""make:migration without surprises: probable renames and NOT NULL columns on tables with rows are
never written blind, concurrent runs never overwrite each other, names say what changed."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import sqlalchemy as sa
from conftest import CLI_ENV, USERS_MODEL, Project
from helpers import run_on_terminal

NICKNAME_MODEL = USERS_MODEL.replace("name: Mapped[str]", "nickname: Mapped[str]")
HANDLE_MODEL = USERS_MODEL.replace("name: Mapped[str]", "handle: Mapped[str]")
PEOPLE_MODEL = USERS_MODEL.replace('"users"', '"people"')
EMAIL_LINE = "    email: Mapped[str] = mapped_column(String(200))\n"


def _seed(project: Project, model: str = USERS_MODEL) -> None:
    """A users table holding two rows, fully migrated."""
    project.write_model("users.py", model)
    project.make("create users")
    assert project.run("migrate").exit_code == 0
    column = "nickname" if "nickname" in model else "name"
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql(f"INSERT INTO users (id, {column}) VALUES (1, 'ada'), (2, 'grace')")
    engine.dispose()


# 1. A probable rename without a terminal


def test_a_column_rename_without_a_terminal_writes_nothing_and_spells_out_both_flags(
    sqlite_project: Project,
) -> None:
    project = sqlite_project
    _seed(project, NICKNAME_MODEL)
    project.write_model("users.py", HANDLE_MODEL)

    refused = project.run("make:migration", "rework users")

    assert refused.exit_code == 7, refused.output
    assert len(project.migration_files()) == 1
    assert "error: column users.nickname disappears while users.handle appears" in refused.output
    assert "--rename users.nickname:handle" in refused.output
    assert "--allow-drops" in refused.output
    assert "Traceback" not in refused.output

    dry = project.run("make:migration", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would refuse" in dry.output and "--rename users.nickname:handle" in dry.output
    assert len(project.migration_files()) == 1

    # The hint's flag works at once: no bad file is pending in between.
    renamed = project.run("make:migration", "rework users", "--rename", "users.nickname:handle")
    assert renamed.exit_code == 0, renamed.output
    assert project.run("migrate").exit_code == 0
    assert project.query("SELECT id, handle FROM users ORDER BY id") == [(1, "ada"), (2, "grace")]


def test_allow_drops_writes_the_drop_and_add_deliberately(sqlite_project: Project) -> None:
    project = sqlite_project
    _seed(project, NICKNAME_MODEL)
    project.write_model("users.py", HANDLE_MODEL.replace("String(100))", "String(100), nullable=True)"))

    result = project.run("make:migration", "replace nickname", "--allow-drops")

    assert result.exit_code == 0, result.output
    assert "written as drop + add (--allow-drops)" in result.output
    text = project.migration_files()[-1].read_text()
    assert 'drop_column("nickname")' in text and "add_column" in text


def test_a_table_rename_without_a_terminal_is_refused_too(sqlite_project: Project) -> None:
    """Even on an empty table (no rows to refuse a drop for): the rename is the question."""
    project = sqlite_project
    project.write_model("users.py", USERS_MODEL)
    project.make("create users")
    assert project.run("migrate").exit_code == 0
    project.write_model("users.py", PEOPLE_MODEL)

    refused = project.run("make:migration")

    assert refused.exit_code == 7, refused.output
    assert "error: table users disappears while people appears" in refused.output
    assert "--rename users:people" in refused.output
    assert len(project.migration_files()) == 1


# 2. Concurrent runs


def test_two_runs_in_the_same_second_write_two_files(sqlite_project: Project) -> None:
    """Two real processes started together, until they land in the same second (5 tries)."""
    project = sqlite_project
    _seed(project)
    (project.root / "manage.py").write_text("from manage_migrations.cli import main\n\nmain()\n")
    env = {**os.environ, **CLI_ENV, "DATABASE_URL": project.url}
    command = [sys.executable, "manage.py", "make:migration", "same name", "--empty"]
    for _ in range(5):
        before = set(project.migration_files())
        processes = [
            subprocess.Popen(command, cwd=project.root, env=env, stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outputs = [process.communicate(timeout=60)[0] for process in processes]
        assert [process.returncode for process in processes] == [0, 0], outputs
        created = sorted(set(project.migration_files()) - before)
        assert len(created) == 2, outputs
        reported = sorted(re.search(r"Created migrations/(\S+)", output)[1] for output in outputs)
        assert reported == [path.name for path in created]
        revisions = {re.search(r'^revision: str = "(\w+)"', p.read_text(), re.M)[1] for p in created}
        assert len(revisions) == 2
        assert not [path for path in project.migrations.iterdir() if path.name.startswith(".")]
        stamps = [int(path.name[11:17]) for path in created]
        if stamps[1] - stamps[0] <= 1:
            break
    assert project.run("migrate:history").exit_code == 0


# 3. NOT NULL columns on tables with rows


def test_a_required_column_on_a_table_with_rows_needs_a_one_off_value(any_project: Project) -> None:
    project = any_project
    _seed(project)
    project.write_model("users.py", USERS_MODEL + EMAIL_LINE)

    refused = project.run("make:migration")
    assert refused.exit_code == 7, refused.output
    assert "users.email (2 rows of users)" in refused.output
    assert "nullable" in refused.output and "server_default" in refused.output
    assert """--default users.email="''\"""" in refused.output
    assert len(project.migration_files()) == 1
    assert project.run("make:migration", "--dry-run").exit_code == 0

    path = project.make("--default", "users.email=''")
    assert path.name.endswith("_add_email_to_users.py")
    assert project.run("migrate").exit_code == 0, project.run("migrate").output
    assert project.query("SELECT id, email FROM users ORDER BY id") == [(1, ""), (2, "")]
    engine = project.engine()
    try:
        email = next(c for c in sa.inspect(engine).get_columns("users") if c["name"] == "email")
    finally:
        engine.dispose()
    assert email["nullable"] is False
    assert email["default"] is None  # the one-off value is not kept as a server default
    assert "No changes detected." in project.run("make:migration").output

    rolled_back = project.run("migrate:rollback")
    assert rolled_back.exit_code == 0, rolled_back.output
    assert project.query("SELECT id, name FROM users ORDER BY id") == [(1, "ada"), (2, "grace")]


def test_on_a_terminal_the_one_off_value_is_asked(sqlite_project: Project) -> None:
    project = sqlite_project
    _seed(project)
    project.write_model("users.py", USERS_MODEL + EMAIL_LINE)

    code, output = run_on_terminal(project, b"'unknown'\n", "make:migration", question=b"users.email")

    assert code == 0, output
    assert "Created" in output
    assert project.run("migrate").exit_code == 0
    assert project.query("SELECT DISTINCT email FROM users") == [("unknown",)]


def test_making_a_column_not_null_fills_its_null_rows(sqlite_project: Project) -> None:
    project = sqlite_project
    _seed(project, USERS_MODEL + EMAIL_LINE.replace("[str]", "[str | None]"))
    project.write_model("users.py", USERS_MODEL + EMAIL_LINE)

    refused = project.run("make:migration")
    assert refused.exit_code == 7, refused.output
    assert "users.email (2 rows of users hold NULL)" in refused.output

    project.make("--default", "users.email=name || '@example.org'")
    assert project.run("migrate").exit_code == 0
    assert project.query("SELECT email FROM users ORDER BY id") == [
        ("ada@example.org",),
        ("grace@example.org",),
    ]


def test_an_empty_table_needs_no_value_and_an_unused_default_is_a_typo(sqlite_project: Project) -> None:
    project = sqlite_project
    project.write_model("users.py", USERS_MODEL)
    project.make("create users")
    assert project.run("migrate").exit_code == 0
    project.write_model("users.py", USERS_MODEL + EMAIL_LINE)

    typo = project.run("make:migration", "--default", "users.emial=''")
    assert typo.exit_code == 2 and "--default users.emial=''" in typo.output
    assert project.run("make:migration", "--default", "users.email").exit_code == 2
    assert "add_column" in project.make().read_text()


# 4. Names


PAYMENTS_MODEL = """
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Invoice(Base):
    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20))


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
"""


def test_names_of_multi_table_changes_say_what_changed(sqlite_project: Project) -> None:
    project = sqlite_project
    project.write_model("users.py", USERS_MODEL)
    project.make("create users")
    assert project.run("migrate").exit_code == 0

    project.write_model("billing.py", PAYMENTS_MODEL)
    assert project.make().name.endswith("_create_invoices_and_payments_tables.py")
    assert project.run("migrate").exit_code == 0

    project.write_model("users.py", USERS_MODEL + EMAIL_LINE.replace("[str]", "[str | None]"))
    project.write_model("billing.py", PAYMENTS_MODEL.replace("String(20))", "String(40))"))
    assert project.make().name.endswith("_add_email_to_users_and_more.py")
    assert project.run("migrate").exit_code == 0

    project.write_model("billing.py", PAYMENTS_MODEL.replace("String(20))", "String(40), index=True)"))
    assert project.make().name.endswith("_add_index_to_invoices.py")
    assert not [path for path in project.migration_files() if path.stem.endswith("_auto")]


def test_a_name_without_ascii_letters_is_transliterated_or_derived(sqlite_project: Project) -> None:
    project = sqlite_project
    project.write_model("users.py", USERS_MODEL)

    result = project.run("make:migration", "日本語")

    assert result.exit_code == 0, result.output
    assert project.migration_files()[-1].name.endswith("_create_users_table.py")
    assert project.make("Ünïcode café", "--empty").name.endswith("_unicode_cafe.py")
