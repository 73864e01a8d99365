"""A session: the parsed URL, one connection (pointed at the tenant's schema when there is one)
and, for commands that change the schema, the migration lock, taken before any state is read.

A fan-out worker passes a `Pool`, so its tenants share one connection per server instead of
connecting (and building an engine) once per tenant."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from manage_migrations import database, locks
from manage_migrations.core.events import LockWaiting, ProgressCallback, ignore

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from manage_migrations.core.url import DatabaseURL
    from manage_migrations.settings import Settings

# Servers a worker keeps connections to; with a database per tenant the oldest is closed first.
POOL_SERVERS = 4


@dataclass
class Session:
    settings: Settings
    url: DatabaseURL
    connection: Connection
    verify_lock: locks.Verify = locks.always_held

    @property
    def shown_url(self) -> str:
        return shown(self.url, self.settings.schema)

    @property
    def backend(self) -> str:
        return self.url.backend

    def scrub(self, text: str) -> str:
        return self.url.scrub(text)


def shown(url: DatabaseURL, schema: str | None) -> str:
    """How messages name the database: the URL without secrets, and the tenant's schema."""
    return url.display if schema is None else f"{url.display} (schema {schema})"


@dataclass
class _Server:
    engine: Engine
    connection: Connection
    lock_connection: Connection | None


@dataclass
class Pool:
    """A fan-out worker's connections: a work connection and a lock connection per server, kept
    across tenants, reopened after a failure took them down, closed with the worker."""

    _servers: OrderedDict[DatabaseURL, _Server] = field(default_factory=OrderedDict)

    def server(self, url: DatabaseURL) -> _Server:
        kept = self._servers.get(url)
        if kept is not None and not (kept.connection.closed or kept.connection.invalidated):
            self._servers.move_to_end(url)
            return kept
        self.discard(url)
        engine = database.create_engine_for(url, application_name=locks.client_name()[:63])
        try:
            connection = database.connect(engine)
            lock_connection = None
            if url.backend != "sqlite":
                lock_connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except BaseException:
            engine.dispose()
            raise
        self._servers[url] = _Server(engine, connection, lock_connection)
        while len(self._servers) > POOL_SERVERS:
            self.discard(next(iter(self._servers)))
        return self._servers[url]

    def settle(self, url: DatabaseURL) -> None:
        """Leave the server's connection ready for the next tenant, or close it if it is broken."""
        kept = self._servers.get(url)
        if kept is None:
            return
        try:
            if kept.connection.in_transaction():
                kept.connection.rollback()
        except Exception:
            self.discard(url)
            return
        if kept.connection.invalidated:
            self.discard(url)

    def discard(self, url: DatabaseURL) -> None:
        kept = self._servers.pop(url, None)
        if kept is not None:
            for connection in (kept.connection, kept.lock_connection):
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.close()
            kept.engine.dispose()

    def close(self) -> None:
        for url in list(self._servers):
            self.discard(url)


@contextmanager
def _connected(url: DatabaseURL, settings: Settings, pool: Pool | None) -> Iterator[Connection]:
    """The session's connection; a server that goes away while it is used is reported as such
    (exit 4), not as whatever statement happened to notice."""
    from sqlalchemy.exc import DBAPIError

    try:
        with _connection(url, settings, pool) as connection:
            yield connection
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        raise database.lost(url, settings.schema, exc) from None


@contextmanager
def _connection(url: DatabaseURL, settings: Settings, pool: Pool | None) -> Iterator[Connection]:
    if pool is None:
        engine = database.create_engine_for(url)
        try:
            with database.connect(engine) as connection:
                if settings.schema is not None:
                    database.enter_schema(connection, settings.schema)
                yield connection
        finally:
            engine.dispose()
        return
    connection = pool.server(url).connection
    try:
        if settings.schema is not None:
            database.enter_schema(connection, settings.schema)
        yield connection
    finally:
        pool.settle(url)


@contextmanager
def reading(settings: Settings, pool: Pool | None = None) -> Iterator[Session]:
    url = database.parse_url(settings.database_url, settings.root)
    with _connected(url, settings, pool) as connection:
        yield Session(settings, url, connection)


@contextmanager
def writing(
    settings: Settings, on_progress: ProgressCallback = ignore, pool: Pool | None = None
) -> Iterator[Session]:
    """The session of every command that changes the schema: the one place that serialises them.

    The lock is taken before the session reads any state, so a process that waited for another
    one sees what that one did (typically: nothing left to migrate).
    """
    url = database.parse_url(settings.database_url, settings.root)

    def waiting(holder: str) -> None:
        on_progress(LockWaiting(holder, settings.lock_timeout))

    lock_connection = pool.server(url).lock_connection if pool is not None else None
    request = locks.LockRequest(
        url, settings.lock_timeout, waiting, shown(url, settings.schema), settings.schema, lock_connection
    )
    with locks.migration_lock(request) as verify, _connected(url, settings, pool) as connection:
        database.check_writable(connection)
        yield Session(settings, url, connection, verify)
