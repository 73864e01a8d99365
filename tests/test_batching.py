"""A batch runs in one transaction with a savepoint per migration; the outcome is the same as a
transaction per migration, and a migration that commits by itself gets its own transactions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CLI_ENV, Project
from helpers import create_table_revision, write_revision


@pytest.mark.parametrize("backend", ["postgresql"])
def test_autocommit_block_migration_runs_in_a_batch(project: Project) -> None:
    first = create_table_revision(project.migrations, 1, "alpha", None)
    write_revision(
        project.migrations,
        "2026_01_01_000002",
        "index_concurrently",
        "rev0002",
        first,
        upgrade="""
        with op.get_context().autocommit_block():
            op.execute("CREATE INDEX CONCURRENTLY ix_alpha_label ON alpha (label)")
        """,
        downgrade="""
        with op.get_context().autocommit_block():
            op.execute("DROP INDEX CONCURRENTLY ix_alpha_label")
        """,
    )
    create_table_revision(project.migrations, 3, "gamma", "rev0002")

    result = project.run("migrate")

    assert result.exit_code == 0, result.output
    assert project.query("SELECT indexname FROM pg_indexes WHERE indexname = 'ix_alpha_label'")
    assert [rev for rev, _, _ in project.ledger()] == [first, "rev0002", "rev0003"]
    assert project.run("migrate:rollback").exit_code == 0
    assert not {"alpha", "gamma"} & project.tables()


def _consistent(project: Project) -> None:
    """Version table, ledger and tables tell the same story."""
    ledger = [rev for rev, _, _ in project.ledger()]
    created = {f"t{int(rev[3:])}" for rev in ledger}
    assert project.version() == ({ledger[-1]} if ledger else set())
    assert {t for t in project.tables() if t.startswith("t")} == created


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_in_the_middle_of_a_batch_leaves_a_consistent_database(
    project: Project, tmp_path: Path
) -> None:
    (project.root / "manage.py").write_text("from manage_migrations.cli import main\n\nmain()\n")
    marker = tmp_path / "inside_slow_migration"
    down = None
    for index in range(1, 6):
        down = create_table_revision(project.migrations, index, f"t{index}", down)
    write_revision(
        project.migrations,
        "2026_01_01_000006",
        "slow",
        "rev0006",
        down,
        upgrade=f"""
        op.create_table("t6", sa.Column("id", sa.Integer, primary_key=True))
        import pathlib, time
        pathlib.Path({str(marker)!r}).write_text("x")
        time.sleep(60)
        """,
    )
    env = {**os.environ, **CLI_ENV, "DATABASE_URL": project.url}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "migrate"], cwd=project.root, env=env, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, "migrate ended before reaching the slow migration"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    _consistent(project)
    (project.migrations / "2026_01_01_000006_slow.py").unlink()
    assert project.run("migrate").exit_code == 0
    _consistent(project)
    assert len(project.ledger()) == 5
