"""SIGINT and SIGTERM against real `manage.py migrate` processes: a long statement is cancelled on the
server, and a signal at any instant leaves the database, its history and the report in agreement."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import Project
from helpers import start_manage, wait_for, write_revision

EMPTY_HISTORY = "no migration (empty history)"
RUNS = 20
LOOP_SECONDS = 40


# --- a long statement ---------------------------------------------------------------------------

LONG_STATEMENTS = {
    "postgresql": "SELECT pg_sleep(60)",
    "mysql": "SELECT SLEEP(60)",
    # Counts forever: only sqlite3's interrupt() ends it.
    "sqlite": "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r",
}


def _long_statement_history(project: Project) -> list[str]:
    write_revision(
        project.migrations,
        "2026_01_01_000001",
        "create_runs_table",
        "rev0001",
        None,
        upgrade='op.create_table("runs", sa.Column("id", sa.Integer, primary_key=True), '
        'sa.Column("label", sa.String(20)))',
    )
    write_revision(
        project.migrations,
        "2026_01_01_000002",
        "long_statement",
        "rev0002",
        "rev0001",
        upgrade=f"""
        import os
        from pathlib import Path

        op.execute("INSERT INTO runs (label) VALUES ('rev0002')")
        marker = os.environ.get("LONG_STATEMENT_MARKER")
        if marker:
            Path(marker).write_text("x")
            op.execute({LONG_STATEMENTS[project.backend]!r})
        """,
    )
    return ["rev0001", "rev0002"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_long_statement_is_cancelled_on_the_server_within_seconds(
    project: Project, processes: list[subprocess.Popen[str]], tmp_path: Path, signum: int
) -> None:
    revisions = _long_statement_history(project)
    marker = tmp_path / "in_long_statement"
    process = start_manage(processes, project, LONG_STATEMENT_MARKER=str(marker))
    wait_for(marker, process)
    time.sleep(0.3)  # the statement is on the server by now

    sent = time.monotonic()
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)
    took = time.monotonic() - sent

    assert process.returncode == 130, stdout + stderr
    assert took < 3, f"exited {took:.1f} s after the signal"
    assert "Traceback" not in stderr
    assert "2026_01_01_000001_create_runs_table" in stdout
    if project.backend == "mysql":
        assert (
            "error: interrupted during 2026_01_01_000002_long_statement on a database that commits DDL "
            "immediately, so it was not rolled back; 1 migration finished before it. "
            "The version table is at 2026_01_01_000001_create_runs_table."
        ) in stderr
    else:
        assert (
            "error: interrupted during 2026_01_01_000002_long_statement, which was rolled back; "
            "1 migration finished before it. The database is at 2026_01_01_000001_create_runs_table."
        ) in stderr
        assert project.query("SELECT label FROM runs") == []
    assert project.version() == {revisions[0]}
    assert [rev for rev, _, _ in project.ledger()] == revisions[:1]
    if project.backend == "postgresql":
        assert project.query("SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'") == []
    elif project.backend == "mysql":
        sleeping = "SELECT 1 FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(60)'"
        assert project.query(sleeping) == []

    # The lock was released: a second migrate gets it at once.
    again = start_manage(processes, project, "migrate", "--lock-timeout", "0")
    stdout, stderr = again.communicate(timeout=30)
    assert again.returncode == 0, stdout + stderr
    assert "1 migration applied" in stdout
    assert project.version() == {revisions[1]}


# --- a signal at a random instant ---------------------------------------------------------------

LABELS = ["m1", "m2", "m3", "m4", "m5"]
NO_TRANSACTION = "m3"


def _counter_history(project: Project, *, with_autocommit: bool) -> list[str]:
    """Five small migrations, each adding its label to `counter`, so a double apply shows."""
    count = "op.execute(\"INSERT INTO counter (label) VALUES ('{label}')\")"
    bodies = {
        "m1": 'op.create_table("counter", sa.Column("id", sa.Integer, primary_key=True), '
        'sa.Column("label", sa.String(20)))\n' + count,
        "m2": 'op.create_table("t2", sa.Column("id", sa.Integer, primary_key=True))\n' + count,
        "m3": count,
        "m4": 'op.create_table("t4", sa.Column("id", sa.Integer, primary_key=True))\n'
        'op.execute("INSERT INTO t4 (id) VALUES (1)")\n' + count,
        "m5": count,
    }
    if with_autocommit:
        bodies[NO_TRANSACTION] = (
            'op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_counter_label")\n'
            'op.execute("SELECT pg_sleep(0.1)")\n'  # a wider window for a signal inside it
            'op.execute("CREATE INDEX CONCURRENTLY ix_counter_label ON counter (label)")'
        )
    revisions = []
    down = None
    for number, label in enumerate(LABELS, start=1):
        revision = f"rev{number:04d}"
        path = write_revision(
            project.migrations,
            f"2026_01_01_{number:06d}",
            label,
            revision,
            down,
            upgrade=bodies[label].format(label=label),
        )
        if with_autocommit and label == NO_TRANSACTION:
            path.write_text(path.read_text() + "\ntransactional = False\n")
        revisions.append(revision)
        down = revision
    return revisions


def _empty_database(project: Project) -> None:
    if project.backend == "sqlite":
        Path(sa.make_url(project.url).database).unlink(missing_ok=True)
        return
    engine = project.engine().execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()


def _applied(project: Project, revisions: list[str], *, with_autocommit: bool) -> int:
    """How many migrations the database holds; asserts that schema, version and ledger agree."""
    ledger = [rev for rev, _, _ in project.ledger()]
    applied = len(ledger)
    assert ledger == revisions[:applied]
    assert project.version() == ({revisions[applied - 1]} if applied else set())
    tables = project.tables()
    assert ("counter" in tables) == (applied >= 1)
    assert ("t2" in tables) == (applied >= 2)
    assert ("t4" in tables) == (applied >= 4)
    if applied:
        expected = [label for label in LABELS[:applied] if not (with_autocommit and label == NO_TRANSACTION)]
        assert [label for (label,) in project.query("SELECT label FROM counter ORDER BY id")] == expected
    if applied >= 4:
        assert project.query("SELECT id FROM t4") == [(1,)]
    return applied


def _name(index: int) -> str:
    return f"2026_01_01_{index:06d}_{LABELS[index - 1]}"


def _check_report(code: int, stdout: str, stderr: str, applied: int) -> bool:
    """The output tells the same story as the database; whether it recorded a failure."""
    assert "Traceback" not in stderr, stderr
    assert code in (0, 130), (code, stdout, stderr)
    if code == 0:
        assert applied == len(LABELS), stdout + stderr
        assert f"{len(LABELS)} migrations applied" in stdout
        return False
    where = re.search(r"The database is at (.+?)\.$", stderr, re.MULTILINE)
    assert where is not None, stderr
    assert where.group(1) == (_name(applied) if applied else EMPTY_HISTORY), stderr
    if "were rolled back" not in stderr:  # not an SQLite batch that its interrupted write ended
        assert stdout.count(" DONE") == applied, stdout + stderr
        finished = re.search(r"(\d+) migrations? finished", stderr)
        assert finished is not None and int(finished.group(1)) == applied, stderr
    return "recorded as failed" in stderr


def _interrupt_at_random(
    project: Project, processes: list[subprocess.Popen[str]], delay: float
) -> tuple[int, str, str]:
    process = start_manage(processes, project)
    assert process.stdout is not None
    first = process.stdout.readline()  # "Running migrations on ...", printed before the first one
    time.sleep(delay)
    process.send_signal(random.choice([signal.SIGINT, signal.SIGTERM]))
    stdout, stderr = process.communicate(timeout=30)
    return process.returncode, first + stdout, stderr


def _timings(project: Project, processes: list[subprocess.Popen[str]]) -> tuple[float, float, float]:
    """Seconds from "Running migrations" to the first DONE, to the summary line, and to the exit."""
    process = start_manage(processes, project)
    assert process.stdout is not None
    process.stdout.readline()
    began = time.monotonic()
    first_done = None
    while "applied in" not in (line := process.stdout.readline()):
        assert process.poll() is None, process.communicate()
        if first_done is None and " DONE" in line:
            first_done = time.monotonic() - began
    summary = time.monotonic() - began
    assert process.wait(timeout=30) == 0, process.communicate()
    assert first_done is not None
    return first_done, summary, time.monotonic() - began


def _random_delay(first_done: float, summary: float, finished: float) -> float:
    """Mostly while the migrations run; now and then before them or as the command finishes."""
    dice = random.random()
    if dice < 0.15:
        return random.uniform(0, first_done)
    if dice < 0.85:
        return random.uniform(first_done * 0.5, summary)
    return random.uniform(summary, finished)


@pytest.mark.parametrize(
    ("backend", "with_autocommit"),
    [("sqlite", False), ("postgresql", False), ("postgresql", True)],
    ids=["sqlite", "postgresql", "postgresql-transactional-false"],
)
def test_a_signal_at_any_instant_leaves_history_and_report_in_agreement(
    project: Project, processes: list[subprocess.Popen[str]], with_autocommit: bool
) -> None:
    revisions = _counter_history(project, with_autocommit=with_autocommit)
    started = time.monotonic()
    timings = _timings(project, processes)
    outcomes: set[str] = set()

    for _ in range(RUNS):
        _empty_database(project)
        code, stdout, stderr = _interrupt_at_random(project, processes, _random_delay(*timings))
        applied = _applied(project, revisions, with_autocommit=with_autocommit)
        failed_outside = _check_report(code, stdout, stderr, applied)
        outcomes.add("done" if code == 0 else f"interrupted at {applied}")

        if failed_outside:
            assert with_autocommit
            assert project.query("SELECT revision FROM manage_failed_migrations") == [("rev0003",)]
            refused = project.run("migrate")
            assert refused.exit_code == 6, refused.output
            assert "migrate:resolve rev0003" in refused.output
            assert project.run("migrate:resolve", "rev0003").exit_code == 0
        rerun = project.run("migrate")
        assert rerun.exit_code == 0, rerun.output
        assert _applied(project, revisions, with_autocommit=with_autocommit) == len(LABELS)
        assert time.monotonic() - started < LOOP_SECONDS * 2, "the loop is far slower than planned"

    # Random instants should land both before and after the commit at least once in 20 runs.
    assert len(outcomes) > 1, outcomes
