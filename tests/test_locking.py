"""The migration lock, kill -9 and signals, with real `manage.py migrate` processes."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Project
from helpers import MANAGE_PY, create_table_revision, start_manage, write_revision


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """MariaDB commits DDL at once, so a migration stopped half way stays half applied there;
    its lock has its own test in test_hostile_identifiers.py."""
    return request.param


ADVISORY_LOCKS = """
SELECT pid, granted FROM pg_locks
WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
# The second migration adds a column (an exclusive lock on `runs` until it commits) and a row,
# then, when told to, blocks: on a gate file the test controls, or inside the server.
BLOCKING_UPGRADE = """
import os
import time
from pathlib import Path

op.add_column("runs", sa.Column("note", sa.String(20)))
op.execute("INSERT INTO runs (label) VALUES ('rev0002')")
if os.environ.get("SLOW_SQL"):
    op.execute("SELECT pg_sleep(30)")
gate = os.environ.get("MIGRATION_GATE")
if gate:
    Path(gate + ".reached").write_text(str(os.getpid()))
    deadline = time.monotonic() + 30
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
"""


def _three_migrations(project: Project) -> list[str]:
    (project.root / "manage.py").write_text(MANAGE_PY)
    first = create_table_revision(project.migrations, 1, "runs", None)
    write_revision(
        project.migrations,
        "2026_01_01_000002",
        "add_note_and_a_row",
        "rev0002",
        first,
        upgrade=BLOCKING_UPGRADE,
        downgrade='op.drop_column("runs", "note")',
    )
    write_revision(
        project.migrations,
        "2026_01_01_000003",
        "insert_another_row",
        "rev0003",
        "rev0002",
        upgrade="op.execute(\"INSERT INTO runs (label) VALUES ('rev0003')\")",
    )
    return [first, "rev0002", "rev0003"]


def _finish(process: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def _wait_until(condition: Callable[[], object], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout} s waiting until {what}")


def _blocked_in_second_migration(
    processes: list[subprocess.Popen[str]], project: Project, tmp_path: Path
) -> tuple[subprocess.Popen[str], Path]:
    """A migrate process that holds the lock and sits inside rev0002 until the gate opens."""
    gate = tmp_path / "gate"
    holder = start_manage(processes, project, MIGRATION_GATE=str(gate))
    reached = Path(f"{gate}.reached")
    _wait_until(lambda: reached.exists() or holder.poll() is not None, "the holder is inside rev0002")
    assert holder.poll() is None, holder.communicate()
    if project.backend == "postgresql":
        assert [granted for _, granted in project.query(ADVISORY_LOCKS)] == [True]
    return holder, gate


def _labels(project: Project) -> list[str]:
    return [label for (label,) in project.query("SELECT label FROM runs ORDER BY id")]


def test_second_process_waits_for_the_holder_then_finds_nothing(
    project: Project, processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    revisions = _three_migrations(project)
    holder, gate = _blocked_in_second_migration(processes, project, tmp_path)

    waiter = start_manage(processes, project)
    assert waiter.stderr is not None
    waiting = waiter.stderr.readline()
    assert f"Waiting up to 60 s for the migration lock held by manage.py pid {holder.pid} on " in waiting
    if project.backend == "postgresql":
        _wait_until(
            lambda: sorted(granted for _, granted in project.query(ADVISORY_LOCKS)) == [False, True],
            "the second process waits in pg_locks",
        )
    gate.touch()

    code, stdout, stderr = _finish(holder)
    assert code == 0, stderr
    assert "3 migrations applied" in stdout
    code, stdout, stderr = _finish(waiter)
    assert code == 0, stderr
    assert stdout.strip() == "Nothing to migrate."
    assert project.version() == {revisions[-1]}
    assert [rev for rev, _, _ in project.ledger()] == revisions
    assert _labels(project) == ["rev0002", "rev0003"]


def test_lock_timeout_gives_up_with_exit_5_and_changes_nothing(
    project: Project, processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    revisions = _three_migrations(project)
    holder, gate = _blocked_in_second_migration(processes, project, tmp_path)

    started = time.monotonic()
    code, stdout, stderr = _finish(start_manage(processes, project, "migrate", "--lock-timeout", "0.3"))

    assert code == 5, stdout + stderr
    assert time.monotonic() - started < 10
    assert "gave up after 0.3 s waiting for the migration lock on" in stderr
    assert f"manage.py pid {holder.pid} on " in stderr
    assert "nothing was changed" in stderr
    assert "Traceback" not in stderr
    assert stdout == ""
    # The holder's batch is one transaction: none of it is visible (or kept) until it commits.
    assert project.version() == set()
    assert project.ledger() == []

    status = start_manage(processes, project, "migrate:status")
    code, stdout, _ = _finish(status)
    assert code == 0
    assert "0 ran, 3 pending." in stdout

    gate.touch()
    assert _finish(holder)[0] == 0
    assert project.version() == {revisions[-1]}


def test_a_killed_holder_never_leaves_the_lock_stuck(
    project: Project, processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    revisions = _three_migrations(project)
    if project.backend == "postgresql":
        # Killed while the server is busy for it: the server must notice the dead client itself.
        holder = start_manage(processes, project, SLOW_SQL="1")
        _wait_until(
            lambda: project.query("SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'"),
            "the holder runs pg_sleep",
        )
    else:
        holder, _ = _blocked_in_second_migration(processes, project, tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()

    started = time.monotonic()
    code, stdout, stderr = _finish(start_manage(processes, project, "migrate", "--lock-timeout", "15"))

    assert code == 0, stderr
    assert time.monotonic() - started < 10
    # The killed batch was one transaction, so all three migrations run again, each once.
    assert "3 migrations applied" in stdout
    assert project.version() == {revisions[-1]}
    assert [rev for rev, _, _ in project.ledger()] == revisions
    assert _labels(project) == ["rev0002", "rev0003"]
    if project.backend == "postgresql":
        assert project.query("SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'") == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_rolls_back_the_current_migration_and_releases_the_lock(
    project: Project, processes: list[subprocess.Popen[str]], tmp_path: Path, signum: int
) -> None:
    revisions = _three_migrations(project)
    holder, _ = _blocked_in_second_migration(processes, project, tmp_path)

    holder.send_signal(signum)
    code, stdout, stderr = _finish(holder)

    assert code == 130, stdout + stderr
    assert "create_runs_table" in stdout
    assert (
        "error: interrupted during 2026_01_01_000002_add_note_and_a_row, which was rolled back; "
        "1 migration finished before it. The database is at 2026_01_01_000001_create_runs_table."
    ) in stderr
    assert "Traceback" not in stderr
    assert project.version() == {revisions[0]}
    assert [rev for rev, _, _ in project.ledger()] == revisions[:1]
    assert _labels(project) == []
    if project.backend == "postgresql":
        assert project.query(ADVISORY_LOCKS) == []
    again = _finish(start_manage(processes, project, "migrate", "--lock-timeout", "0"))
    assert again[0] == 0, again[2]
    assert _labels(project) == ["rev0002", "rev0003"]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_ten_concurrent_migrates_run_each_migration_once(
    project: Project, processes: list[subprocess.Popen[str]]
) -> None:
    revisions = _three_migrations(project)

    racers = [start_manage(processes, project) for _ in range(10)]
    results = [_finish(process, timeout=120) for process in racers]

    assert [code for code, _, _ in results] == [0] * 10, [err for _, _, err in results]
    outputs = [stdout.strip() for _, stdout, _ in results]
    assert sum("3 migrations applied" in out for out in outputs) == 1, outputs
    assert outputs.count("Nothing to migrate.") == 9, outputs
    assert _labels(project) == ["rev0002", "rev0003"]
    assert [(rev, batch) for rev, _, batch in project.ledger()] == [(rev, 1) for rev in revisions]
    assert project.version() == {revisions[-1]}
