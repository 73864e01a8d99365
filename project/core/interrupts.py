"""Ctrl-C and SIGTERM during migrations: cancel the running statement on the server, and never let
the interruption land between a migration and its bookkeeping.

Why this is needed: a driver blocked in a long statement (psycopg2 inside libpq, PyMySQL on its
socket, sqlite3 in its VM) holds Python's signal handler back until the statement ends, maybe hours
later; and a KeyboardInterrupt raised at an arbitrary bytecode lands inside SQLAlchemy (which then
invalidates the connection and the batch with it), between RELEASE SAVEPOINT and the version
update, or during the COMMIT, so the report and the database disagree.

How: signals are *deferred* for the whole run of migrations, except inside a migration's own body
(upgrade()/downgrade()). There, the C-level handler writes to a wakeup fd even while the main
thread is blocked in the driver; a daemon thread reads it and cancels the running statement
(psycopg2 `cancel()`, `KILL QUERY` from a second MariaDB connection, sqlite3 `interrupt()`), so the
driver returns with an error that the body turns into KeyboardInterrupt. In the body's own Python
code the handler raises at once; inside library code it waits for the next statement or the end
of the body. A signal that arrives during bookkeeping or COMMIT is acted on afterwards, and one
that arrives once the run is over no longer changes the outcome. psycopg2.extras.wait_select was
the alternative for PostgreSQL: it covers neither MariaDB nor SQLite, is process-wide, and runs
every statement through a Python select loop (slower for batches of small migrations).
"""

from __future__ import annotations

import _thread
import contextlib
import os
import select
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from manage_migrations.errors import Interrupted
from manage_migrations.formatting import plural
from manage_migrations.program import resolve_command

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
# While a body is running and a signal is still unanswered, the watcher cancels again and re-runs
# the Python handler this often: the main thread may have been in library code the first time.
CHASE_SECONDS = 0.1
# Code in these packages (and this module) is never interrupted half way: SQLAlchemy invalidates
# a connection that sees a KeyboardInterrupt, and Alembic's autocommit_block loses its transaction.
LIBRARIES = frozenset({"sqlalchemy", "alembic", "psycopg2", "psycopg", "pymysql", "sqlite3"})


class _State:
    """Process-wide, since signals are: written by the handler, the watcher and the main thread."""

    def __init__(self) -> None:
        self.requested: int | None = None
        self.deferring = False
        self.body_active = False
        self.in_statement = False
        self.cancel: Callable[[], None] | None = None
        # Held by the watcher while it cancels, and by the main thread when a statement or a body
        # ends, so a cancel can only reach a statement of the migration it was meant for.
        self.lock = threading.Lock()


_state = _State()


class StatementRefused(Exception):
    """Raised instead of sending a migration's next statement once a signal has arrived."""


def install() -> None:
    """Take over SIGINT and SIGTERM for this process (main thread, once, from cli.main)."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    # Blocked while the watcher starts, so it inherits the mask: signals go to the main thread,
    # whose blocking system calls they interrupt.
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        threading.Thread(target=_watch, args=(read_fd,), name="interrupts", daemon=True).start()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    for signum in SIGNALS:
        signal.signal(signum, _on_signal)


def after_fork() -> None:
    """A forked fan-out worker: state and watcher of its own (the parent's watcher thread did not
    come along), and signals deferred from the start, like the parent's during the fan-out."""
    global _state
    _state = _State()
    install()
    defer()


def signalled() -> int | None:
    """The signal that asked this process to stop, if one did: a loop over tenants asks between
    tenants and starts no new one."""
    return _state.requested


def finish() -> None:
    """The command is over: a signal now could only turn its result into a bare -2 or -15."""
    defer()
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


def defer() -> None:
    """Hold signals back until the next Guard, which then reports where the database stands."""
    _state.deferring = True


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _state.requested is None:
        _state.requested = signum
    if _state.deferring and not _raisable(frame):
        return
    raise KeyboardInterrupt


def _raisable(frame: FrameType | None) -> bool:
    """Whether the main thread is in a migration body's own code (not a library it called)."""
    if not _state.body_active or _state.in_statement:
        return False
    own_frames = 0
    while frame is not None:
        if frame.f_code is _BODY_CODE:
            return own_frames > 0
        name = frame.f_globals.get("__name__", "")
        if name == __name__ or name.partition(".")[0] in LIBRARIES:
            return False
        own_frames += 1
        frame = frame.f_back
    return False


def _watch(read_fd: int) -> None:
    chasing = False
    while True:
        ready = select.select([read_fd], [], [], CHASE_SECONDS if chasing else None)[0]
        if ready:
            try:
                received = os.read(read_fd, 64)
            except BlockingIOError:
                received = b""
            for signum in received:
                if signum in SIGNALS and _state.requested is None:
                    _state.requested = signum
        if _state.requested is None:
            continue
        chasing = _cancel_statement()
        if chasing and not ready:
            _thread.interrupt_main(signal.Signals(_state.requested))


def _cancel_statement() -> bool:
    """Cancel the body's running statement, if any; whether a body is still running."""
    with _state.lock:
        if _state.body_active and _state.in_statement and _state.cancel is not None:
            # The server may be gone; the rollback that follows will say so.
            with contextlib.suppress(Exception):
                _state.cancel()
        return _state.body_active


def _canceller(connection: Connection) -> Callable[[], None] | None:
    """What stops the connection's running statement from another thread."""
    driver = connection.connection.driver_connection
    backend = connection.dialect.name
    if backend == "postgresql":
        return driver.cancel  # type: ignore[union-attr]
    if backend == "sqlite":
        return driver.interrupt  # type: ignore[union-attr]
    if backend in ("mysql", "mariadb"):
        thread_id = int(driver.thread_id())  # type: ignore[union-attr]
        engine = connection.engine

        def kill_query() -> None:
            killer = engine.raw_connection()
            try:
                cursor = killer.cursor()
                cursor.execute(f"KILL QUERY {thread_id}")
                cursor.close()
            finally:
                killer.close()

        return kill_query
    return None


def transaction_alive(connection: Connection) -> bool:
    """False once SQLite ended the transaction itself: an interrupted write statement rolls back
    the whole transaction there, savepoints and all."""
    if connection.dialect.name != "sqlite":
        return True
    return bool(connection.connection.driver_connection.in_transaction)  # type: ignore[union-attr]


class Guard:
    """Signals deferred for one run of migrations; only the bodies of `interruptible` steps can be
    interrupted. Leaving it with a signal still unanswered raises KeyboardInterrupt."""

    def __init__(self, connection: Connection, *, batch: bool) -> None:
        self.connection = connection
        self.batch = batch
        self.current: int | None = None
        self.entered: set[int] = set()
        self.sent: dict[int, int] = {}
        self.lost_batch: int | None = None

    def body(self, index: int, function: Callable[[], Any]) -> Callable[[], None]:
        """The migration function of step `index`, as the only interruptible part of the run."""
        return _Body(self, index, function)

    @property
    def signalled(self) -> bool:
        return _state.requested is not None

    def __enter__(self) -> Guard:
        from sqlalchemy import event

        defer()
        if _state.requested is not None:
            raise KeyboardInterrupt
        event.listen(self.connection, "before_cursor_execute", self._before_statement)
        event.listen(self.connection, "after_cursor_execute", self._after_statement)
        with _state.lock:
            _state.cancel = _canceller(self.connection)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        from sqlalchemy import event

        event.remove(self.connection, "before_cursor_execute", self._before_statement)
        event.remove(self.connection, "after_cursor_execute", self._after_statement)
        with _state.lock:
            _state.cancel = None
            _state.body_active = _state.in_statement = False
        # Deferred past the COMMIT: what was committed stays, and the caller reports it.
        if exc_type is None and _state.requested is not None:
            raise KeyboardInterrupt

    def _before_statement(self, *_: Any) -> None:
        with _state.lock:
            if not _state.body_active:
                return
            _state.in_statement = True
        if _state.requested is not None:
            raise StatementRefused("interrupted")
        assert self.current is not None
        self.sent[self.current] = self.sent.get(self.current, 0) + 1

    def _after_statement(self, *_: Any) -> None:
        with _state.lock:
            _state.in_statement = False

    def _enter_body(self, index: int) -> None:
        self.current = index
        with _state.lock:
            _state.body_active = _state.requested is None
        if not _state.body_active:
            raise KeyboardInterrupt
        self.entered.add(index)

    def _leave_body(self, index: int, failed: bool) -> bool:
        """End the body; whether a signal arrived (then the step is treated as interrupted)."""
        with _state.lock:
            _state.body_active = _state.in_statement = False
        if _state.requested is None:
            return False
        if failed and self.batch and not transaction_alive(self.connection):
            self.lost_batch = index
        return True


class _Body:
    """A step's migration function, run as the only interruptible part of the run."""

    def __init__(self, guard: Guard, index: int, function: Callable[..., Any]) -> None:
        self.guard = guard
        self.index = index
        self.function = function

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.guard._enter_body(self.index)
        try:
            self.function(*args, **kwargs)
        except BaseException as exc:
            if self.guard._leave_body(self.index, failed=True):
                # The driver's "canceled" error, or anything else the signal caused.
                raise KeyboardInterrupt from exc
            raise
        if self.guard._leave_body(self.index, failed=False):
            raise KeyboardInterrupt


_BODY_CODE = _Body.__call__.__code__


def interrupted(
    *,
    name: str | None,
    guard: Guard,
    index: int,
    finished: int,
    where: tuple[str, ...],
    transactional: bool,
    outside_revision: str | None = None,
    statements: tuple[str, ...] = (),
) -> Interrupted:
    """What an interrupted run tells the user, decided from what was committed.

    `name` is the step the signal stopped (None: it came after the last one was committed),
    `outside_revision` is set when that step ran outside a transaction and sent statements.
    """
    at = ", ".join(where) or "no migration (empty history)"
    done = plural(finished, "migration")
    if name is None:
        return Interrupted(
            f"interrupted after the last migration had been committed; {done} finished. "
            f"The database is at {at}."
        )
    if index not in guard.entered:
        return Interrupted(
            f"interrupted before {name} started; {done} finished before it. The database is at {at}."
        )
    if guard.lost_batch is not None:
        return Interrupted(
            f"interrupted during {name}; the interrupted statement ended SQLite's transaction, so "
            f"{name} and the {plural(guard.lost_batch, 'migration')} before it in this batch were "
            "rolled back. "
            f"The database is at {at}."
        )
    if outside_revision is not None:
        return Interrupted(
            f"interrupted during {name}, which runs outside a transaction: what it did before the signal "
            f"stays, so it is recorded as failed; {done} finished before it. "
            f"The database is at {at}.",
            hint="inspect the objects it creates or changes, undo or finish its work by hand, then run "
            f"`{resolve_command(outside_revision)}`",
        )
    if not transactional:
        ran = "; ".join(statements)
        return Interrupted(
            f"interrupted during {name} on a database that commits DDL immediately, so it was not rolled "
            f"back; {done} finished before it. The version table is at {at}.",
            hint=(f"these statements of it ran and may have taken effect: {ran}; " if ran else "")
            + "check the database before migrating again",
        )
    return Interrupted(
        f"interrupted during {name}, which was rolled back; {done} finished before it. "
        f"The database is at {at}."
    )
