"""The migration lock: one schema-changing command at a time per database, with a bounded wait.

PostgreSQL: a session-level advisory lock on a connection of its own (it survives the commits
of migrations that run outside a transaction); MariaDB/MySQL: GET_LOCK; SQLite: flock on a
file beside the database. The server or the kernel frees each of them when the holder dies.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from manage_migrations import database
from manage_migrations.errors import LockTimeout

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from manage_migrations.core.url import DatabaseURL

LOCK_NAME = "manage.py migrations"


def lock_key(scope: str | None) -> int:
    """The same 64-bit key in every process; advisory locks are scoped to one database already,
    and a tenant schema (`scope`) gets a key of its own so tenants migrate side by side."""
    name = LOCK_NAME if scope is None else f"{LOCK_NAME} {scope}"
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


LOCK_KEY = lock_key(None)
POLL_SECONDS = 0.05
TIMEOUTS_OFF = "manage.lock_timeouts_off"
MYSQL_LOCK_NAME_LENGTH = 64

OnWait = Callable[[str], None]
Verify = Callable[[], None]


def always_held() -> None:
    """An flock (or no lock at all, for in-memory SQLite) cannot be lost while we live."""


def _lost(shown_url: str, detail: str) -> LockTimeout:
    return LockTimeout(
        f"lost the migration lock on {shown_url} before committing ({detail}); this run's changes were "
        "rolled back",
        hint="the server closed the lock's connection (idle_session_timeout, or an administrator); "
        "run migrate again",
    )


def client_name() -> str:
    """Who we are, as other processes will see the holder of the lock."""
    return f"manage.py pid {os.getpid()} on {socket.gethostname()}"


def lock_file_for(url: DatabaseURL) -> Path | None:
    """The file beside an SQLite database that carries its lock; None for in-memory databases."""
    path = url.sqlite_file
    return path.with_name(path.name + ".lock") if path is not None else None


@dataclass(frozen=True)
class LockRequest:
    """Which lock, how long to wait, and how to name the database in messages. `scope` is a
    tenant's schema; `connection`, when given, is an AUTOCOMMIT connection kept for many locks
    (a fan-out worker's), used instead of opening one."""

    url: DatabaseURL
    timeout: float
    on_wait: OnWait
    shown_url: str
    scope: str | None = None
    connection: Connection | None = None


@contextmanager
def migration_lock(request: LockRequest) -> Iterator[Verify]:
    """Hold the migration lock for the body; wait at most `timeout` seconds, then LockTimeout.
    Yields a check that raises LockTimeout if the lock was lost meanwhile (run before COMMIT)."""
    backend = request.url.backend
    lock: contextlib.AbstractContextManager[Verify]
    if backend == "postgresql":
        lock = _postgres_lock(request)
    elif backend in ("mysql", "mariadb"):
        lock = _mysql_lock(request)
    elif (path := lock_file_for(request.url)) is not None:
        lock = _file_lock(path, request.timeout, request.on_wait, request.shown_url)
    else:
        lock = contextlib.nullcontext(always_held)
    with lock as verify:
        yield verify


def _timed_out(timeout: float, shown_url: str, holder: str) -> LockTimeout:
    return LockTimeout(
        f"gave up after {timeout:g} s waiting for the migration lock on {shown_url}, held by {holder}; "
        "nothing was changed",
        hint="another migrate or rollback is running: let it finish, or raise --lock-timeout",
    )


@contextmanager
def _lock_connection(request: LockRequest) -> Iterator[Connection]:
    if request.connection is not None:
        yield request.connection
        return
    engine = database.create_engine_for(request.url, application_name=client_name()[:63])
    try:
        with database.connect(engine) as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")
    finally:
        engine.dispose()


POSTGRES_HOLDER = """
SELECT a.application_name, a.pid, host(a.client_addr)
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((l.classid::bigint << 32) | l.objid::bigint) = %(key)s
"""


def _postgres_holder(connection: Connection, key: int) -> str:
    row = connection.exec_driver_sql(POSTGRES_HOLDER, {"key": key}).first()
    if row is None:
        return "a session that has just released it"
    application, backend_pid, address = row
    where = f"server process {backend_pid}" + (f", client {address}" if address else "")
    return f"{application or 'an unnamed client'} ({where})"


POSTGRES_HELD = """
SELECT EXISTS (SELECT 1 FROM pg_locks l
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.pid = pg_backend_pid()
  AND ((l.classid::bigint << 32) | l.objid::bigint) = %(key)s)
"""


def _verifier(
    connection: Connection, statement: str, parameters: Mapping[str, object], shown_url: str
) -> Verify:
    def verify() -> None:
        try:
            held = connection.exec_driver_sql(statement, parameters).scalar()
        except Exception as exc:
            raise _lost(shown_url, type(exc).__name__) from None
        if not held:
            raise _lost(shown_url, "the server no longer lists it as ours")

    return verify


@contextmanager
def _postgres_lock(request: LockRequest) -> Iterator[Verify]:
    from sqlalchemy.exc import OperationalError

    timeout, shown_url = request.timeout, request.shown_url
    with _lock_connection(request) as connection:
        # The lock lives as long as this idle connection: a database-wide idle_session_timeout
        # (or statement_timeout) must not end it while migrations run on the other connection.
        # A fan-out worker's lock connection serves many tenants: set these once.
        if not connection.info.get(TIMEOUTS_OFF):
            for setting in (
                "idle_session_timeout",
                "statement_timeout",
                "idle_in_transaction_session_timeout",
            ):
                with contextlib.suppress(Exception):
                    connection.exec_driver_sql(f"SET {setting} = 0")
            connection.info[TIMEOUTS_OFF] = True
        key = {"key": lock_key(request.scope)}
        if not connection.exec_driver_sql("SELECT pg_try_advisory_lock(%(key)s)", key).scalar():
            holder = _postgres_holder(connection, key["key"])
            request.on_wait(holder)
            # lock_timeout 0 would mean "wait forever": the smallest real wait instead. A
            # statement_timeout from the URL's options must not cut the wait short: this
            # connection only ever waits for the lock.
            milliseconds = max(1, round(timeout * 1000))
            connection.exec_driver_sql(f"SET lock_timeout = {milliseconds}")
            connection.exec_driver_sql("SET statement_timeout = 0")
            try:
                connection.exec_driver_sql("SELECT pg_advisory_lock(%(key)s)", key)
            except OperationalError as exc:
                # psycopg2 calls the SQLSTATE pgcode, psycopg 3 sqlstate.
                code = getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
                if code != "55P03":
                    raise
                raise _timed_out(timeout, shown_url, holder) from None
        try:
            yield _verifier(connection, POSTGRES_HELD, key, shown_url)
        finally:
            with contextlib.suppress(Exception):
                connection.exec_driver_sql("SELECT pg_advisory_unlock(%(key)s)", key)


def _mysql_holder(connection: Connection, name: str) -> str:
    from sqlalchemy import text

    holder_id = connection.execute(text("SELECT IS_USED_LOCK(:name)"), {"name": name}).scalar()
    if holder_id is None:
        return "a session that has just released it"
    row = connection.execute(
        text("SELECT USER, HOST FROM information_schema.PROCESSLIST WHERE ID = :id"), {"id": holder_id}
    ).first()
    who = f" ({row[0]}@{row[1]})" if row else ""
    return f"connection {holder_id}{who}"


@contextmanager
def _mysql_lock(request: LockRequest) -> Iterator[Verify]:
    from sqlalchemy import text

    timeout, shown_url = request.timeout, request.shown_url
    name = f"{LOCK_NAME} {request.scope or request.url.database}"[:MYSQL_LOCK_NAME_LENGTH]
    with _lock_connection(request) as connection:
        acquire = text("SELECT GET_LOCK(:name, :timeout)")
        if connection.execute(acquire, {"name": name, "timeout": 0}).scalar() != 1:
            holder = _mysql_holder(connection, name)
            request.on_wait(holder)
            if connection.execute(acquire, {"name": name, "timeout": timeout}).scalar() != 1:
                raise _timed_out(timeout, shown_url, holder)
        try:
            yield _verifier(
                connection, "SELECT IS_USED_LOCK(%(name)s) = CONNECTION_ID()", {"name": name}, shown_url
            )
        finally:
            with contextlib.suppress(Exception):
                connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})


@contextmanager
def _file_lock(path: Path, timeout: float, on_wait: OnWait, shown_url: str) -> Iterator[Verify]:
    import fcntl

    if not path.parent.is_dir():
        # database.connect names the missing directory; there is nothing to lock yet.
        yield always_held
        return
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        holder: str | None = None
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if holder is None:
                    holder = path.read_text(encoding="utf-8").strip() or "another process"
                    on_wait(holder)
                if time.monotonic() >= deadline:
                    raise _timed_out(timeout, shown_url, holder) from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, client_name().encode() + b"\n", 0)
        try:
            yield always_held
        finally:
            os.ftruncate(descriptor, 0)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
