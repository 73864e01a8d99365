"""Named databases ([tool.manage.databases.NAME], `--database NAME`): each has its own models,
migrations directory, version table, ledger and lock, through the real CLI and plain alembic."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import BASE_MODULE, CLI_ENV, USERS_MODEL, fresh_database
from helpers import ALEMBIC_TABLE, MANAGE_PY, create_table_revision
from typer.testing import CliRunner

from manage_migrations import locks
from manage_migrations.cli import app
from manage_migrations.core.url import parse

ANALYTICS_BASE = """
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class AnalyticsBase(DeclarativeBase):
    metadata = MetaData(naming_convention={"pk": "pk_%(table_name)s"})
"""
EVENTS_MODEL = """
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from analytics_models.base import AnalyticsBase


class Event(AnalyticsBase):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
"""
# An analytics model on the default database's Base: its MetaData is the default's.
VISITS_ON_THE_DEFAULT_BASE = """
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Visit(Base):
    __tablename__ = "visits"

    id: Mapped[int] = mapped_column(primary_key=True)
"""
URL_VARIABLES = ("DATABASE_URL", "ANALYTICS_DATABASE_URL", "APP_ENV")


@dataclass
class TwoDatabases:
    """A project whose default database has `users` and whose `analytics` database has `events`."""

    root: Path
    default_url: str
    analytics_url: str
    runner: CliRunner = field(default_factory=CliRunner)

    @property
    def migrations(self) -> Path:
        return self.root / "migrations"

    @property
    def analytics_migrations(self) -> Path:
        return self.root / "migrations" / "analytics"

    def write(self, relative: str, source: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
        return path

    def pyproject(self, analytics_table: str | None = None, extra: str = "") -> None:
        """[tool.manage] for the default database and [tool.manage.databases.analytics]."""
        table = analytics_table or f'database_url = "{self.analytics_url}"\nmodels = ["analytics_models"]\n'
        self.write(
            "pyproject.toml",
            f'{ALEMBIC_TABLE}\n[tool.manage]\ndatabase_url = "{self.default_url}"\n{extra}\n'
            f"[tool.manage.databases.analytics]\n{table}",
        )

    def run(self, *args: str, env: dict[str, str] | None = None):
        """manage.py in-process, with the URLs from pyproject.toml (no --database-url)."""
        result = self.runner.invoke(app, list(args), env={**CLI_ENV, **(env or {})})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert "Traceback" not in result.output
        return result

    def ok(self, *args: str, env: dict[str, str] | None = None):
        result = self.run(*args, env=env)
        assert result.exit_code == 0, result.output
        return result

    def files(self, directory: Path) -> list[Path]:
        return sorted(directory.glob("*.py"))


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def versions(url: str) -> set[str]:
    if "alembic_version" not in tables(url):
        return set()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return {row[0] for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")}
    finally:
        engine.dispose()


TOOL_TABLES = {"alembic_version", "manage_migrations", "manage_state", "manage_failed_migrations"}


def user_tables(url: str) -> set[str]:
    return tables(url) - TOOL_TABLES


def revision_of(path: Path) -> str:
    match = re.search(r"^revision(?:: str)? = [\"']([0-9a-z]+)[\"']", path.read_text(), re.MULTILINE)
    assert match is not None, path.read_text()
    return match.group(1)


def make_two_databases(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TwoDatabases]:
    for name in ("default", "analytics"):
        (tmp_path / name).mkdir()
    makers = [fresh_database(backend, tmp_path / name) for name in ("default", "analytics")]
    try:
        default_url, analytics_url = (next(maker) for maker in makers)
        root = tmp_path / "app"
        (root / "migrations").mkdir(parents=True)
        project = TwoDatabases(root, default_url, analytics_url)
        project.write("models/__init__.py", "")
        project.write("models/base.py", BASE_MODULE)
        project.write("models/users.py", USERS_MODEL)
        project.write("analytics_models/__init__.py", "")
        project.write("analytics_models/base.py", ANALYTICS_BASE)
        project.write("analytics_models/events.py", EVENTS_MODEL)
        project.pyproject()
        for variable in URL_VARIABLES:
            monkeypatch.delenv(variable, raising=False)
        monkeypatch.chdir(root)
        yield project
    finally:
        for maker in makers:
            maker.close()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def two(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TwoDatabases]:
    yield from make_two_databases(request.param, tmp_path, monkeypatch)


@pytest.fixture
def two_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TwoDatabases]:
    yield from make_two_databases("sqlite", tmp_path, monkeypatch)


@pytest.fixture(params=["sqlite", "postgresql"])
def two_on_sqlite_and_postgresql(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TwoDatabases]:
    yield from make_two_databases(request.param, tmp_path, monkeypatch)


def migrated(project: TwoDatabases) -> TwoDatabases:
    """Both databases with their first migration written and applied."""
    project.ok("make:migration", "create users")
    project.ok("--database", "analytics", "make:migration", "create events")
    project.ok("migrate")
    project.ok("migrate", "--database", "analytics")
    return project


def test_make_migration_and_migrate_stay_within_the_selected_database(two: TwoDatabases) -> None:
    made = two.ok("make:migration", "create users")
    assert "+ table users" in made.stdout and "events" not in made.stdout
    analytics = two.ok("--database", "analytics", "make:migration", "create events")
    assert "+ table events" in analytics.stdout and "users" not in analytics.stdout

    [default_file] = two.files(two.migrations)
    [analytics_file] = two.files(two.analytics_migrations)
    assert '"users"' in default_file.read_text() and "events" not in default_file.read_text()
    assert '"events"' in analytics_file.read_text() and "users" not in analytics_file.read_text()
    assert f"Created migrations/analytics/{analytics_file.name}" in analytics.stdout

    ran = two.ok("migrate", "--database", "analytics")
    assert (
        f"Running migrations on analytics at {parse(two.analytics_url, two.root).display} (batch 1)"
        in ran.stdout
    )
    assert user_tables(two.analytics_url) == {"events"}
    assert versions(two.analytics_url) == {revision_of(analytics_file)}
    assert user_tables(two.default_url) == set() and versions(two.default_url) == set()

    default_run = two.ok("migrate")
    assert "Running migrations on analytics" not in default_run.stdout
    assert user_tables(two.default_url) == {"users"} and versions(two.default_url) == {
        revision_of(default_file)
    }
    assert user_tables(two.analytics_url) == {"events"}

    # Each autogenerate compares only its own models with its own database: nothing to add, and
    # neither proposes dropping or creating the other's tables.
    for args in (("make:migration", "again"), ("--database", "analytics", "make:migration", "again")):
        assert "No changes detected." in two.ok(*args).stdout
    for args in (("migrate:check",), ("migrate:check", "--database", "analytics")):
        assert "All checks passed." in two.ok(*args).stdout
    assert len(two.files(two.migrations)) == 1 and len(two.files(two.analytics_migrations)) == 1


def test_status_rollback_fresh_and_dump_leave_the_other_database_untouched(two: TwoDatabases) -> None:
    migrated(two)
    default_versions, analytics_versions = versions(two.default_url), versions(two.analytics_url)

    status = json.loads(two.ok("--database", "analytics", "migrate:status", "--json").stdout)
    assert status["database"] == parse(two.analytics_url, two.root).display
    assert [row["name"] for row in status["migrations"]] == [two.files(two.analytics_migrations)[0].stem]
    text = two.ok("migrate:status", "--database", "analytics").stdout
    assert text.startswith(f"Migrations on analytics at {parse(two.analytics_url, two.root).display}")
    assert two.ok("migrate:status").stdout.startswith(
        f"Migrations on {parse(two.default_url, two.root).display}"
    )

    rolled = two.ok("--database", "analytics", "migrate:rollback")
    assert "Rolling back migrations on analytics at" in rolled.stdout
    assert user_tables(two.analytics_url) == set() and versions(two.analytics_url) == set()
    assert user_tables(two.default_url) == {"users"} and versions(two.default_url) == default_versions

    two.ok("--database", "analytics", "migrate")
    fresh = two.ok("--database", "analytics", "migrate:fresh", "--force")
    assert "Dropping everything the project owns on analytics at" in fresh.stdout
    assert user_tables(two.analytics_url) == {"events"} and versions(two.analytics_url) == analytics_versions
    assert user_tables(two.default_url) == {"users"} and versions(two.default_url) == default_versions

    dumped = two.ok("--database", "analytics", "migrate:dump")
    assert "Dumped analytics at" in dumped.stdout
    assert list((two.analytics_migrations / "schema").glob("*-schema.sql"))
    assert not (two.migrations / "schema").exists()

    two.ok("migrate:rollback")
    assert user_tables(two.default_url) == set()
    assert user_tables(two.analytics_url) == {"events"} and versions(two.analytics_url) == analytics_versions


def test_url_precedence_for_a_named_database(
    two_sqlite: TwoDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--database-url > ANALYTICS_DATABASE_URL > .env ANALYTICS_DATABASE_URL > its table; the
    default's DATABASE_URL never reaches it, nor its variable the default."""
    project = two_sqlite

    def shown(*args: str) -> str:
        return json.loads(project.ok(*args, "migrate:status", "--json").stdout)["database"]

    assert shown("--database", "analytics") == parse(project.analytics_url, project.root).display
    (project.root / ".env").write_text("ANALYTICS_DATABASE_URL=sqlite:///from_dotenv.sqlite3\n")
    assert shown("--database", "analytics") == "sqlite:///from_dotenv.sqlite3"
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", "sqlite:///from_environ.sqlite3")
    assert shown("--database", "analytics") == "sqlite:///from_environ.sqlite3"
    monkeypatch.setenv("DATABASE_URL", "sqlite:///the_default.sqlite3")
    assert shown("--database", "analytics") == "sqlite:///from_environ.sqlite3"
    assert shown() == "sqlite:///the_default.sqlite3"
    assert shown("--database", "default") == "sqlite:///the_default.sqlite3"
    assert (
        shown("--database", "analytics", "--database-url", "sqlite:///option.sqlite3")
        == "sqlite:///option.sqlite3"
    )
    # The option overrides the selected database only.
    assert shown("--database-url", "sqlite:///option.sqlite3") == "sqlite:///option.sqlite3"

    from manage_migrations.settings import resolve_settings

    settings = resolve_settings(database="analytics")
    assert (settings.database, settings.database_url_source) == ("analytics", "ANALYTICS_DATABASE_URL")
    monkeypatch.delenv("ANALYTICS_DATABASE_URL")
    assert resolve_settings(database="analytics").database_url_source == ".env ANALYTICS_DATABASE_URL"


def test_unknown_database_is_a_usage_error_listing_the_known_ones(two_sqlite: TwoDatabases) -> None:
    for args in (
        ("--database", "nope", "migrate"),
        ("migrate:status", "--database", "nope"),
        ("make:migration", "x", "--database=nope"),
        ("--database", "nope", "migrate:rollback"),
    ):
        result = two_sqlite.run(*args)
        assert result.exit_code == 2, result.output
        assert "error: unknown database 'nope'; known: default, analytics" in result.stderr
        assert "hint: declare it in pyproject.toml as [tool.manage.databases.nope]" in result.stderr
    typo = two_sqlite.run("--database", "analytic", "migrate")
    assert typo.exit_code == 2 and "hint: did you mean analytics?" in typo.stderr
    assert two_sqlite.files(two_sqlite.migrations) == []
    assert tables(two_sqlite.default_url) == set() and tables(two_sqlite.analytics_url) == set()


@pytest.mark.parametrize("where", ["imports the default's Base", "is inside the default's package"])
def test_models_sharing_a_metadata_are_refused_naming_both_modules(
    two_sqlite: TwoDatabases, where: str
) -> None:
    project = two_sqlite
    if where == "imports the default's Base":
        project.write("analytics_models/visits.py", VISITS_ON_THE_DEFAULT_BASE)
        message = (
            "databases 'default' and 'analytics' share one MetaData (tables users, visits): "
            "models.base (default) and analytics_models.visits (analytics)"
        )
    else:
        project.write("models/analytics/__init__.py", "")
        project.write("models/analytics/base.py", ANALYTICS_BASE)
        project.write(
            "models/analytics/events.py", EVENTS_MODEL.replace("analytics_models.", "models.analytics.")
        )
        project.pyproject(f'database_url = "{project.analytics_url}"\nmodels = ["models.analytics"]\n')
        message = (
            "databases 'default' and 'analytics' share one MetaData (tables events): "
            "models.analytics.base (default) and models.analytics.base (analytics)"
        )

    for args in (
        ("make:migration", "x"),
        ("--database", "analytics", "make:migration", "x"),
        ("migrate:check",),
        ("--database", "analytics", "migrate:check"),
    ):
        result = project.run(*args)
        assert result.exit_code == 3, result.output
        assert f"error: {message}" in result.stderr
        assert "hint: give each database's models a declarative Base of their own" in result.stderr
    assert project.files(project.migrations) == [] and project.files(project.analytics_migrations) == []


@pytest.mark.parametrize(
    ("analytics_table", "extra", "message", "hint"),
    [
        (
            'database-url = "sqlite:///a.sqlite3"\nmodels = ["analytics_models"]',
            "",
            "unknown key 'database-url' in [tool.manage.databases.analytics] of pyproject.toml",
            "did you mean database_url?",
        ),
        (
            'models = ["analytics_models"]\nexclude_tables = ["legacy"]',
            "",
            "exclude_tables in [tool.manage.databases.analytics] of pyproject.toml is not set per database",
            "set it in [tool.manage]: it holds for every database",
        ),
        (
            'database_url = "sqlite:///a.sqlite3"',
            "",
            "[tool.manage.databases.analytics] has no models",
            'name its model packages, e.g. models = ["analytics_models"]',
        ),
        (
            'models = ["analytics_models"]\nmigrations = "migrations"',
            "",
            "databases 'default' and 'analytics' share the migrations directory migrations",
            "give each database a migrations directory of its own",
        ),
        (
            'models = ["analytics_models"]\ndatabase_url = "sqlite:///./shared.sqlite3"',
            'database_url = "sqlite:///shared.sqlite3"',
            "databases 'default' and 'analytics' are the same database (sqlite:///shared.sqlite3)",
            "give each its own database: they would share one alembic_version",
        ),
        (
            'models = ["analytics_models"]\n\n[tool.manage.databases.default]\nmodels = ["x"]',
            "",
            "[tool.manage.databases.default] declares a database called 'default'",
            "the keys directly under [tool.manage] are the default database",
        ),
        (
            'models = ["analytics_models"]\n\n[tool.manage.databases."9 lives"]\nmodels = ["x"]',
            "",
            "database name '9 lives' in [tool.manage.databases] is not allowed",
            "start it with a letter",
        ),
        (
            'models = ["analytics_models"]\n\n[tool.manage.databases.Analytics]\nmodels = ["x"]',
            "",
            "databases 'analytics' and 'Analytics' would both take their URL from ANALYTICS_DATABASE_URL",
            "rename one of them",
        ),
    ],
)
def test_a_bad_database_table_stops_every_database_with_exit_3(
    two_sqlite: TwoDatabases, analytics_table: str, extra: str, message: str, hint: str
) -> None:
    project = two_sqlite
    project.pyproject(analytics_table + "\n", extra=extra)
    if extra:  # the default's URL comes from `extra`
        text = (project.root / "pyproject.toml").read_text()
        project.write("pyproject.toml", text.replace(f'database_url = "{project.default_url}"\n', "", 1))

    for args in (("migrate",), ("--database", "analytics", "migrate:status"), ("make:migration", "x")):
        result = project.run(*args)
        assert result.exit_code == 3, result.output
        assert f"error: {message}" in result.stderr
        assert f"hint: {hint}" in result.stderr
    assert project.files(project.migrations) == []
    assert not list(project.root.glob("*.sqlite3"))


def test_the_same_database_through_an_environment_variable_is_refused(two_sqlite: TwoDatabases) -> None:
    result = two_sqlite.run("migrate", env={"ANALYTICS_DATABASE_URL": two_sqlite.default_url})
    assert result.exit_code == 3, result.output
    assert "error: databases 'default' and 'analytics' are the same database" in result.stderr
    option = two_sqlite.run("--database", "analytics", "migrate", "--database-url", two_sqlite.default_url)
    assert option.exit_code == 3, option.output
    assert tables(two_sqlite.default_url) == set()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_the_lock_is_per_database(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While something holds the default database's migration lock, analytics migrates."""
    for project in make_two_databases(backend, tmp_path, monkeypatch):
        create_table_revision(project.migrations, 1, "alpha", None)
        project.analytics_migrations.mkdir()
        create_table_revision(project.analytics_migrations, 2, "beta", None)
        default = parse(project.default_url, project.root)
        with locks.migration_lock(locks.LockRequest(default, 5, lambda holder: None, default.display)):
            blocked = project.run("migrate", "--lock-timeout", "0.5")
            assert blocked.exit_code == 5, blocked.output
            analytics = project.run("--database", "analytics", "migrate", "--lock-timeout", "0.5")
            assert analytics.exit_code == 0, analytics.output
        assert user_tables(project.analytics_url) == {"beta"}
        assert user_tables(project.default_url) == set()
        project.ok("migrate")
        assert user_tables(project.default_url) == {"alpha"}


def _python(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in URL_VARIABLES}
    environ.update(CLI_ENV, **env)
    return subprocess.run(
        [sys.executable, *args], cwd=root, env=environ, capture_output=True, text=True, timeout=120
    )


def test_plain_alembic_serves_the_default_and_reaches_others_with_x_database(
    two_on_sqlite_and_postgresql: TwoDatabases,
) -> None:
    project = two_on_sqlite_and_postgresql
    (project.root / "manage.py").write_text(MANAGE_PY)

    made = _python(
        project.root,
        "-m",
        "alembic",
        "-x",
        "database=analytics",
        "revision",
        "--autogenerate",
        "-m",
        "events",
    )
    assert made.returncode == 0, made.stdout + made.stderr
    [analytics_file] = project.files(project.analytics_migrations)
    assert "events" in analytics_file.read_text() and "users" not in analytics_file.read_text()
    assert project.files(project.migrations) == []
    project.ok("make:migration", "create users")

    heads = _python(project.root, "-m", "alembic", "-x", "database=analytics", "heads")
    assert heads.returncode == 0, heads.stderr
    revision = revision_of(analytics_file)
    assert heads.stdout.split() == [revision, "(head)"]

    upgraded = _python(project.root, "-m", "alembic", "-x", "database=analytics", "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert versions(project.analytics_url) == {revision}
    assert user_tables(project.analytics_url) == {"events"}
    assert tables(project.default_url) == set()
    status = _python(project.root, "manage.py", "--database", "analytics", "migrate:status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.strip().endswith("1 ran, 0 pending.")
    assert _python(project.root, "manage.py", "migrate:status").stdout.strip().endswith("0 ran, 1 pending.")

    # Plain `alembic` (no -x) is the default database, as before.
    default = _python(project.root, "-m", "alembic", "upgrade", "head")
    assert default.returncode == 0, default.stdout + default.stderr
    assert user_tables(project.default_url) == {"users"}
    assert "(head)" in _python(project.root, "-m", "alembic", "current").stdout
    checked = _python(project.root, "-m", "alembic", "-x", "database=analytics", "check")
    assert checked.returncode == 0 and "No new upgrade operations detected." in checked.stdout

    down = _python(project.root, "-m", "alembic", "-x", "database=analytics", "downgrade", "base")
    assert down.returncode == 0, down.stdout + down.stderr
    assert user_tables(project.analytics_url) == set() and user_tables(project.default_url) == {"users"}
    after = _python(project.root, "manage.py", "migrate:status", "--database", "analytics")
    assert after.stdout.strip().endswith("0 ran, 1 pending.")

    unknown = _python(project.root, "-m", "alembic", "-x", "database=nope", "upgrade", "head")
    assert unknown.returncode != 0
    assert "FAILED: unknown database 'nope'; known: default, analytics" in unknown.stdout + unknown.stderr
    assert "Traceback" not in unknown.stdout + unknown.stderr


def test_hints_name_the_selected_database(two_sqlite: TwoDatabases) -> None:
    project = two_sqlite
    project.analytics_migrations.mkdir()
    create_table_revision(project.analytics_migrations, 1, "alpha", None)
    create_table_revision(project.analytics_migrations, 2, "beta", None)  # a second head

    result = project.run("--database", "analytics", "migrate:status")

    assert result.exit_code == 6, result.output
    assert "python manage.py --database analytics make:migration --merge" in result.stderr
    assert "--database" not in project.run("migrate:status").output


def test_shell_completion_offers_database_names_and_the_selected_database_s_migrations(
    two_sqlite: TwoDatabases,
) -> None:
    project = two_sqlite
    create_table_revision(project.migrations, 1, "alpha", None)
    project.analytics_migrations.mkdir()
    create_table_revision(project.analytics_migrations, 2, "beta", None)

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        manage = str(Path(sys.executable).parent / "manage")
        env = {"_MANAGE_COMPLETE": "complete_bash", "_TYPER_COMPLETE_ARGS": line}
        env |= {"COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
        result = subprocess.run(
            [manage], cwd=project.root, env={**os.environ, **env}, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    assert complete("manage --database ") == ["default", "analytics"]
    assert complete("manage --database an") == ["analytics"]
    assert complete("manage --database analytics migrate ") == ["2026_01_01_000002_create_beta_table", "head"]
    assert complete("manage migrate:rollback --database analytics --to ") == [
        "2026_01_01_000002_create_beta_table"
    ]
    assert complete("manage migrate:rollback --to ") == ["2026_01_01_000001_create_alpha_table"]
