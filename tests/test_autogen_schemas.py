"""Schemas in make:migration: models in a non-default PostgreSQL schema are compared and their
schema created, other backends refuse them clearly; tables owned by an extension or excluded by
settings are never proposed for dropping; files come out the same every run."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import CLI_ENV, USERS_MODEL, Project

INVOICE_MODEL = """
from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = {"schema": "billing"}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = {"schema": "billing"}

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("billing.customers.id"), index=True)
    state: Mapped[str] = mapped_column(Enum("open", "paid", name="invoice_state"))
"""


def _schemas(project: Project) -> set[str]:
    return {row[0] for row in project.query("SELECT nspname FROM pg_namespace")}


@pytest.mark.parametrize("backend", ["postgresql"])
def test_models_in_another_schema_are_migrated_once(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)
    project.write_model("billing.py", INVOICE_MODEL)

    result = project.run("make:migration")

    assert result.exit_code == 0, result.output
    assert "+ schema billing" in result.output
    assert "+ table billing.invoices" in result.output
    assert "_create_customers_users_and_invoices_tables.py" in result.output
    assert project.run("migrate").exit_code == 0
    assert "billing" in _schemas(project)
    again = project.run("make:migration", "again")
    assert again.exit_code == 0, again.output
    assert "No changes detected." in again.output
    assert len(project.migration_files()) == 1
    check = project.run("migrate:check")
    assert check.exit_code == 0, check.output

    rollback = project.run("migrate:rollback")
    assert rollback.exit_code == 0, rollback.output
    assert "billing" not in _schemas(project)
    assert project.tables() <= {"alembic_version", "manage_migrations", "manage_state"}
    assert project.run("migrate").exit_code == 0
    assert project.query("SELECT count(*) FROM billing.invoices") == [(0,)]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_schema_that_exists_is_not_created_or_dropped(project: Project) -> None:
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE SCHEMA billing")
        connection.exec_driver_sql("CREATE TABLE billing.legacy (id int)")
    engine.dispose()
    project.write_model("billing.py", INVOICE_MODEL)

    path = project.make("billing")

    assert "CREATE SCHEMA" not in path.read_text()
    assert project.run("migrate").exit_code == 0
    assert "No changes detected." in project.run("make:migration", "again").output
    assert project.run("migrate:rollback").exit_code == 0
    assert "billing" in _schemas(project)
    assert project.query("SELECT count(*) FROM billing.legacy") == [(0,)]


@pytest.mark.parametrize("backend", ["sqlite", "mariadb"])
def test_schema_qualified_models_are_refused_where_schemas_are_databases(project: Project) -> None:
    project.write_model("billing.py", INVOICE_MODEL)

    result = project.run("make:migration")

    assert result.exit_code == 3, result.output
    assert "model table billing.customers names schema 'billing'" in result.output
    assert "PostgreSQL only" in result.output
    assert "hint: remove the schema from its __table_args__" in result.output
    assert "Traceback" not in result.output
    assert project.migration_files() == []


POSTS_MODELS = [
    f"""
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class T{index}(Base):
    __tablename__ = "t{index}"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(20), unique=True)
    {"parent_id: Mapped[int] = mapped_column(ForeignKey('t0.id'))" if index else ""}
"""
    for index in range(6)
]


def _run_manage(project: Project, seed: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real manage.py, with a hash seed of its own: sets iterate differently in each."""
    (project.root / "manage.py").write_text("from manage_migrations.cli import main\n\nmain()\n")
    env = {**os.environ, **CLI_ENV, "DATABASE_URL": project.url, "PYTHONHASHSEED": seed}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=project.root, env=env, capture_output=True, text=True
    )


def _without_identity(text: str) -> str:
    text = re.sub(r"(Revision ID: |revision: str = )[\"']?\w+[\"']?", r"\1<id>", text)
    return re.sub(r"Create Date: .*", "Create Date: <date>", text)


def test_generated_files_are_the_same_every_run(any_project: Project) -> None:
    project = any_project
    for index, source in enumerate(POSTS_MODELS):
        project.write_model(f"t{index}.py", source)
    project.make("create tables")
    assert project.run("migrate").exit_code == 0
    for index in range(6):
        project.remove_model(f"t{index}.py")
    project.write_model("users.py", USERS_MODEL)

    texts = []
    for seed in ("1", "2", "3", "4"):
        result = _run_manage(project, seed, "make:migration", "drop tables", "--allow-drops")
        assert result.returncode == 0, result.stdout + result.stderr
        (created,) = set(project.migration_files()[1:])
        texts.append(_without_identity(created.read_text()))
        created.unlink()

    assert all(text == texts[0] for text in texts), texts
    drops = re.findall(r"op.drop_table\([\"'](\w+)[\"']\)", texts[0].split("def downgrade")[0])
    assert drops == ["t5", "t4", "t3", "t2", "t1", "t0"]
    path = project.make("drop tables", "--allow-drops")
    assert project.run("migrate").exit_code == 0, path.read_text()
    assert project.run("migrate:rollback").exit_code == 0
    assert {"t0", "t1", "t5"} <= project.tables()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_tables_of_an_extension_are_never_dropped(project: Project) -> None:
    """PostGIS's spatial_ref_sys, here as a member table added to hstore (installable here)."""
    project.write_model("users.py", USERS_MODEL)
    project.make("create users")
    assert project.run("migrate").exit_code == 0
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE EXTENSION hstore")
        connection.exec_driver_sql("CREATE TABLE spatial_ref_sys (srid int PRIMARY KEY, auth_name text)")
        connection.exec_driver_sql("INSERT INTO spatial_ref_sys VALUES (4326, 'EPSG')")
        connection.exec_driver_sql("ALTER EXTENSION hstore ADD TABLE spatial_ref_sys")
    engine.dispose()

    result = project.run("make:migration", "again")

    assert result.exit_code == 0, result.output
    assert "No changes detected." in result.output
    assert project.run("migrate:check").exit_code == 0


PYPROJECT = """
[tool.manage]
exclude_schemas = ["billing"]
"""


@pytest.mark.parametrize("backend", ["postgresql"])
def test_exclude_schemas_keeps_tables_the_models_do_not_define(project: Project) -> None:
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE SCHEMA billing")
        connection.exec_driver_sql("CREATE TABLE billing.legacy (id int)")
        connection.exec_driver_sql("INSERT INTO billing.legacy VALUES (1)")
    engine.dispose()
    project.write_model("billing.py", INVOICE_MODEL)

    refused = project.run("make:migration", "billing")

    assert refused.exit_code == 7, refused.output
    assert "refusing to drop 1 table holding 1 row (rows per table: billing.legacy (1))" in refused.output
    assert "exclude_tables (or their schema in exclude_schemas) in [tool.manage]" in refused.output
    assert project.migration_files() == []

    (project.root / "pyproject.toml").write_text(PYPROJECT)
    path = project.make("billing")
    assert "legacy" not in path.read_text()
    assert project.run("migrate").exit_code == 0
    assert "No changes detected." in project.run("make:migration", "again").output
    assert project.query("SELECT id FROM billing.legacy") == [(1,)]


MOOD_MODEL = """
from sqlalchemy import Enum
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Diary(Base):
    __tablename__ = "diaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    mood: Mapped[str] = mapped_column(Enum({values}, name="mood"))
"""


def _labels(project: Project) -> list[str]:
    rows = project.query("SELECT unnest(enum_range(NULL::mood))::text")
    return [label for (label,) in rows]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_failed_migration_that_added_an_enum_value_is_recorded(project: Project) -> None:
    """ALTER TYPE ... ADD VALUE commits on its own: when a later statement of the same migration
    fails, the value stays, and the migration is recorded as failed, not silently half applied."""
    project.write_model("diary.py", MOOD_MODEL.format(values="'happy', 'sad'"))
    project.make("create diaries")
    assert project.run("migrate").exit_code == 0
    project.write_model("diary.py", MOOD_MODEL.format(values="'happy', 'sad', 'bored'"))
    path = project.make("add bored")
    source = path.read_text()
    assert "autocommit_block" in source and "ADD VALUE IF NOT EXISTS" in source, source
    failing = "    op.execute('SELECT * FROM no_such_table')\n"
    path.write_text(source.replace("\n\ndef downgrade", failing + "\n\ndef downgrade", 1))

    failed = project.run("migrate")

    assert failed.exit_code == 1, failed.output
    assert "add_bored failed: UndefinedTable" in failed.stderr
    assert "may have taken effect" in failed.stderr
    assert "ALTER TYPE \"mood\" ADD VALUE IF NOT EXISTS 'bored'" in failed.stderr
    assert _labels(project) == ["happy", "sad", "bored"]
    status = project.run("migrate:status")
    assert re.search(r"_add_bored +Failed *$", status.stdout, re.M), status.stdout
    refused = project.run("migrate")
    assert refused.exit_code == 6, refused.output
    assert "migrate:resolve" in refused.stderr
    # The value is in the database but its migration did not run: no comparison may treat the
    # database as migrated (it would write a second migration without the value, or drop it).
    blocked = project.run("make:migration", "anything")
    assert blocked.exit_code == 1, blocked.output
    assert "1 migration is pending" in blocked.stderr
    assert len(project.migration_files()) == 2

    path.write_text(path.read_text().replace(failing, ""))
    revision = re.search(r'revision: str = "(\w+)"', path.read_text()).group(1)
    assert project.run("migrate:resolve", revision).exit_code == 0
    assert project.run("migrate").exit_code == 0
    again = project.run("make:migration", "again")
    assert "No changes detected." in again.output, again.output
    assert _labels(project) == ["happy", "sad", "bored"]
