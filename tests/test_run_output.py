"""What runs print: a migration's line when it starts (live on a terminal), scaled durations,
--fake without timings, refresh's two phases, migrate:sql without COMMIT, the database named on
the first line of every command, check's reason for not comparing models, and .gitignore."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CLI_ENV, REPO_ROOT, Project
from helpers import create_table_revision, write_revision

RESULT = re.compile(r"^  (\S+) \.{3,} (?:(.+?) )?(RUNNING|DONE|FAIL|FAKED)$", re.MULTILINE)
SLOW = """
import time
from pathlib import Path

time.sleep(2)
Path("migration-ended").write_text("")
op.create_table("slow", sa.Column("id", sa.Integer, primary_key=True))
"""


def _lines(output: str) -> list[tuple[str, str | None, str]]:
    return [(name, took or None, label) for name, took, label in RESULT.findall(output)]


def _shown_url(project: Project) -> str:
    return json.loads(project.run("migrate:status", "--json").stdout)["database"]


def test_piped_output_names_each_migration_when_it_starts(sqlite_project: Project) -> None:
    first = create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    create_table_revision(sqlite_project.migrations, 2, "beta", first)

    result = sqlite_project.run("migrate")

    assert result.exit_code == 0, result.output
    lines = _lines(result.stdout)
    names = ["2026_01_01_000001_create_alpha_table", "2026_01_01_000002_create_beta_table"]
    assert [(name, label) for name, _, label in lines] == [
        (names[0], "RUNNING"),
        (names[0], "DONE"),
        (names[1], "RUNNING"),
        (names[1], "DONE"),
    ]
    assert all(took is None for _, took, label in lines if label == "RUNNING")
    assert all(re.fullmatch(r"\d+(\.\d)? ms", took or "") for _, took, label in lines if label == "DONE")
    assert re.search(r"^  2 migrations applied in \d+(\.\d)? ms\.$", result.stdout, re.M)
    assert "\r" not in result.stdout and "\x1b" not in result.stdout  # nothing redrawn in a pipe


def test_a_failing_migration_shows_its_start_line_then_fail(sqlite_project: Project) -> None:
    write_revision(
        sqlite_project.migrations,
        "2026_01_01_000001",
        "broken",
        "rev0001",
        None,
        upgrade='op.execute("SELECT * FROM no_such_table")',
    )

    result = sqlite_project.run("migrate")

    assert result.exit_code == 1
    assert [label for _, _, label in _lines(result.stdout)] == ["RUNNING", "FAIL"]


def test_a_terminal_shows_the_running_migration_with_its_elapsed_time(sqlite_project: Project) -> None:
    project = sqlite_project
    first = create_table_revision(project.migrations, 1, "alpha", None)
    write_revision(project.migrations, "2026_01_01_000002", "slow", "rev0002", first, upgrade=SLOW)
    (project.root / "manage.py").write_text("from manage_migrations.cli import main\n\nmain()\n")
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm", "DATABASE_URL": project.url}
    env.pop("NO_COLOR", None)
    primary, secondary = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "migrate"],
            cwd=project.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=secondary,
            stderr=secondary,
        )
        os.close(secondary)
        seen, elapsed_while_running = b"", []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not select.select([primary], [], [], 0.5)[0]:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the child closed the terminal
                break
            seen += chunk
            plain = re.sub(rb"\x1b\[[0-9;]*[A-Za-z]", b"", chunk).decode()
            for took in re.findall(r"slow \.+ (\d\.\d) s RUNNING", plain):
                # Read before the migration ended: the time was shown while it ran.
                elapsed_while_running.append((float(took), (project.root / "migration-ended").exists()))
        assert process.wait(timeout=60) == 0, seen.decode()
    finally:
        os.close(primary)
    output = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", seen.decode())
    assert any(took >= 1.0 and not ended for took, ended in elapsed_while_running), output
    assert re.search(r"\r {2}2026_01_01_000002_slow \.+ 2\.\d s DONE\r\n", output), output
    assert re.search(r"2 migrations applied in 2\.\d s\.", output), output

    status = project.run("migrate:status")
    assert re.search(r"^2026_01_01_000002_slow +Ran +1 +\S+ \S+ +2\.\d s$", status.stdout, re.M), (
        status.stdout
    )


def test_durations_are_scaled() -> None:
    from manage_migrations.formatting import duration

    assert [duration(ms) for ms in (0.42, 9.96, 812.3, 999.6, 3012, 59_960, 252_400, 7_500_000)] == [
        "0.4 ms",
        "10 ms",
        "812 ms",
        "1.0 s",
        "3.0 s",
        "1 min 0 s",
        "4 min 12 s",
        "2 h 5 min",
    ]


def test_fake_records_without_timings_both_ways(sqlite_project: Project) -> None:
    first = create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    create_table_revision(sqlite_project.migrations, 2, "beta", first)
    shown = _shown_url(sqlite_project)

    faked = sqlite_project.run("migrate", "--fake")
    unfaked = sqlite_project.run("migrate:rollback", "--fake")

    assert faked.exit_code == 0 and unfaked.exit_code == 0, faked.output + unfaked.output
    assert faked.stdout.splitlines()[0] == f"  Recording 2 migrations as applied on {shown} (not run)"
    assert unfaked.stdout.splitlines()[0] == f"  Recording 2 migrations as rolled back on {shown} (not run)"
    for result, summary in ((faked, "  2 migrations faked."), (unfaked, "  2 migrations unrecorded.")):
        assert [(took, label) for _, took, label in _lines(result.stdout)] == [(None, "FAKED")] * 2
        assert result.stdout.splitlines()[-1] == summary
        assert " ms" not in result.stdout
    assert not {"alpha", "beta"} & sqlite_project.tables()


def test_refresh_reads_as_a_rollback_then_a_migrate(sqlite_project: Project) -> None:
    first = create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    create_table_revision(sqlite_project.migrations, 2, "beta", first)

    unmigrated = sqlite_project.run("migrate:refresh")

    assert unmigrated.exit_code == 0, unmigrated.output
    # Nothing was rolled back: the output is the migrate run's alone.
    assert "Nothing to roll" not in unmigrated.stdout and "rolled back" not in unmigrated.stdout
    assert unmigrated.stdout.startswith("  Running migrations on ")
    assert re.search(r"create_beta_table \.+ \S+ ms DONE\n\n  2 migrations applied in", unmigrated.stdout)

    again = sqlite_project.run("migrate:refresh")

    assert again.exit_code == 0, again.output
    summary = re.search(r"^  2 migrations rolled back in .+\.$", again.stdout, re.M)
    assert summary is not None, again.stdout
    assert summary.start() < again.stdout.index("  Running migrations on ")
    assert again.stdout.index("Rolling back migrations") < summary.start()
    assert again.stdout.rstrip().splitlines()[-1].startswith("  2 migrations applied in ")


def test_migrate_sql_prints_no_commit(any_project: Project) -> None:
    write_revision(
        any_project.migrations,
        "2026_01_01_000001",
        "outside_a_transaction",
        "rev0001",
        None,
        upgrade="""
        op.create_table("alpha", sa.Column("id", sa.Integer, primary_key=True))
        with op.get_context().autocommit_block():
            op.execute("CREATE INDEX ix_alpha_id ON alpha (id)")
        """,
        downgrade="""
        with op.get_context().autocommit_block():
            op.execute("DROP INDEX ix_alpha_id")
        op.drop_table("alpha")
        """,
    )

    for args in ((), ("--down",)):
        result = any_project.run("migrate:sql", "rev0001", *args)
        assert result.exit_code == 0, result.output
        assert "CREATE INDEX ix_alpha_id" in result.stdout or "DROP INDEX ix_alpha_id" in result.stdout
        assert "COMMIT" not in result.stdout.upper(), result.stdout
        assert "BEGIN" not in result.stdout.upper(), result.stdout


def test_status_names_the_database_and_exits_6_with_two_heads(sqlite_project: Project) -> None:
    first = create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    shown = _shown_url(sqlite_project)
    heading, blank, columns = sqlite_project.run("migrate:status").stdout.splitlines()[:3]
    assert (heading, blank) == (f"Migrations on {shown}", "")
    assert re.fullmatch(r"Migration +Status +Batch +Applied at +Took", columns)
    assert set(json.loads(sqlite_project.run("migrate:status", "--json").stdout)) == {
        "database",
        "migrations",
        "counts",
    }

    create_table_revision(sqlite_project.migrations, 2, "beta", first)
    create_table_revision(sqlite_project.migrations, 3, "gamma", first)
    forked = sqlite_project.run("migrate:status")

    assert forked.exit_code == 6
    assert "error: the migration history has 2 heads" in forked.stderr
    assert "make:migration --merge" in forked.stderr
    assert forked.stdout.splitlines()[0] == f"Migrations on {shown}"


NOT_IN_A_TRANSACTION = "\ntransactional = False\n"
ALPHA_MODEL = """
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Alpha(Base):
    __tablename__ = "alpha"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str | None] = mapped_column(String(50))
"""


def test_every_command_that_touches_the_database_names_it_first(sqlite_project: Project) -> None:
    project = sqlite_project
    project.write_model("alpha.py", ALPHA_MODEL)
    first = create_table_revision(project.migrations, 1, "alpha", None)
    shown = _shown_url(project)

    def first_line(*args: str, code: int = 0) -> str:
        result = project.run(*args)
        assert result.exit_code == code, result.output
        return result.stdout.splitlines()[0]

    assert first_line("migrate") == f"  Running migrations on {shown} (batch 1)"
    assert first_line("migrate:check") == f"Checking {shown}"
    assert first_line("migrate:dump").startswith(f"  Dumped {shown} to migrations/schema/sqlite-schema.sql")
    assert first_line("migrate:rollback").startswith(f"  Rolling back migrations on {shown}")
    assert first_line("migrate:fresh") == f"  Dropping everything the project owns on {shown}"
    assert first_line("migrate:reset").startswith(f"  Rolling back migrations on {shown}")
    Path(project.url.removeprefix("sqlite:///")).unlink()  # an empty database takes the dump
    assert first_line("migrate").startswith(f"  Loaded schema dump sqlite-schema.sql into {shown} (")
    assert first_line("migrate:refresh").startswith(f"  Rolling back migrations on {shown}")
    path = project.migrations / "2026_01_01_000001_create_alpha_table.py"
    path.write_text(path.read_text() + "REVIEWED = True\n")
    assert first_line("migrate:rehash") == f"  Rehashing edited migrations on {shown}"

    broken = write_revision(
        project.migrations,
        "2026_01_01_000002",
        "half_done",
        "rev0002",
        first,
        upgrade="""
        op.execute("CREATE TABLE beta (id INTEGER)")
        op.execute("SELECT * FROM no_such_table")
        """,
    )
    broken.write_text(broken.read_text() + NOT_IN_A_TRANSACTION)
    assert project.run("migrate").exit_code == 1
    assert first_line("migrate:resolve", "rev0002") == (
        f"  2026_01_01_000002_half_done is no longer marked as failed on {shown}; "
        "run migrate to apply it again."
    )


def _at_head_with_an_edited_migration(project: Project) -> None:
    create_table_revision(project.migrations, 1, "alpha", None)
    assert project.run("migrate").exit_code == 0
    path = project.migrations / "2026_01_01_000001_create_alpha_table.py"
    path.write_text(path.read_text() + "EDITED_AFTER_IT_RAN = True\n")


def test_check_says_why_models_were_not_compared(sqlite_project: Project) -> None:
    _at_head_with_an_edited_migration(sqlite_project)

    text = sqlite_project.run("migrate:check")
    report = sqlite_project.run("migrate:check", "--json")

    assert text.exit_code == 1 and report.exit_code == 1
    reason = "applied migrations were edited since they ran"
    assert f"Models were not compared: {reason}." in text.stderr
    assert "needs a database at head" not in text.output
    document = json.loads(report.stdout)
    assert (document["drift_checked"], document["drift_skipped"]) == (False, reason)

    create_table_revision(sqlite_project.migrations, 2, "beta", "rev0001")
    behind = json.loads(sqlite_project.run("migrate:check", "--json").stdout)
    assert behind["drift_skipped"] == "the database is not at head; " + reason


def test_the_files_beside_an_sqlite_database_are_ignored_by_git(tmp_path: Path) -> None:
    """The lock file migrate leaves beside database.sqlite3 must not show up as untracked."""
    root = tmp_path / "repo"
    (root / "migrations").mkdir(parents=True)
    (root / ".gitignore").write_text((REPO_ROOT / ".gitignore").read_text())
    create_table_revision(root / "migrations", 1, "alpha", None)
    (root / "manage.py").write_text("from manage_migrations.cli import main\n\nmain()\n")
    (root / "models").mkdir()
    (root / "models" / "__init__.py").write_text("")
    (root / "models" / "base.py").write_text((REPO_ROOT / "models" / "base.py").read_text())
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    env = {**os.environ, **CLI_ENV}
    env.pop("DATABASE_URL", None)

    migrated = subprocess.run(
        [sys.executable, "manage.py", "migrate"], cwd=root, env=env, capture_output=True, text=True
    )

    assert migrated.returncode == 0, migrated.stderr
    assert (root / "database.sqlite3.lock").is_file()
    untracked = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "sqlite3" not in untracked, untracked


@pytest.mark.parametrize(
    "name", ["database.sqlite3.lock", "database.sqlite3-journal", "database.sqlite3-wal"]
)
def test_the_repository_ignores_what_sits_beside_its_database(name: str) -> None:
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "-q", name], cwd=REPO_ROOT)
    assert ignored.returncode == 0, f"{name} is not in .gitignore"
