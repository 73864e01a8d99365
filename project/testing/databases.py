"""Throwaway databases for tests: SQLite files in a temporary directory, or new databases on the
PostgreSQL / MariaDB server that `--manage-db` or TEST_DATABASE_URL names, dropped afterwards."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from manage_migrations.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from manage_migrations.core.url import DatabaseURL
    from manage_migrations.settings import Settings

SERVER_BACKENDS = frozenset({"postgresql", "mysql", "mariadb"})
TEST_ENVIRONMENT = "testing"


@dataclass
class Throwaway:
    """Creates a database per request and drops every one it created in `close()`."""

    root: Path
    server_url: str | None = None
    created: list[str] = field(default_factory=list, init=False)
    _directory: Path | None = field(default=None, init=False)
    _server: DatabaseURL | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.server_url:
            from manage_migrations import database

            server = database.parse_url(self.server_url, self.root)
            if server.backend in SERVER_BACKENDS:
                self._server = server
            elif server.backend != "sqlite":
                raise ConfigError(
                    f"--manage-db / TEST_DATABASE_URL must name a PostgreSQL or MariaDB server, "
                    f"not {server.display}",
                    hint="e.g. postgresql://postgres@127.0.0.1:5432/postgres; without it tests use SQLite",
                )

    @property
    def backend(self) -> str:
        return self._server.backend if self._server is not None else "sqlite"

    def settings(self, url: str | None = None) -> Settings:
        """The project's own settings (pytest's rootdir is the project root) for one throwaway
        database: never production, never prohibited from rolling back. Without a URL: for
        reading the files only, never to connect."""
        from manage_migrations.settings import resolve_settings

        resolved = resolve_settings(root=self.root)
        if url is None:
            return resolved
        return replace(
            resolved,
            database_url=url,
            database_url_source="pytest",
            environment=TEST_ENVIRONMENT,
            prohibit_destructive=False,
        )

    def create(self) -> str:
        """The URL of a new, empty database with a name no other worker or run uses."""
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        name = f"manage_test_{worker}_{uuid.uuid4().hex[:10]}".lower()
        if self._server is None:
            if self._directory is None:
                self._directory = Path(tempfile.mkdtemp(prefix="manage-db-"))
            url = f"sqlite:///{self._directory / (name + '.sqlite3')}"
        else:
            with self._admin() as connection:
                connection.exec_driver_sql(f"CREATE DATABASE {name}")
            target = self._server.for_sqlalchemy().set(database=name)
            url = target.render_as_string(hide_password=False)
        self.created.append(url)
        return url

    def drop(self, url: str) -> None:
        """Drop one database this object created (connections left open by tests are ended)."""
        self.created.remove(url)
        if self._server is None:
            Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
            return
        from manage_migrations import database

        name = database.parse_url(url, self.root).database
        with self._admin() as connection:
            if self._server.backend == "postgresql":
                connection.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                )
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")

    def close(self) -> None:
        for url in list(self.created):
            self.drop(url)
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    @contextmanager
    def _admin(self) -> Iterator[Connection]:
        """An autocommit connection to the server URL, for CREATE / DROP DATABASE."""
        from manage_migrations import database

        assert self._server is not None
        engine = database.create_engine_for(self._server, application_name="manage.py tests")
        try:
            with database.connect(engine) as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT")
                yield connection
        finally:
            engine.dispose()
