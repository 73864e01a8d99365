"""migrate:fresh drops only what the project owns: its schema(s) on PostgreSQL, its database on
MariaDB, virtual tables properly on SQLite; refuses to reach past them without --cascade, and
keeps the production mark."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import PG_ADMIN_URL, Project, _admin_engine, fresh_database, make_project
from helpers import create_table_revision, write_revision

ENUM_REVISION = """
mood = sa.Enum("ok", "sad", name="mood")
# A TEXT column gives the table TOAST storage in pg_toast: part of the table, not a dependent.
op.create_table(
    "alpha", sa.Column("id", sa.Integer, primary_key=True), sa.Column("m", mood), sa.Column("body", sa.Text)
)
"""
INVOICES_REVISION = """
op.create_table("invoices", sa.Column("id", sa.Integer, primary_key=True), schema="billing")
"""
INVOICES_MODEL = """
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = {"schema": "billing"}

    id: Mapped[int] = mapped_column(primary_key=True)
"""


def _execute(project: Project, *statements: str) -> None:
    engine = project.engine()
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _environment(project: Project) -> list[tuple]:
    return project.query("SELECT value FROM manage_state WHERE name = 'environment'")


@pytest.fixture
def pg_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    for url in fresh_database("postgresql", tmp_path):
        yield make_project(tmp_path, url, monkeypatch)


@pytest.fixture
def role_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """PostgreSQL's recommended layout: the app's role owns the database and a schema named after
    it, with the default search_path "$user", public."""
    role = f"mt_role_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine(PG_ADMIN_URL, "postgresql")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
    try:
        for url in fresh_database("postgresql", tmp_path):
            database = sa.make_url(url).database
            with admin.connect() as connection:
                connection.exec_driver_sql(f"ALTER DATABASE {database} OWNER TO {role}")
            with sa.create_engine(url).begin() as connection:
                connection.exec_driver_sql(f"CREATE SCHEMA AUTHORIZATION {role}")
            yield make_project(
                tmp_path, sa.make_url(url).set(username=role).render_as_string(False), monkeypatch
            )
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        admin.dispose()


def test_fresh_in_the_role_schema_leaves_public_alone(role_project: Project) -> None:
    project = role_project
    create_table_revision(project.migrations, 1, "alpha", None)
    assert project.run("migrate").exit_code == 0
    _execute(
        project,
        "CREATE TYPE public.mood AS ENUM ('ok')",
        "CREATE TABLE public.people (id INTEGER PRIMARY KEY, m public.mood)",
        "INSERT INTO public.people VALUES (1, 'ok')",
        "CREATE VIEW public.people_view AS SELECT id FROM public.people",
    )
    role = sa.make_url(project.url).username
    assert project.query("SELECT current_schema()") == [(role,)]

    result = project.run("migrate:fresh")

    assert result.exit_code == 0, result.output
    assert "Dropped 4 tables." in result.stdout  # alpha and the three tool tables, nothing else
    assert project.query("SELECT id, m::text FROM public.people") == [(1, "ok")]
    assert project.query("SELECT count(*) FROM public.people_view") == [(1,)]
    assert project.query(
        f"SELECT tablename FROM pg_tables WHERE schemaname = '{role}' AND tablename = 'alpha'"
    )


def test_fresh_empties_the_schemas_the_models_name(pg_project: Project) -> None:
    project = pg_project
    project.write_model("invoices.py", INVOICES_MODEL)
    write_revision(
        project.migrations,
        "2026_01_01_000001",
        "create_invoices_table",
        "rev0001",
        None,
        upgrade=INVOICES_REVISION,
    )
    _execute(project, "CREATE SCHEMA billing", "CREATE SCHEMA other")
    assert project.run("migrate").exit_code == 0
    _execute(
        project,
        "INSERT INTO billing.invoices VALUES (1)",
        'CREATE TABLE billing."odd%%name" (id INTEGER)',
        "CREATE TABLE other.kept (id INTEGER)",
        "INSERT INTO other.kept VALUES (7)",
    )

    result = project.run("migrate:fresh")

    assert result.exit_code == 0, result.output
    assert "Dropped 5 tables." in result.stdout  # billing.invoices, billing."odd%name", the tool tables
    assert project.query("SELECT count(*) FROM billing.invoices") == [(0,)]
    assert project.query("SELECT tablename FROM pg_tables WHERE schemaname = 'billing'") == [("invoices",)]
    assert project.query("SELECT id FROM other.kept") == [(7,)]


def test_fresh_stops_at_a_model_module_that_fails_to_import(pg_project: Project) -> None:
    project = pg_project
    create_table_revision(project.migrations, 1, "alpha", None)
    assert project.run("migrate").exit_code == 0
    project.write_model("broken.py", "raise RuntimeError('half edited')\n")

    result = project.run("migrate:fresh")

    assert result.exit_code == 3, result.output
    assert "broken.py" in result.stderr
    assert "alpha" in project.tables()


def _pg_outside_dependents(project: Project) -> None:
    write_revision(
        project.migrations, "2026_01_01_000001", "create_alpha_table", "rev0001", None, ENUM_REVISION
    )
    assert project.run("migrate").exit_code == 0
    _execute(
        project,
        "INSERT INTO alpha VALUES (1, 'ok', 'text')",
        "CREATE SCHEMA other",
        "CREATE VIEW other.alpha_view AS SELECT id FROM public.alpha",
        "CREATE TABLE other.notes (id INTEGER, m public.mood)",
        "INSERT INTO other.notes VALUES (1, 'sad')",
        "CREATE TABLE other.orders (id INT, alpha_id INT CONSTRAINT fk_orders_alpha REFERENCES alpha)",
        "INSERT INTO other.orders VALUES (5, 1)",
    )


def test_fresh_refuses_to_drop_what_other_schemas_depend_on(pg_project: Project) -> None:
    project = pg_project
    _pg_outside_dependents(project)

    result = project.run("migrate:fresh")

    assert result.exit_code == 7, result.output
    error = result.stderr
    assert "3 objects outside public depend on what migrate:fresh would drop" in error
    assert "table constraint fk_orders_alpha on other.orders" in error
    assert "table column other.notes.m" in error
    assert "view other.alpha_view" in error
    assert "--cascade" in error and "Traceback" not in result.output
    assert project.query("SELECT id, m::text FROM alpha") == [(1, "ok")]
    assert project.query("SELECT m::text FROM other.notes") == [("sad",)]
    assert project.query("SELECT count(*) FROM other.alpha_view") == [(1,)]


def test_fresh_cascade_in_production_still_needs_consent(
    pg_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = pg_project
    _pg_outside_dependents(project)
    monkeypatch.setenv("APP_ENV", "production")

    refused = project.run("migrate:fresh", "--cascade")

    assert refused.exit_code == 7, refused.output
    assert "without confirmation" in refused.stderr
    assert project.query("SELECT count(*) FROM other.alpha_view") == [(1,)]

    result = project.run("migrate:fresh", "--cascade", "--force")

    assert result.exit_code == 0, result.output
    assert "Dropped 4 tables, 1 enum type." in result.stdout
    assert (
        "--cascade also dropped outside public: table constraint fk_orders_alpha on other.orders, "
        "view other.alpha_view, table column other.notes.m" in result.stderr
    )
    assert project.query("SELECT count(*) FROM alpha") == [(0,)]
    assert project.query("SELECT * FROM other.notes") == [(1,)]
    assert project.query("SELECT * FROM other.orders") == [(5, 1)]
    assert project.query("SELECT viewname FROM pg_views WHERE schemaname = 'other'") == []


@pytest.fixture
def mariadb_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Project, str]]:
    """A project on a fresh MariaDB database, and the name of a second database beside it."""
    first = fresh_database("mariadb", tmp_path / "one")
    second = fresh_database("mariadb", tmp_path / "two")
    try:
        project = make_project(tmp_path, next(first), monkeypatch)
        yield project, sa.make_url(next(second)).database
    finally:
        second.close()
        first.close()


def test_fresh_on_mariadb_refuses_foreign_keys_from_another_database(
    mariadb_pair: tuple[Project, str],
) -> None:
    project, other = mariadb_pair
    own = sa.make_url(project.url).database
    create_table_revision(project.migrations, 1, "alpha", None)
    assert project.run("migrate").exit_code == 0
    _execute(
        project,
        "INSERT INTO alpha VALUES (1, 'a')",
        f"CREATE TABLE {other}.orders (id INTEGER, alpha_id INTEGER, "
        f"CONSTRAINT fk_orders_alpha FOREIGN KEY (alpha_id) REFERENCES {own}.alpha (id))",
        f"INSERT INTO {other}.orders VALUES (5, 1)",
        "CREATE TABLE `odd%%name` (id INTEGER)",
    )

    refused = project.run("migrate:fresh")

    assert refused.exit_code == 7, refused.output
    assert (
        f"1 object outside {own} depends on what migrate:fresh would drop: foreign key fk_orders_alpha "
        f"on {other}.orders (references {own}.alpha)" in refused.stderr
    )
    assert project.query("SELECT id FROM alpha") == [(1,)]

    result = project.run("migrate:fresh", "--cascade")

    assert result.exit_code == 0, result.output
    assert "Dropped 5 tables." in result.stdout
    assert (
        f"--cascade also dropped outside {own}: foreign key fk_orders_alpha on {other}.orders"
        in result.stderr
    )
    assert project.query("SELECT count(*) FROM alpha") == [(0,)]
    assert project.query(f"SELECT * FROM {other}.orders") == [(5, 1)]
    assert "odd%name" not in project.tables()
    foreign_keys = project.query(
        "SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
        f"WHERE CONSTRAINT_SCHEMA = '{other}'"
    )
    assert foreign_keys == []


def test_fresh_drops_sqlite_virtual_tables_with_their_shadow_tables(sqlite_project: Project) -> None:
    project = sqlite_project
    create_table_revision(project.migrations, 1, "alpha", None)
    assert project.run("migrate").exit_code == 0
    _execute(
        project,
        "CREATE VIRTUAL TABLE docs USING fts5(body)",
        "INSERT INTO docs VALUES ('hello world')",
        "CREATE VIEW docs_view AS SELECT body FROM docs",
    )

    result = project.run("migrate:fresh")

    assert result.exit_code == 0, result.output
    assert "Dropped 4 tables, 1 view, 1 virtual table." in result.stdout
    assert project.tables() == {"alpha", "alembic_version", "manage_migrations", "manage_state"}


def test_fresh_names_a_virtual_table_it_cannot_drop(sqlite_project: Project) -> None:
    project = sqlite_project
    create_table_revision(project.migrations, 1, "alpha", None)
    assert project.run("migrate").exit_code == 0
    # A virtual table whose module this SQLite lacks (e.g. one from a loadable extension).
    _execute(
        project,
        "PRAGMA writable_schema = ON",
        "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) "
        "VALUES ('table', 'places', 'places', 0, 'CREATE VIRTUAL TABLE places USING nosuchmodule')",
    )

    result = project.run("migrate:fresh")

    assert result.exit_code == 1, result.output
    assert "cannot drop the virtual table places: no such module: nosuchmodule" in result.stderr
    assert "nothing was dropped" in result.stderr
    assert "alpha" in project.tables()


def _mark_production(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    assert project.run("migrate").exit_code == 0
    monkeypatch.setenv("APP_ENV", "local")
    assert _environment(project) == [("production",)]


def test_fresh_keeps_the_production_mark(any_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    project = any_project
    create_table_revision(project.migrations, 1, "alpha", None)
    _mark_production(project, monkeypatch)

    result = project.run("migrate:fresh", "--force")

    assert result.exit_code == 0, result.output
    assert _environment(project) == [("production",)]
    assert project.run("migrate:fresh").exit_code == 7  # still guarded from a laptop


def test_fresh_keeps_the_production_mark_through_a_dump_and_a_failure(
    sqlite_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = sqlite_project
    first = create_table_revision(project.migrations, 1, "alpha", None)
    _mark_production(project, monkeypatch)
    assert project.run("migrate:dump").exit_code == 0
    write_revision(
        project.migrations, "2026_01_01_000002", "broken", "rev0002", first, "op.execute('nonsense')"
    )

    result = project.run("migrate:fresh", "--force")

    assert result.exit_code == 1, result.output
    assert "Loaded schema dump" in result.stdout  # the emptied database still takes the dump
    assert _environment(project) == [("production",)]


def test_fresh_on_mariadb_owns_the_databases_the_models_name(mariadb_pair: tuple[Project, str]) -> None:
    project, other = mariadb_pair
    project.write_model("invoices.py", INVOICES_MODEL.replace('"billing"', repr(other)))
    write_revision(
        project.migrations,
        "2026_01_01_000001",
        "create_invoices_table",
        "rev0001",
        None,
        upgrade=INVOICES_REVISION.replace('"billing"', repr(other)),
    )
    assert project.run("migrate").exit_code == 0
    _execute(
        project,
        f"INSERT INTO {other}.invoices VALUES (1)",
        f"CREATE TABLE {other}.stray (id INTEGER, invoice_id INTEGER, "
        f"FOREIGN KEY (invoice_id) REFERENCES {other}.invoices (id))",
    )

    result = project.run("migrate:fresh")

    assert result.exit_code == 0, result.output
    assert "Dropped 5 tables." in result.stdout  # invoices and stray of the models' database, the tool tables
    assert project.query(
        f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{other}'"
    ) == [("invoices",)]
    assert project.query(f"SELECT count(*) FROM {other}.invoices") == [(0,)]
