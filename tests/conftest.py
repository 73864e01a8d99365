"""Shared fixtures: a throwaway project per test and a fresh database per backend (real servers)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from manage_migrations.cli import app

REPO_ROOT = Path(__file__).resolve().parent.parent
# Tests rewrite model and migration files within one second, often keeping their size: Python's
# bytecode cache (validated by mtime in seconds and size) would then hand back the old module.
# No bytecode is written, in this process or the manage.py / alembic processes tests start.
sys.dont_write_bytecode = True
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
MARIADB_ADMIN_URL = os.environ.get("TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
SERVER_HINTS = {
    "postgresql": "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "mariadb": "start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
}
CLI_ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
# second_postgres and disposable_postgres: PostgreSQL servers the suite starts itself (tests/pgserver.py).
pytest_plugins = ["pgserver"]


def server_unavailable(backend: str, error: Exception) -> None:
    """Outside CI a missing server skips with a hint; under CI=true it fails, never skips."""
    message = f"{backend} server not reachable ({type(error).__name__}); {SERVER_HINTS[backend]}"
    if IN_CI:
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


def _admin_engine(admin_url: str, backend: str) -> sa.Engine:
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        server_unavailable(backend, exc)
    return engine


def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of a new, empty database; drop it afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    name = f"mt_{uuid.uuid4().hex[:12]}"
    admin_url = PG_ADMIN_URL if backend == "postgresql" else MARIADB_ADMIN_URL
    admin = _admin_engine(admin_url, backend)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            if backend == "postgresql":
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            else:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()


@dataclass
class Project:
    """A throwaway project directory (models/, migrations/) bound to one database URL."""

    root: Path
    url: str
    runner: CliRunner = field(default_factory=CliRunner)

    @property
    def migrations(self) -> Path:
        return self.root / "migrations"

    @property
    def backend(self) -> str:
        return sa.make_url(self.url).get_backend_name()

    def write_model(self, module: str, source: str) -> Path:
        path = self.root / "models" / module
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
        return path

    def remove_model(self, module: str) -> None:
        (self.root / "models" / module).unlink()

    def run(self, *args: str, url: str | None = None, input: str | None = None):
        """Run manage.py in-process through typer's CliRunner; never lets an exception escape."""
        result = self.runner.invoke(app, ["--database-url", url or self.url, *args], env=CLI_ENV, input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    def make(self, *args: str) -> Path:
        """make:migration that must write exactly one file; returns it."""
        before = set(self.migration_files())
        result = self.run("make:migration", *args)
        assert result.exit_code == 0, result.output
        created = set(self.migration_files()) - before
        assert len(created) == 1, result.output
        return created.pop()

    def migration_files(self) -> list[Path]:
        return sorted(self.migrations.glob("*.py"))

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.url.replace("postgresql://", "postgresql+psycopg2://", 1))

    def tables(self) -> set[str]:
        engine = self.engine()
        try:
            return set(sa.inspect(engine).get_table_names())
        finally:
            engine.dispose()

    def query(self, sql: str) -> list[tuple]:
        engine = self.engine()
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.exec_driver_sql(sql)]
        finally:
            engine.dispose()

    def version(self) -> set[str]:
        if "alembic_version" not in self.tables():
            return set()
        return {row[0] for row in self.query("SELECT version_num FROM alembic_version")}

    def ledger(self) -> list[tuple]:
        if "manage_migrations" not in self.tables():
            return []
        return self.query("SELECT revision, name, batch FROM manage_migrations ORDER BY id")


# Every throwaway project starts from the example app's Base (naming convention included).
BASE_MODULE = (REPO_ROOT / "models" / "base.py").read_text(encoding="utf-8")


def make_project(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    root = tmp_path / "app"
    (root / "migrations").mkdir(parents=True)
    project = Project(root=root, url=url)
    project.write_model("__init__.py", "")
    project.write_model("base.py", BASE_MODULE)
    for variable in ("DATABASE_URL", "APP_ENV"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(root)
    return project


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    yield from fresh_database(backend, tmp_path)


@pytest.fixture
def project(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    return make_project(tmp_path, database_url, monkeypatch)


@pytest.fixture
def sqlite_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    return make_project(tmp_path, f"sqlite:///{tmp_path / 'test.sqlite3'}", monkeypatch)


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A copy of the repository as a user would clone it (without virtualenv or databases)."""
    target = tmp_path / "repo"
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.sqlite3", ".pytest_cache", ".ruff_cache", "benchmarks", "tests"
    )
    shutil.copytree(REPO_ROOT, target, ignore=ignore)
    return target


USERS_MODEL = """
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
"""


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def any_backend(request: pytest.FixtureRequest) -> str:
    """All three backends, for make:migration's autogenerate tests (issue 7)."""
    return request.param


@pytest.fixture
def any_project(any_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """A throwaway project on SQLite, PostgreSQL or MariaDB."""
    for url in fresh_database(any_backend, tmp_path):
        yield make_project(tmp_path, url, monkeypatch)


@pytest.fixture
def twin_url(any_backend: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database on the same backend, for `metadata.create_all` comparisons."""
    twin_dir = tmp_path / "twin"
    twin_dir.mkdir()
    yield from fresh_database(any_backend, twin_dir)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Real manage.py processes a test starts; any still running at the end are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port whose kernel completes the TCP handshake while nobody ever answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
