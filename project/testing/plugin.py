"""The pytest11 entry point: fixtures with a throwaway migrated database, and the built-in
migration tests behind `--migrations`. Nothing beyond pytest is imported until a fixture or
`--migrations` is used, so a project that does not use them collects exactly as before."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from manage_migrations.errors import ManageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.orm import Session

    from manage_migrations.testing.databases import Throwaway
    from manage_migrations.testing.migration_tests import MigrationTest

DATABASES = pytest.StashKey["Throwaway"]()
SERVER_VARIABLE = "TEST_DATABASE_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("manage-migrations", "manage.py migrations")
    names = ["--manage-migrations"]
    # pytest-django owns `--migrations`; claiming it too would break every run where both load.
    if importlib.util.find_spec("pytest_django") is None:
        names.insert(0, "--migrations")
    group.addoption(
        *names,
        action="store_true",
        dest="manage_migrations",
        default=False,
        help="also run the built-in migration tests: one head, upgrade, models match, stairway, "
        "downgrade to base",
    )
    group.addoption(
        "--manage-db",
        dest="manage_db",
        metavar="URL",
        default=None,
        help=f"a PostgreSQL or MariaDB server URL: test databases are created there and dropped "
        f"afterwards (default: ${SERVER_VARIABLE}, else temporary SQLite files)",
    )


def _databases(config: pytest.Config) -> Throwaway:
    databases = config.stash.get(DATABASES, None)
    if databases is None:
        from manage_migrations.testing.databases import Throwaway

        server = config.getoption("manage_db") or os.environ.get(SERVER_VARIABLE)
        databases = config.stash[DATABASES] = Throwaway(config.rootpath, server)
    return databases


def pytest_unconfigure(config: pytest.Config) -> None:
    databases = config.stash.get(DATABASES, None)
    if databases is not None:
        databases.close()


def _described(exc: ManageError) -> str:
    return f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else "")


@contextmanager
def _reported() -> Iterator[None]:
    """The tool's own errors fail the test with its message and hint, not a traceback."""
    try:
        yield
    except ManageError as exc:
        raise pytest.fail.Exception(_described(exc), pytrace=False) from None


@pytest.fixture(scope="session")
def manage_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A throwaway database migrated to head (from the schema dump when there is one), dropped
    at the end; each pytest-xdist worker gets its own."""
    from manage_migrations.verbs.migrate import migrate

    with _reported():
        databases = _databases(request.config)
        url = databases.create()
    try:
        with _reported():
            result = migrate(databases.settings(url))
        if result.failed is not None:
            pytest.fail(f"migrating the test database: {result.failed.name} failed: {result.failed.error}")
        yield url
    finally:
        databases.drop(url)


@pytest.fixture(scope="session")
def manage_engine(manage_database_url: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine on the test database, made as manage.py makes its own (SQLite runs real BEGINs,
    so savepoints work there too)."""
    from manage_migrations import database

    with _reported():
        engine = database.create_engine_for(
            database.parse_url(manage_database_url, request.config.rootpath), application_name="pytest"
        )
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def manage_connection(manage_engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test: bind sessions with
    `join_transaction_mode="create_savepoint"` and their commits leave nothing behind either."""
    connection = manage_engine.connect()
    transaction = connection.begin()
    try:
        yield connection
    finally:
        if transaction.is_active:
            transaction.rollback()
        connection.close()


@pytest.fixture
def manage_session(manage_connection: Connection) -> Iterator[Session]:
    """An ORM Session on `manage_connection`; `commit()` releases a savepoint, not the test's data."""
    from sqlalchemy.orm import Session

    with Session(bind=manage_connection, join_transaction_mode="create_savepoint") as orm_session:
        yield orm_session


class MigrationTestItem(pytest.Item):
    """One built-in migration test; its failure is the sentence naming the migration that broke."""

    def __init__(self, *, test: MigrationTest, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test = test

    def runtest(self) -> None:
        from manage_migrations.testing.migration_tests import MigrationTestSkipped

        try:
            self.test.run(_databases(self.config))
        except MigrationTestSkipped as exc:
            pytest.skip(str(exc))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from manage_migrations.testing.migration_tests import MigrationTestFailed

        if isinstance(excinfo.value, MigrationTestFailed):
            return str(excinfo.value)
        if isinstance(excinfo.value, ManageError):
            return _described(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"manage.py migrations: {self.name} ({self.test.doc})"


class MigrationTests(pytest.File):
    """The built-in migration tests, collected beside the project's own when --migrations is given,
    under the migrations directory's name (`migrations::test_stairway`)."""

    def collect(self) -> list[MigrationTestItem]:
        from manage_migrations.testing.migration_tests import TESTS

        return [MigrationTestItem.from_parent(self, name=test.name, test=test) for test in TESTS]


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselect, so they apply to these tests too
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[Any]) -> None:
    if config.getoption("manage_migrations"):
        items.extend(MigrationTests.from_parent(session, path=_migrations_dir(config)).collect())


def _migrations_dir(config: pytest.Config) -> Path:
    """Where the tests' names point; a broken configuration is reported when they run, not here."""
    try:
        return _databases(config).settings().migrations_dir
    except ManageError:
        return config.rootpath / "migrations"
