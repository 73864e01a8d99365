"""The PostgreSQL servers the suite starts itself (tests/pgserver.py): migrate through the CLI on a
second server, a server going away and coming back, two servers that really are two, and
nothing left behind (no process, no directory), also when a test fails or its process dies."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pgserver
import pytest
import sqlalchemy as sa
from conftest import Project, fresh_database, make_project
from helpers import create_table_revision
from pgserver import PostgresServer

TESTS = Path(__file__).resolve().parent


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1), poolclass=sa.NullPool)


def _tables(url: str) -> set[str]:
    engine = _engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _scalar(url: str, sql: str) -> object:
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql(sql).scalar()
    finally:
        engine.dispose()


def _processes_of(root: Path) -> list[str]:
    """The command lines of running processes that name `root` (a postmaster's names its -D)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(root) in command:
            found.append(command)
    return found


@pytest.fixture
def second_database(second_postgres: PostgresServer) -> Iterator[str]:
    """An empty database of this test's own on the session's second server."""
    name = f"mt_{uuid.uuid4().hex[:12]}"
    url = second_postgres.create_database(name)
    try:
        yield url
    finally:
        second_postgres.drop_database(name)


def test_migrate_on_the_second_server(
    second_postgres: PostgresServer, second_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert second_database.startswith(f"postgresql://postgres@127.0.0.1:{second_postgres.port}/mt_")
    assert second_postgres.port != 5432
    project = make_project(tmp_path, second_database, monkeypatch)
    first = create_table_revision(project.migrations, 1, "alpha", None)
    second = create_table_revision(project.migrations, 2, "beta", first)

    result = project.run("migrate")

    assert result.exit_code == 0, result.output
    assert "2 migrations applied in" in result.stdout
    assert {"alpha", "beta", "alembic_version"} <= _tables(second_database)
    assert project.version() == {second}
    status = project.run("migrate:status")
    assert status.exit_code == 0, status.output
    assert f"127.0.0.1:{second_postgres.port}" in status.stdout.splitlines()[0]
    assert re.search(r"^2026_01_01_000001_create_alpha_table +Ran +1 ", status.stdout, re.M)
    assert status.stdout.splitlines()[-1] == "2 ran, 0 pending."


def _assert_unreachable(project: Project, server: PostgresServer, *args: str) -> None:
    result = project.run(*args)
    assert result.exit_code == 4, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f'error: cannot connect to {server.url}: connection to server at "127.0.0.1", '
        f"port {server.port} failed: Connection refused",
        f"hint: is the server running and accepting TCP connections on 127.0.0.1:{server.port}?",
    ]


def test_a_server_that_goes_away_is_unreachable_until_it_is_back(
    disposable_postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = disposable_postgres
    project = make_project(tmp_path, server.url, monkeypatch)
    first = create_table_revision(project.migrations, 1, "alpha", None)
    assert project.run("migrate").exit_code == 0
    assert "alpha" in project.tables()

    server.stop(mode="immediate")
    assert not server.running
    second = create_table_revision(project.migrations, 2, "beta", first)
    _assert_unreachable(project, server, "migrate")
    _assert_unreachable(project, server, "migrate:status")

    server.start()
    # What was committed before the crash is still there (synchronous_commit stays on).
    assert project.version() == {first}
    result = project.run("migrate")
    assert result.exit_code == 0, result.output
    assert "2026_01_01_000002_create_beta_table" in result.stdout
    assert {"alpha", "beta"} <= project.tables()
    assert project.version() == {second}
    assert [(revision, batch) for revision, _, batch in project.ledger()] == [(first, 1), (second, 2)]


def test_an_immediate_stop_breaks_open_connections_and_keeps_commits(
    disposable_postgres: PostgresServer,
) -> None:
    engine = _engine(disposable_postgres.url)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("CREATE TABLE kept (id int)")
            connection.exec_driver_sql("INSERT INTO kept VALUES (1)")
            connection.commit()
            started = time.monotonic()
            disposable_postgres.stop(mode="immediate")
            assert time.monotonic() - started < 5
            with pytest.raises(sa.exc.OperationalError):
                connection.exec_driver_sql("SELECT 1")
        disposable_postgres.start()
        assert _scalar(disposable_postgres.url, "SELECT count(*) FROM kept") == 1
        disposable_postgres.stop(mode="fast")
        disposable_postgres.stop(mode="fast")  # a stopped server: nothing to do
        disposable_postgres.start()
        disposable_postgres.start()  # a running one: nothing to do
        assert _scalar(disposable_postgres.url, "SELECT count(*) FROM kept") == 1
    finally:
        engine.dispose()


def test_the_suite_server_and_the_second_server_are_two_servers(
    second_postgres: PostgresServer, second_database: str, tmp_path: Path
) -> None:
    for main_database in fresh_database("postgresql", tmp_path):
        identifiers = {
            _scalar(url, "SELECT system_identifier FROM pg_control_system()")
            for url in (main_database, second_database)
        }
        assert len(identifiers) == 2
        for here, there in ((second_database, main_database), (main_database, second_database)):
            engine = _engine(here)
            with engine.begin() as connection:
                connection.exec_driver_sql("CREATE TABLE only_here (id int)")
            engine.dispose()
            assert "only_here" in _tables(here)
            assert "only_here" not in _tables(there)
            engine = _engine(here)
            with engine.begin() as connection:
                connection.exec_driver_sql("DROP TABLE only_here")
            engine.dispose()


def test_databases_come_and_go(second_postgres: PostgresServer) -> None:
    name = f"mt_{uuid.uuid4().hex[:8]}"
    url = second_postgres.create_database(name)
    assert _scalar(url, "SELECT current_database()") == name
    engine = _engine(url)
    try:
        with engine.connect() as connection:  # still connected: drop_database ends the session
            second_postgres.drop_database(name)
            second_postgres.drop_database(name)  # already gone: nothing to do
            with pytest.raises(sa.exc.OperationalError):
                connection.exec_driver_sql("SELECT 1")
    finally:
        engine.dispose()
    query = f"SELECT count(*) FROM pg_database WHERE datname = '{name}'"
    assert _scalar(second_postgres.url_for("postgres"), query) == 0


def test_the_server_runs_as_its_own_user_with_the_fast_settings(second_postgres: PostgresServer) -> None:
    assert second_postgres.url == f"postgresql://postgres@127.0.0.1:{second_postgres.port}/test"
    assert _scalar(second_postgres.url, "SELECT current_database()") == "test"
    for name, value in (("fsync", "off"), ("full_page_writes", "off"), ("listen_addresses", "127.0.0.1")):
        assert _scalar(second_postgres.url, f"SHOW {name}") == value
    assert _scalar(second_postgres.url, "SHOW unix_socket_directories") == str(second_postgres.socket_dir)
    assert second_postgres.root.name.startswith(pgserver.PREFIX)
    owner = os.stat(f"/proc/{second_postgres.pid}").st_uid
    # initdb and postgres refuse to run as root: as root, the server runs as the postgres user.
    assert owner == (pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid())


def test_a_taken_port_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process binds the port between free_port() and the server: the next one is tried."""
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    ports = iter([taken.getsockname()[1]])
    real_free_port = pgserver.free_port
    monkeypatch.setattr(pgserver, "free_port", lambda: next(ports, None) or real_free_port())
    try:
        server = pgserver.start_or_give_up("taken-port")
        try:
            assert server.port != taken.getsockname()[1]
            assert "could not create any TCP/IP sockets" in server.log()
            assert _scalar(server.url, "SELECT 1") == 1
        finally:
            server.cleanup()
    finally:
        taken.close()


@pytest.fixture
def private_tmpdir() -> Iterator[Path]:
    """A TMPDIR of the test's own, where no other test's reap_stale_servers() looks; the postgres
    OS user may pass through it (pytest's tmp_path is closed to other users)."""
    directory = Path(tempfile.mkdtemp(prefix="pgserver-test-"))
    directory.chmod(0o711)
    try:
        yield directory
    finally:
        pgserver.reap_stale_servers(directory)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_server_that_cannot_start_skips_or_fails_under_ci_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, private_tmpdir: Path, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception

    monkeypatch.setattr(pgserver, "BINARIES", ("initdb", "postgres", "no_such_binary"))
    with pytest.raises(outcome) as missing:
        pgserver.start_or_give_up("missing")
    assert "PostgreSQL server binaries (initdb, postgres, no_such_binary) not found" in str(missing.value)
    assert "/usr/lib/postgresql/" in str(missing.value)
    assert str(missing.value).startswith("CI=true: " if ci else "cannot start")

    monkeypatch.undo()
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmpdir))
    with pytest.raises(outcome) as refused:
        pgserver.start_or_give_up("refused", settings={"shared_buffers": "'lots'"})
    assert "postgres did not start on port" in str(refused.value)
    assert 'invalid value for parameter "shared_buffers": "lots"' in str(refused.value)
    assert list(private_tmpdir.iterdir()) == []  # removed at once, not only at exit


def test_cleanup_leaves_no_process_and_no_directory() -> None:
    started = time.monotonic()
    server = pgserver.start_or_give_up("cleanup")
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"starting a server took {elapsed:.1f} s"
    root = server.root
    assert _processes_of(root)
    server.cleanup()
    server.cleanup()  # twice is fine
    assert not root.exists()
    assert _processes_of(root) == []


INNER_TEST = """
import os
from pathlib import Path


def test_fails_with_a_server(disposable_postgres, second_postgres):
    Path(os.environ["RECORD"]).write_text(f"{disposable_postgres.root}\\n{second_postgres.root}\\n")
    assert False, "this test fails on purpose"
"""


def test_a_failing_test_leaves_nothing_behind(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["pgserver"]\n')
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    record = tmp_path / "record.txt"
    env = {**os.environ, "RECORD": str(record), "PYTHONPATH": str(TESTS)}
    env.pop("PYTEST_XDIST_WORKER", None)
    inner = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:pytest_alembic", "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert inner.returncode == 1, inner.stdout + inner.stderr
    assert "1 failed" in inner.stdout
    roots = [Path(line) for line in record.read_text().splitlines()]
    assert len(roots) == 2
    for root in roots:
        assert not root.exists()
        assert _processes_of(root) == []


DYING_PROCESS = """
import os, sys
from pgserver import PostgresServer

server = PostgresServer(label=sys.argv[1])
print(server.root, server.pid, flush=True)
if sys.argv[1] == "dies":
    os._exit(0)  # no exit handlers: like SIGKILL, the server stays behind
raise SystemExit("an uncaught error")  # exit handlers run: atexit stops the server
"""


@pytest.mark.parametrize("ending", ["dies", "raises"])
def test_a_process_that_ends_without_cleanup(tmp_path: Path, private_tmpdir: Path, ending: str) -> None:
    """Its exit handler stops the server; if it died too hard for that, the next server reaps it."""
    script = tmp_path / "dying.py"
    script.write_text(textwrap.dedent(DYING_PROCESS))
    env = {**os.environ, "PYTHONPATH": str(TESTS), "TMPDIR": str(private_tmpdir)}
    child = subprocess.run(
        [sys.executable, str(script), ending], env=env, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == (0 if ending == "dies" else 1), child.stderr
    directory, pid = child.stdout.split()
    root = Path(directory)
    assert root.parent == private_tmpdir
    if ending == "dies":
        assert root.exists()
        assert _processes_of(root)
        assert pgserver.reap_stale_servers(private_tmpdir) == [root]
    assert not root.exists()
    assert _processes_of(root) == []
    assert not pgserver._alive(int(pid))
