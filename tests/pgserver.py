"""A PostgreSQL server of the suite's own, beside the one at 127.0.0.1:5432: tests that need a second
server, or one they may stop in the middle of a run, start it from the installed binaries.

    server = PostgresServer()   # initdb in a fresh temporary directory, started on a free
                                # 127.0.0.1 port, database `test` created: server.url works
    server.stop("immediate")    # the server goes away as in a crash (or "fast": a clean shutdown)
    server.start()              # back on the same port, server.url still valid
    server.create_database("tenant_a")  # returns its URL; drop_database("tenant_a")
    server.cleanup()            # stop it and remove the directory (also at exit, also after a crash)

Fixtures (registered by conftest.py's pytest_plugins): `second_postgres`, one server per xdist
worker for the whole session, never to be stopped by a test; `disposable_postgres`, a server of
the test's own that it may stop and start. A server that cannot start skips the test with the
reason, or fails it under CI=true.

The data directory is `<tmp>/manage-migrations-pg-*`, with the PID of the process that owns it in
`owner.pid`: a process that dies without running its exit handlers (SIGKILL, os._exit) leaves its
server running, and the next PostgresServer stops and removes it (`reap_stale_servers`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

PREFIX = "manage-migrations-pg-"
OS_USER = "postgres"  # initdb and postgres refuse to run as root: they run as this user then
SUPERUSER = "postgres"
DATABASE = "test"
HOST = "127.0.0.1"
BINARIES = ("initdb", "postgres")
# Settings for a throwaway server: no fsync (it lives for a test run), no socket in /var/run.
# synchronous_commit stays on: with fsync off it costs one write() per commit (5000 commits took
# 0.6-0.9 s either way), while off, a commit may stay in shared memory for up to three times
# wal_writer_delay (600 ms), and stop("immediate") lost every one of 20 commits made just before
# it (CREATE TABLE included): a migration that reported DONE would be gone after the restart.
SETTINGS = {
    "listen_addresses": f"'{HOST}'",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "on",
    "shared_buffers": "'32MB'",
    "log_line_prefix": "'%m [%p] '",
}
PORT_ATTEMPTS = 8
TIMEOUT = 60  # seconds for initdb, and for pg_ctl to see the server up or down

StopMode = Literal["smart", "fast", "immediate"]
# The postmaster's shutdown signals (what `pg_ctl stop --mode` sends).
STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


class PostgresUnavailable(RuntimeError):
    """No server can be started here: binaries or the `postgres` OS user are missing, or initdb or
    pg_ctl failed (the message carries their output and the end of the server log)."""


def find_bindir() -> Path:
    """The directory with initdb and postgres: $TEST_POSTGRES_BINDIR, `pg_config --bindir`,
    the newest /usr/lib/postgresql/<version>/bin, or the PATH, the first that has all three."""
    candidates: list[Path] = []
    if os.environ.get("TEST_POSTGRES_BINDIR"):
        candidates.append(Path(os.environ["TEST_POSTGRES_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            candidates.append(Path(found.stdout.strip()))
    # Debian's pg_config may come from a libpq of another version than the server's.
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(versions, key=lambda path: _version_key(path.parent.name), reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for candidate in candidates:
        if all(os.access(candidate / name, os.X_OK) for name in BINARIES):
            return candidate
    looked = ", ".join(str(path) for path in candidates) or "nothing found"
    raise PostgresUnavailable(
        f"PostgreSQL server binaries ({', '.join(BINARIES)}) not found; looked in: {looked}. "
        "Install the server (Debian: apt-get install postgresql) or set TEST_POSTGRES_BINDIR"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


def free_port() -> int:
    """A TCP port nobody listens on at this moment (another process may still take it before the
    server binds it: start() then tries another one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _alive(pid: int) -> bool:
    """Whether `pid` runs; a zombie (exited, not yet reaped by its parent or by PID 1) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def postmaster_pid(datadir: Path) -> int | None:
    """The PID of the postmaster serving `datadir` (from its postmaster.pid), or None when none
    runs; a PID that now belongs to another process (its command line names another directory)
    is not taken for it."""
    try:
        pid = int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if os.fsencode(datadir) in command else None


def _os_user() -> pwd.struct_passwd | None:
    """The account initdb and postgres run under: `postgres` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, and initdb and postgres refuse root; there is no OS user {OS_USER!r} "
            "to run them as (Debian's postgresql package creates it)"
        ) from None


def _environment(account: pwd.struct_passwd | None) -> dict[str, str]:
    """Our environment without PG* variables (PGPORT, PGDATA... would change what the binaries do)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    if account is not None:
        env.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
    return env


def _run(
    command: list[str], cwd: Path, account: pwd.struct_passwd | None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL binary, as `account` when we are root."""
    return subprocess.run(
        command,
        cwd=cwd,
        env=_environment(account),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        # What `setpriv --reuid=postgres --regid=postgres --clear-groups` does, without a PAM session.
        user=account.pw_uid if account else None,
        group=account.pw_gid if account else None,
        extra_groups=[] if account else None,
    )


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return (result.stdout + result.stderr).strip()


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 only, with trust
    authentication for the superuser `postgres` and an empty database `test`.

    The constructor runs initdb and starts the server; stop() and start() may follow any number of
    times, on the same port, so `url` stays valid across a stop and a start."""

    def __init__(
        self, bindir: Path | None = None, *, label: str = "", settings: dict[str, str] | None = None
    ) -> None:
        """`label` goes into the directory's name; `settings` (postgresql.conf lines, values
        quoted as there) are added to SETTINGS or replace some of them."""
        reap_stale_servers()
        self.settings = {**SETTINGS, **(settings or {})}
        self.bindir = bindir or find_bindir()
        self.account = _os_user()
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{label + '-' if label else ''}"))
        atexit.register(self.cleanup)
        try:
            self._prepare()
        except BaseException:
            self.cleanup()
            raise

    # -- where things are

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        """postgresql://postgres@127.0.0.1:PORT/test (the port is chosen by the first start())."""
        return self.url_for(DATABASE)

    def url_for(self, database: str) -> str:
        if self.port is None:
            raise RuntimeError("the server has no port before its first start()")
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        """The postmaster's PID while it runs, else None."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    @property
    def running(self) -> bool:
        return self.pid is not None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- life cycle

    def _prepare(self) -> None:
        (self.root / "owner.pid").write_text(f"{os.getpid()}\n")
        self.socket_dir.mkdir()
        if self.account is not None:
            for path in (self.root, self.socket_dir):
                os.chown(path, self.account.pw_uid, self.account.pw_gid)
        initdb = [
            str(self.bindir / "initdb"),
            *("--pgdata", str(self.datadir), "--username", SUPERUSER, "--auth", "trust"),
            *("--encoding", "UTF8", "--locale", "C", "--no-sync"),
        ]
        result = self._run(initdb)
        if result.returncode != 0:
            raise PostgresUnavailable(f"initdb failed (exit {result.returncode}):\n{_output(result)}")
        settings = {**self.settings, "unix_socket_directories": f"'{self.socket_dir}'"}
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/pgserver.py\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        self.start()
        self.create_database(DATABASE)

    def _run(self, command: list[str], timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        return _run(command, self.root, self.account, timeout)

    def start(self) -> None:
        """Start the server and wait until it accepts connections. The first start picks a free
        port, and another one if a process took it meanwhile; later starts keep that port."""
        if self.running:
            return
        attempts = PORT_ATTEMPTS if self.port is None else 1
        for attempt in range(1, attempts + 1):
            port = self.port or free_port()
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            if self._launch(port):
                self.port = port
                return
            log = self.log()[log_start:]
            if "could not create any TCP/IP sockets" in log and attempt < attempts:
                continue  # another process bound the port between free_port() and the server
            raise PostgresUnavailable(
                f"postgres did not start on port {port}; its log:\n{log.strip()[-3000:]}"
            )

    def _launch(self, port: int) -> bool:
        """Run the postmaster as our own child, as pg_ctl would (own session, output to the log),
        and wait until postmaster.pid says "ready"; False if it exits first. pg_ctl is not used:
        the postmaster it starts belongs to PID 1, which on this kind of machine reaps its children
        only every few seconds, so a server stopped by pg_ctl lingers as a zombie in `ps`; ours is
        gone when stop() returns."""
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(port)],
                cwd=self.root,
                env=_environment(self.account),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal goes to pytest, not to the server
                user=self.account.pw_uid if self.account else None,
                group=self.account.pw_gid if self.account else None,
                extra_groups=[] if self.account else None,
            )
        self._process = process
        lock_file = self.datadir / "postmaster.pid"
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._process = None
                return False
            try:
                lines = lock_file.read_text().splitlines()
            except FileNotFoundError:
                lines = []
            # Line 1 is the postmaster's PID, line 8 its state (what `pg_ctl --wait start` reads).
            if len(lines) >= 8 and lines[0].strip() == str(process.pid) and lines[7].strip() == "ready":
                return True
            time.sleep(0.01)
        self._halt(signal.SIGKILL)
        raise PostgresUnavailable(
            f"postgres was not ready within {TIMEOUT} s; its log:\n{self.log()[-3000:]}"
        )

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server and wait until it is gone: "fast" ends the sessions and shuts down
        cleanly, "immediate" kills everything at once as in a crash (the next start recovers),
        "smart" waits for the sessions to end. Nothing if it is not running."""
        self._halt(STOP_SIGNALS[mode])

    def _halt(self, signum: int) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)
        try:
            process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def cleanup(self) -> None:
        """Stop the server at once and remove its directory; safe to call more than once."""
        atexit.unregister(self.cleanup)
        try:
            self.stop("immediate")
        finally:
            if self._process is not None:
                self._process.kill()
                self._process.wait()
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<PostgresServer {state} port={self.port} root={self.root}>"

    # -- databases

    @contextlib.contextmanager
    def admin(self) -> Iterator[sa.Connection]:
        """An autocommit connection as `postgres` to the `postgres` database (pooling off)."""
        engine = sa.create_engine(
            self.url_for("postgres").replace("postgresql://", "postgresql+psycopg2://", 1),
            isolation_level="AUTOCOMMIT",
            poolclass=NullPool,
        )
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()

    def create_database(self, name: str) -> str:
        """CREATE DATABASE name; returns its URL."""
        with self.admin() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {_quote(name)}")
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS name, ending the sessions still connected to it."""
        with self.admin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def reap_stale_servers(directory: Path | None = None) -> list[Path]:
    """Stop and remove the servers of processes that died without cleaning up, in `directory`
    (default: the temporary directory); returns their directories. A server whose owner still
    runs (another xdist worker, another test run on this machine) is left alone."""
    reaped = []
    for root in Path(directory or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            owner = int((root / "owner.pid").read_text().strip())
        except (OSError, ValueError):
            # Not written yet (being created right now) or not ours: only very old ones go.
            if not root.is_dir() or time.time() - root.stat().st_mtime < 3600:
                continue
            owner = 0
        if owner and _alive(owner):
            continue
        pid = postmaster_pid(root / "data")
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)  # the postmaster's immediate shutdown
            _wait_gone(pid)
        shutil.rmtree(root, ignore_errors=True)
        reaped.append(root)
    return reaped


def _wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.05)


# -- pytest fixtures


def start_or_give_up(label: str, settings: dict[str, str] | None = None) -> PostgresServer:
    """A started server, or the test skipped (failed under CI=true) with the reason."""
    try:
        return PostgresServer(label=label, settings=settings)
    except PostgresUnavailable as exc:
        message = f"cannot start a PostgreSQL server of the suite's own: {exc}"
        # conftest.IN_CI's rule, read here: this module also serves test directories without it.
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def second_postgres() -> Iterator[PostgresServer]:
    """A second PostgreSQL server for the whole session (one per xdist worker, on its own port).
    Shared by tests: create a database of the test's own on it, and never stop it."""
    server = start_or_give_up(f"{_worker()}-session")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def disposable_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, which it may stop and start; gone after the test."""
    server = start_or_give_up(_worker())
    try:
        yield server
    finally:
        server.cleanup()
