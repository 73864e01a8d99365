"""A session: the parsed URL, one engine and connection, and (for commands that change the schema)
the migration lock, taken before any state is read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from manage_migrations import database, locks
from manage_migrations.core.events import LockWaiting, ProgressCallback, ignore

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from manage_migrations.core.url import DatabaseURL
    from manage_migrations.settings import Settings


@dataclass
class Session:
    settings: Settings
    url: DatabaseURL
    connection: Connection
    verify_lock: locks.Verify = locks.always_held

    @property
    def shown_url(self) -> str:
        return self.url.display

    @property
    def backend(self) -> str:
        return self.url.backend

    def scrub(self, text: str) -> str:
        return self.url.scrub(text)


@contextmanager
def reading(settings: Settings) -> Iterator[Session]:
    url = database.parse_url(settings.database_url, settings.root)
    engine = database.create_engine_for(url)
    try:
        with database.connect(engine) as connection:
            yield Session(settings, url, connection)
    finally:
        engine.dispose()


@contextmanager
def writing(settings: Settings, on_progress: ProgressCallback = ignore) -> Iterator[Session]:
    """The session of every command that changes the schema: the one place that serialises them.

    The lock is taken before the session reads any state, so a process that waited for another
    one sees what that one did (typically: nothing left to migrate).
    """
    url = database.parse_url(settings.database_url, settings.root)

    def waiting(holder: str) -> None:
        on_progress(LockWaiting(holder, settings.lock_timeout))

    shown = url.display
    with locks.migration_lock(url, settings.lock_timeout, waiting, shown) as verify:
        engine = database.create_engine_for(url)
        try:
            with database.connect(engine) as connection:
                database.check_writable(connection)
                yield Session(settings, url, connection, verify)
        finally:
            engine.dispose()
