"""migrate, migrate:rollback and migrate:status through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from conftest import Project
from helpers import create_table_revision, write_revision

LINE = re.compile(r"^  (\S+) \.{3,} (\d[\d.]* (?:ms|s|min \d+ s)) (DONE|FAIL)$", re.MULTILINE)


def _three_migrations(project: Project) -> list[str]:
    first = create_table_revision(project.migrations, 1, "alpha", None)
    second = create_table_revision(project.migrations, 2, "beta", first)
    third = create_table_revision(project.migrations, 3, "gamma", second)
    return [first, second, third]


def test_migrate_applies_pending_as_one_batch_with_a_line_each(project: Project) -> None:
    revisions = _three_migrations(project)

    result = project.run("migrate")

    assert result.exit_code == 0, result.output
    lines = LINE.findall(result.stdout)
    assert [name for name, _, _ in lines] == [
        "2026_01_01_000001_create_alpha_table",
        "2026_01_01_000002_create_beta_table",
        "2026_01_01_000003_create_gamma_table",
    ]
    assert all(state == "DONE" for _, _, state in lines)
    assert "(batch 1)" in result.stdout
    assert "3 migrations applied in" in result.stdout
    assert {"alpha", "beta", "gamma"} <= project.tables()
    assert project.version() == {revisions[-1]}
    assert [(rev, batch) for rev, _, batch in project.ledger()] == [(r, 1) for r in revisions]

    again = project.run("migrate")
    assert again.exit_code == 0
    assert again.stdout.strip() == "Nothing to migrate."


def test_step_gives_each_migration_its_own_batch(project: Project) -> None:
    revisions = _three_migrations(project)
    assert project.run("migrate", "--step").exit_code == 0
    assert [(rev, batch) for rev, _, batch in project.ledger()] == list(
        zip(revisions, [1, 2, 3], strict=True)
    )


def test_pretend_prints_sql_and_changes_nothing(project: Project) -> None:
    _three_migrations(project)

    result = project.run("migrate", "--pretend")

    assert result.exit_code == 0, result.output
    assert "CREATE TABLE alpha" in result.stdout
    assert "CREATE TABLE gamma" in result.stdout
    assert "2026_01_01_000002_create_beta_table" in result.stdout
    assert not {"alpha", "beta", "gamma", "alembic_version"} & project.tables()


def test_failure_keeps_earlier_migrations_and_nothing_of_the_failed_one(project: Project) -> None:
    first = create_table_revision(project.migrations, 1, "alpha", None)
    write_revision(
        project.migrations,
        "2026_01_01_000002",
        "half_done",
        "rev0002",
        first,
        upgrade="""
        op.create_table("orphan", sa.Column("id", sa.Integer, primary_key=True))
        op.execute("INSERT INTO no_such_table VALUES (1)")
        """,
    )
    create_table_revision(project.migrations, 3, "gamma", "rev0002")

    result = project.run("migrate")

    assert result.exit_code == 1
    lines = LINE.findall(result.stdout)
    assert [(name, state) for name, _, state in lines] == [
        ("2026_01_01_000001_create_alpha_table", "DONE"),
        ("2026_01_01_000002_half_done", "FAIL"),
    ]
    assert "2026_01_01_000002_half_done failed" in result.stderr
    assert "no_such_table" in result.stderr
    tables = project.tables()
    assert "alpha" in tables
    assert "gamma" not in tables
    if project.backend == "mysql":
        # MariaDB commits each DDL statement: the tool must say so and name what ran.
        stderr = " ".join(result.stderr.split())
        assert "rolled back" not in stderr.replace("nothing was rolled back", "")
        assert "may have taken effect" in stderr
        assert "CREATE TABLE orphan" in stderr
        assert "The database is at 2026_01_01_000001_create_alpha_table" in stderr
        assert "orphan" in tables
        # Work outside a transaction took effect: the migration is marked failed, migrate refuses.
        assert "migrate:resolve rev0002" in stderr
        status = project.run("migrate:status")
        assert re.search(r"^2026_01_01_000002_half_done +Failed", status.stdout, re.M)
        again = project.run("migrate")
        assert again.exit_code == 6
        assert "migrate:resolve rev0002" in again.stderr
    else:
        assert "The database is at 2026_01_01_000001_create_alpha_table" in result.stderr
        assert "orphan" not in tables
    assert project.version() == {first}
    assert [rev for rev, _, _ in project.ledger()] == [first]


def test_rollback_undoes_the_last_batch_newest_first(project: Project) -> None:
    first = create_table_revision(project.migrations, 1, "alpha", None)
    assert project.run("migrate").exit_code == 0
    second = create_table_revision(project.migrations, 2, "beta", first)
    create_table_revision(project.migrations, 3, "gamma", second)
    assert project.run("migrate").exit_code == 0

    result = project.run("migrate:rollback")

    assert result.exit_code == 0, result.output
    assert [name for name, _, _ in LINE.findall(result.stdout)] == [
        "2026_01_01_000003_create_gamma_table",
        "2026_01_01_000002_create_beta_table",
    ]
    assert "(batch 2)" in result.stdout
    assert "2 migrations rolled back" in result.stdout
    assert "alpha" in project.tables()
    assert not {"beta", "gamma"} & project.tables()
    assert project.version() == {first}
    assert [(rev, batch) for rev, _, batch in project.ledger()] == [(first, 1)]


def test_rollback_step_crosses_batches(project: Project) -> None:
    revisions = _three_migrations(project)
    assert project.run("migrate", "--step").exit_code == 0

    result = project.run("migrate:rollback", "--step", "2")

    assert result.exit_code == 0, result.output
    assert project.version() == {revisions[0]}
    assert [rev for rev, _, _ in project.ledger()] == [revisions[0]]


def test_rollback_batch_only_when_newest(project: Project) -> None:
    revisions = _three_migrations(project)
    assert project.run("migrate", "--step").exit_code == 0

    refused = project.run("migrate:rollback", "--batch", "2")
    assert refused.exit_code == 2
    assert "batch 2 is not the newest batch still applied (that is 3)" in refused.stderr
    assert project.version() == {revisions[2]}

    accepted = project.run("migrate:rollback", "--batch", "3")
    assert accepted.exit_code == 0, accepted.output
    assert project.version() == {revisions[1]}


def test_nothing_to_rollback(project: Project) -> None:
    _three_migrations(project)
    result = project.run("migrate:rollback")
    assert result.exit_code == 0
    assert result.stdout.strip() == "Nothing to rollback."


def test_status_lists_ran_pending_and_missing(project: Project) -> None:
    first = create_table_revision(project.migrations, 1, "alpha", None)
    assert project.run("migrate").exit_code == 0
    second = create_table_revision(project.migrations, 2, "beta", first)
    assert project.run("migrate").exit_code == 0
    create_table_revision(project.migrations, 3, "gamma", second)

    result = project.run("migrate:status")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Migrations on ")
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[3:-1]}
    assert rows["2026_01_01_000001_create_alpha_table"][:2] == ["Ran", "1"]
    assert rows["2026_01_01_000002_create_beta_table"][:2] == ["Ran", "2"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", rows["2026_01_01_000001_create_alpha_table"][2])
    assert rows["2026_01_01_000003_create_gamma_table"] == ["Pending"]
    assert result.stdout.splitlines()[-1] == "2 ran, 1 pending."

    pending = project.run("migrate:status", "--pending")
    assert pending.exit_code == 1
    assert "create_gamma_table" in pending.stdout
    assert "create_alpha_table" not in pending.stdout

    (project.migrations / "2026_01_01_000002_create_beta_table.py").unlink()
    (project.migrations / "2026_01_01_000003_create_gamma_table.py").unlink()
    missing = project.run("migrate:status")
    assert re.search(r"^2026_01_01_000002_create_beta_table +Missing +2 ", missing.stdout, re.M)
    assert "1 missing" in missing.stdout


def test_status_creates_nothing(project: Project) -> None:
    _three_migrations(project)
    result = project.run("migrate:status")
    assert result.exit_code == 0
    assert "0 ran, 3 pending." in result.stdout
    assert project.tables() == set()

    assert project.run("migrate:status", "--pending").exit_code == 1
    assert project.run("migrate").exit_code == 0
    assert project.run("migrate:status", "--pending").exit_code == 0


def test_ledger_and_version_table_always_agree(project: Project) -> None:
    revisions = _three_migrations(project)
    write_revision(
        project.migrations,
        "2026_01_01_000004",
        "broken",
        "rev0004",
        revisions[-1],
        upgrade='op.execute("SELECT * FROM missing_table")',
    )
    assert project.run("migrate").exit_code == 1
    assert project.version() == {revisions[-1]}
    assert [rev for rev, _, _ in project.ledger()] == revisions
    assert project.run("migrate:rollback", "--step", "1").exit_code == 0
    assert project.version() == {revisions[1]}
    assert [rev for rev, _, _ in project.ledger()] == revisions[:2]
