"""Tenants beyond PostgreSQL schemas, through the real CLI: MariaDB databases as schemas, a
database per tenant (SQLite files, PostgreSQL databases), tenants from a query, and what a bad
[tool.manage.tenants] section or option answers. Every database or schema a test creates is
dropped at its end, also when it fails."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import MARIADB_ADMIN_URL, PG_ADMIN_URL, USERS_MODEL, Project, fresh_database, make_project
from helpers import create_table_revision

TENANT_MODELS = """
from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class TenantBase(DeclarativeBase):
    metadata = MetaData(naming_convention={"pk": "pk_%(table_name)s"})


class Invoice(TenantBase):
    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20))
"""
TOOL_TABLES = {"alembic_version", "manage_migrations"}
ADMIN_URLS = {"postgresql": PG_ADMIN_URL, "mariadb": MARIADB_ADMIN_URL}


def configure(project: Project, tenants_section: str | None) -> None:
    """pyproject.toml with the default models and the given [tool.manage.tenants] body; the
    tenant models in tenant_models/."""
    text = '[tool.manage]\nmodels = ["models"]\n'
    if tenants_section is not None:
        text += "\n[tool.manage.tenants]\n" + tenants_section.strip() + "\n"
    (project.root / "pyproject.toml").write_text(text, encoding="utf-8")
    package = project.root / "tenant_models"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text(TENANT_MODELS.lstrip(), encoding="utf-8")


def toml_list(names: list[str]) -> str:
    return "[" + ", ".join(f'"{name}"' for name in names) + "]"


def unique(prefix: str = "mtt") -> str:
    """A database or schema name no other test (or earlier run) uses."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def server_url(backend: str, database: str) -> str:
    return sa.make_url(ADMIN_URLS[backend]).set(database=database).render_as_string(hide_password=False)


def inspect_tables(url: str, schema: str | None = None) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names(schema=schema))
    finally:
        engine.dispose()


def versions(url: str, schema: str | None = None) -> list[str]:
    engine = sa.create_engine(url)
    table = f"{schema}.alembic_version" if schema else "alembic_version"
    try:
        with engine.connect() as connection:
            return [row[0] for row in connection.exec_driver_sql(f"SELECT version_num FROM {table}")]
    finally:
        engine.dispose()


def tenant_migrations(project: Project) -> list[Path]:
    return sorted((project.root / "migrations" / "tenants").glob("*.py"))


def make_tenant_migration(project: Project, message: str = "create invoices") -> Path:
    result = project.run("make:migration", "--tenants", message)
    assert result.exit_code == 0, result.output
    (created,) = tenant_migrations(project)
    return created


def status_json(project: Project, *args: str) -> tuple[int, dict]:
    result = project.run("tenants:status", "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def no_traceback(result) -> None:
    assert "Traceback" not in result.output, result.output
    assert "unexpected" not in result.output, result.output


@pytest.fixture
def server_databases() -> Iterator[list[tuple[str, str]]]:
    """(backend, name) of tenant databases a test is about to create: dropped at the end."""
    made: list[tuple[str, str]] = []
    yield made
    for backend, name in made:
        admin = sa.create_engine(ADMIN_URLS[backend], isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                force = " WITH (FORCE)" if backend == "postgresql" else ""
                quoted = f'"{name}"' if backend == "postgresql" else f"`{name}`"
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}{force}")
        finally:
            admin.dispose()


@pytest.fixture
def mariadb_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    for url in fresh_database("mariadb", tmp_path):
        yield make_project(tmp_path, url, monkeypatch)


@pytest.fixture
def postgres_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    for url in fresh_database("postgresql", tmp_path):
        yield make_project(tmp_path, url, monkeypatch)


# 1. MariaDB "schema" mode: a database per tenant on the default database's server.


def test_mariadb_schema_mode_makes_migrates_reports_and_rolls_back_each_tenant_database(
    mariadb_project: Project, server_databases: list[tuple[str, str]]
) -> None:
    project = mariadb_project
    prefix = unique()
    acme, globex, missing = f"{prefix}_acme", f"{prefix}_globex", f"{prefix}_missing"
    server_databases.extend(("mariadb", name) for name in (acme, globex, missing))
    names = toml_list([acme, globex, missing])
    configure(project, f'mode = "schema"\nmodels = ["tenant_models"]\ntenants = {names}')
    project.write_model("users.py", USERS_MODEL)  # the default database has a migrated table of its own
    project.make("create users")
    assert project.run("migrate").exit_code == 0
    default_tables = project.tables()
    assert "users" in default_tables

    for name in (acme, globex):
        created = project.run("tenants:create", name)
        assert created.exit_code == 0, created.output
        assert f"Created tenant {name}" in created.output
    again = project.run("tenants:create", acme)
    assert again.exit_code == 0, again.output
    assert f"Found existing tenant {acme}" in again.output
    migration = make_tenant_migration(project)
    assert "users" not in migration.read_text()

    # The third tenant was never created: it fails alone, and no database appears for it.
    migrated = project.run("tenants:migrate")
    assert migrated.exit_code == 1, migrated.output
    assert "3 tenants: 2 migrated, 0 up to date, 1 failed" in migrated.stdout
    assert f"{missing}: the schema {missing} does not exist" in migrated.stderr
    assert f"tenants:create {missing}" in migrated.stderr
    no_traceback(migrated)

    code, report = status_json(project, "--tenant", acme, "--tenant", globex)
    assert code == 0, report
    assert [entry["tenant"] for entry in report["tenants"]] == [acme, globex]
    for entry in report["tenants"]:
        assert entry["at"] == [migration.stem]
        assert (entry["applied"], entry["pending"], entry["failed"], entry["problem"]) == (1, 0, [], None)
        assert entry["where"].endswith(f"(schema {entry['tenant']})")

    for name in (acme, globex):
        tables = inspect_tables(server_url("mariadb", name))
        assert {"invoices", *TOOL_TABLES} <= tables and "users" not in tables
        assert len(versions(server_url("mariadb", name))) == 1
    assert project.tables() == default_tables  # the default database got nothing
    assert len(project.version()) == 1 and [row[1] for row in project.ledger()] == [
        project.migration_files()[0].stem
    ]
    again = project.run("make:migration", "--tenants", "nothing new")
    assert again.exit_code == 0, again.output
    assert "No changes detected." in again.stdout and len(tenant_migrations(project)) == 1
    engine = sa.create_engine(MARIADB_ADMIN_URL)
    try:
        schemas = set(sa.inspect(engine).get_schema_names())
    finally:
        engine.dispose()
    assert {acme, globex} <= schemas and missing not in schemas

    rolled = project.run("tenants:rollback", "--tenant", acme, "--tenant", globex)
    assert rolled.exit_code == 0, rolled.output
    assert "2 tenants: 2 rolled back, 0 nothing to roll back" in rolled.stdout
    for name in (acme, globex):
        assert "invoices" not in inspect_tables(server_url("mariadb", name))
        assert versions(server_url("mariadb", name)) == []
    assert project.tables() == default_tables and len(project.version()) == 1


# 2. Database mode on SQLite: a file per tenant.


def test_sqlite_database_mode_one_file_per_tenant_and_a_missing_file_is_not_created(
    sqlite_project: Project,
) -> None:
    project = sqlite_project
    configure(
        project,
        'mode = "database"\nurl = "sqlite:///tenants/{tenant}.sqlite3"\nmodels = ["tenant_models"]\n'
        'tenants = ["acme", "globex", "initech"]',
    )
    files = {name: project.root / "tenants" / f"{name}.sqlite3" for name in ("acme", "globex", "initech")}

    created = project.run("tenants:create", "acme")
    assert created.exit_code == 0, created.output
    assert files["acme"].is_file()  # and the directory with it
    assert project.run("tenants:create", "globex").exit_code == 0
    migration = make_tenant_migration(project)

    migrated = project.run("tenants:migrate")
    assert migrated.exit_code == 1, migrated.output
    assert "3 tenants: 2 migrated, 0 up to date, 1 failed" in migrated.stdout
    assert "initech:" in migrated.stderr and "tenants:create initech" in migrated.stderr
    no_traceback(migrated)
    assert not files["initech"].exists()

    # status and make:migration --tenant do not create it either
    code, report = status_json(project)
    assert code == 1
    by_name = {entry["tenant"]: entry for entry in report["tenants"]}
    assert by_name["acme"]["at"] == by_name["globex"]["at"] == [migration.stem]
    assert by_name["acme"]["where"] == "sqlite:///tenants/acme.sqlite3"
    assert "error" in by_name["initech"]
    made = project.run("make:migration", "--tenants", "--tenant", "initech", "nothing")
    assert made.exit_code == 3 and "tenants:create initech" in made.stderr
    no_traceback(made)
    assert not files["initech"].exists()

    for name in ("acme", "globex"):
        url = f"sqlite:///{files[name]}"
        assert {"invoices", *TOOL_TABLES} <= inspect_tables(url)
        assert len(versions(url)) == 1
    assert not {"invoices", *TOOL_TABLES} & project.tables()

    rolled = project.run("tenants:rollback", "--tenant", "acme")
    assert rolled.exit_code == 0, rolled.output
    assert "1 tenant: 1 rolled back, 0 nothing to roll back" in rolled.stdout
    assert "invoices" not in inspect_tables(f"sqlite:///{files['acme']}")
    assert "invoices" in inspect_tables(f"sqlite:///{files['globex']}")

    # tenants:create on the missing one: the file appears and is migrated.
    late = project.run("tenants:create", "initech")
    assert late.exit_code == 0, late.output
    assert "invoices" in inspect_tables(f"sqlite:///{files['initech']}")


# 3. Database mode on PostgreSQL: a database per tenant.


def test_postgres_database_mode_creates_and_migrates_a_database_per_tenant(
    sqlite_project: Project, server_databases: list[tuple[str, str]]
) -> None:
    project = sqlite_project  # the default database is only where the tool runs from here
    prefix = unique()
    names = [f"{prefix}_acme", f"{prefix}_globex"]
    missing = f"{prefix}_missing"
    server_databases.extend(("postgresql", name) for name in (*names, missing))
    template = sa.make_url(PG_ADMIN_URL).set(drivername="postgresql", database="TENANT")
    template_text = template.render_as_string(hide_password=False).replace("TENANT", "{tenant}")
    listed = toml_list([*names, missing])
    configure(
        project, f'mode = "database"\nurl = "{template_text}"\nmodels = ["tenant_models"]\ntenants = {listed}'
    )

    for name in names:
        created = project.run("tenants:create", name)
        assert created.exit_code == 0, created.output
        assert f"Created tenant {name}" in created.output
    migration = make_tenant_migration(project)
    migrated = project.run("tenants:migrate")
    assert migrated.exit_code == 1, migrated.output
    assert "3 tenants: 2 migrated, 0 up to date, 1 failed" in migrated.stdout
    assert f"{missing}: cannot connect to postgresql://" in migrated.stderr
    assert f'database "{missing}" does not exist' in migrated.stderr
    assert f"tenants:create {missing}`" in migrated.stderr
    no_traceback(migrated)

    code, report = status_json(project, "--tenant", names[0], "--tenant", names[1])
    assert code == 0, report
    for entry, name in zip(report["tenants"], names, strict=True):
        assert entry["tenant"] == name
        assert entry["at"] == [migration.stem] and entry["pending"] == 0
        assert entry["where"].endswith(f"/{name}")
        assert {"invoices", *TOOL_TABLES} <= inspect_tables(server_url("postgresql", name))
    assert not {"invoices", *TOOL_TABLES} & project.tables()

    text = project.run("tenants:status")
    assert text.exit_code == 1, text.output
    assert "3 tenants: 2 up to date, 0 with pending migrations, 1 unreadable." in text.stdout
    engine = sa.create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as connection:
            found = connection.exec_driver_sql(
                "SELECT datname FROM pg_database WHERE datname LIKE %(p)s", {"p": prefix + "%"}
            )
            assert sorted(row[0] for row in found) == names
    finally:
        engine.dispose()


# 4. Tenants from a query.


def test_two_column_query_gives_each_tenant_its_own_database_url(sqlite_project: Project) -> None:
    project = sqlite_project
    connection = sqlite3.connect(project.root.parent / "test.sqlite3")
    try:
        with connection:  # commits
            connection.execute("CREATE TABLE tenants (name TEXT, url TEXT)")
            connection.executemany(
                "INSERT INTO tenants VALUES (?, ?)",
                [("acme", "sqlite:///data/first.sqlite3"), ("globex", "sqlite:///data/second.sqlite3")],
            )
    finally:
        connection.close()
    query = "SELECT name, url FROM tenants ORDER BY name"
    configure(project, f'mode = "database"\nmodels = ["tenant_models"]\nquery = "{query}"')
    for name in ("acme", "globex"):
        assert project.run("tenants:create", name).exit_code == 0
    assert sorted(path.name for path in (project.root / "data").glob("*.sqlite3")) == [
        "first.sqlite3",
        "second.sqlite3",
    ]
    migration = make_tenant_migration(project)
    migrated = project.run("tenants:migrate")
    assert migrated.exit_code == 0, migrated.output
    assert "2 tenants: 2 migrated, 0 up to date" in migrated.stdout

    code, report = status_json(project)
    assert code == 0, report
    assert [(entry["tenant"], entry["where"], entry["at"]) for entry in report["tenants"]] == [
        ("acme", "sqlite:///data/first.sqlite3", [migration.stem]),
        ("globex", "sqlite:///data/second.sqlite3", [migration.stem]),
    ]
    for file in ("first.sqlite3", "second.sqlite3"):
        assert {"invoices", *TOOL_TABLES} <= inspect_tables(f"sqlite:///{project.root / 'data' / file}")
    assert project.tables() == {"tenants"}


def test_one_column_query_in_postgres_schema_mode(postgres_project: Project) -> None:
    project = postgres_project
    names = ["acme", "globex"]
    engine = project.engine()
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE tenants (name text)")
            connection.exec_driver_sql("INSERT INTO tenants VALUES ('acme'), ('globex')")
    finally:
        engine.dispose()
    configure(project, 'models = ["tenant_models"]\nquery = "SELECT name FROM tenants ORDER BY name"')

    for name in names:
        assert project.run("tenants:create", name).exit_code == 0
    migration = make_tenant_migration(project)
    assert '"tenants"' not in migration.read_text()  # public.tenants is not the tenant's business
    migrated = project.run("tenants:migrate", "--jobs", "2")
    assert migrated.exit_code == 0, migrated.output
    assert "2 tenants: 2 migrated, 0 up to date" in migrated.stdout
    code, report = status_json(project)
    assert code == 0, report
    assert [entry["at"] for entry in report["tenants"]] == [[migration.stem]] * 2
    for name in names:
        assert {"invoices", *TOOL_TABLES} <= inspect_tables(project.url, schema=name)
    assert project.tables() == {"tenants"}  # the public schema: only the list of tenants
    again = project.run("make:migration", "--tenants", "--tenant", "globex", "nothing new")
    assert again.exit_code == 0, again.output
    assert "No changes detected." in again.stdout


# 5. A bad configuration or option: one line, its exit code, no traceback.

TEMPLATE = 'mode = "database"\nurl = "sqlite:///tenants/{tenant}.sqlite3"\nmodels = ["tenant_models"]\n'
BAD_SECTIONS = {
    "no section": (None, "this project declares no tenants"),
    "mode typo": (
        'mode = "schemas"\nmodels = ["tenant_models"]\ntenants = ["a"]',
        'mode must be "schema" or "database"',
    ),
    "models missing": ('tenants = ["a"]', "needs models"),
    "tenants and query": (TEMPLATE + 'tenants = ["a"]\nquery = "SELECT 1"', "exactly one of tenants"),
    "neither tenants nor query": (TEMPLATE, "exactly one of tenants"),
    "database mode without placeholder": (
        'mode = "database"\nurl = "sqlite:///one.sqlite3"\nmodels = ["tenant_models"]\ntenants = ["a"]',
        "needs a url template with {tenant}",
    ),
    "database mode, one-column query, no template": (
        'mode = "database"\nmodels = ["tenant_models"]\nquery = "SELECT \'a\'"',
        "or a query that returns each tenant's URL",
    ),
    "database mode, query, url without placeholder": (
        'mode = "database"\nurl = "sqlite:///a.sqlite3"\nmodels = ["tenant_models"]\nquery = "SELECT \'a\'"',
        "needs a url template with {tenant}",
    ),
    "schema mode with an sqlite url": (
        'models = ["tenant_models"]\nurl = "sqlite:///server.sqlite3"\ntenants = ["a"]',
        "needs PostgreSQL or MariaDB/MySQL, and the url is sqlite",
    ),
    "schema mode on sqlite": ('models = ["tenant_models"]\ntenants = ["a"]', "needs PostgreSQL or MariaDB"),
    "query fails": (TEMPLATE + 'query = "SELECT name FROM no_such_table"', "no such table: no_such_table"),
    "query with three columns": (TEMPLATE + "query = \"SELECT 'a', 'b', 'c'\"", "returns 3 columns"),
    "query name with dots": (TEMPLATE + "query = \"SELECT '../etc'\"", "tenant name '../etc'"),
    "query name with spaces": (TEMPLATE + "query = \"SELECT 'a b'\"", "tenant name 'a b'"),
    "bad name in the list": (TEMPLATE + 'tenants = ["ok", "no/slash"]', "tenant name 'no/slash'"),
    "unknown key": (TEMPLATE + 'tenants = ["a"]\nschema = "x"', "unknown key 'schema'"),
}


@pytest.mark.parametrize("case", list(BAD_SECTIONS))
def test_bad_tenants_section_is_one_line_and_exit_3(sqlite_project: Project, case: str) -> None:
    section, message = BAD_SECTIONS[case]
    configure(sqlite_project, section)
    for command in (["tenants:migrate"], ["tenants:status", "--json"], ["make:migration", "--tenants", "x"]):
        result = sqlite_project.run(*command)
        assert result.exit_code == 3, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert lines[0].startswith("error: ") and message in lines[0], result.stderr
        assert all(line.startswith("hint: ") for line in lines[1:]) and len(lines) <= 2, result.stderr
        assert result.stdout == ""
        no_traceback(result)
    assert not (sqlite_project.root / "tenants").exists()


def test_unknown_tenant_and_tenant_without_tenants_are_usage_errors(sqlite_project: Project) -> None:
    configure(sqlite_project, TEMPLATE + 'tenants = ["acme", "globex"]')
    for command in (
        ["tenants:migrate", "--tenant", "acme", "--tenant", "nope"],
        ["tenants:status", "--tenant", "nope"],
        ["tenants:rollback", "--tenant", "nope"],
        ["tenants:create", "nope"],
        ["make:migration", "--tenants", "--tenant", "nope", "add things"],
    ):
        result = sqlite_project.run(*command)
        assert result.exit_code == 2, result.output
        assert "unknown tenant: nope" in result.stderr
        assert "known tenants: acme, globex" in result.stderr
        no_traceback(result)
    made = sqlite_project.run("make:migration", "--tenant", "acme", "add things")
    assert made.exit_code == 2, made.output
    assert "--tenant needs --tenants" in made.stderr
    assert not (sqlite_project.root / "tenants").exists()


# 6. In this process (--jobs 1) or in forked workers (--jobs 3): the same end state.


def _tenant_state(root: Path, name: str) -> tuple:
    url = f"sqlite:///{root / 'tenants' / name}.sqlite3"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            tables = sorted(sa.inspect(connection).get_table_names())
            version = sorted(
                row[0] for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            )
            ledger_sql = "SELECT revision, name, batch FROM manage_migrations ORDER BY id"
            ledger = [tuple(row) for row in connection.exec_driver_sql(ledger_sql)]
    finally:
        engine.dispose()
    return tables, version, ledger


def test_jobs_1_and_jobs_3_reach_the_same_state_on_five_tenants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from manage_migrations.tenancy import fanout

    runners: list[str] = []  # which way each run went: in this process, or forked workers

    def spy(name: str):
        real = getattr(fanout, name)

        def run(*args):
            runners.append(name)
            return real(*args)

        return run

    for name in ("_in_process", "_forked"):
        monkeypatch.setattr(fanout, name, spy(name))
    names = [f"t{index}" for index in range(1, 6)]
    states = {}
    for jobs in ("1", "3"):
        root = tmp_path / f"jobs{jobs}"
        (root / "migrations" / "tenants").mkdir(parents=True)
        (root / "models").mkdir()
        (root / "models" / "__init__.py").write_text("")
        (root / "tenants").mkdir()
        for name in names:
            (root / "tenants" / f"{name}.sqlite3").touch()  # an empty file is an empty database
        project = Project(root=root, url=f"sqlite:///{root / 'default.sqlite3'}")
        configure(project, TEMPLATE + f"tenants = {toml_list(names)}")
        first = create_table_revision(root / "migrations" / "tenants", 1, "accounts", None)
        create_table_revision(root / "migrations" / "tenants", 2, "ledgers", first)
        monkeypatch.chdir(root)

        migrated = project.run("tenants:migrate", "--jobs", jobs)
        assert migrated.exit_code == 0, migrated.output
        assert "5 tenants: 5 migrated, 0 up to date" in migrated.stdout
        again = project.run("tenants:migrate", "--jobs", jobs)
        assert "5 tenants: 0 migrated, 5 up to date" in again.stdout
        some = ("--tenant", "t2", "--tenant", "t4")
        rolled = project.run("tenants:rollback", "--jobs", jobs, "--step", "1", *some)
        assert rolled.exit_code == 0, rolled.output
        assert "2 tenants: 2 rolled back, 0 nothing to roll back" in rolled.stdout
        code, report = status_json(project, "--jobs", jobs)
        assert code == 0, report
        states[jobs] = ({name: _tenant_state(root, name) for name in names}, report["tenants"])
        assert set(runners) == {"_in_process" if jobs == "1" else "_forked"}, runners
        runners.clear()

    one, three = states["1"], states["3"]
    assert one[0] == three[0]
    strip = [{key: value for key, value in entry.items() if key != "where"} for entry in one[1]]
    assert strip == [{key: value for key, value in entry.items() if key != "where"} for entry in three[1]]
    assert one[0]["t1"][0] == ["accounts", "alembic_version", "ledgers", "manage_migrations", "manage_state"]
    assert "ledgers" not in one[0]["t2"][0] and one[0]["t2"][1] == ["rev0001"]
