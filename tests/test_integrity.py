"""History integrity: missing files, edited files, a broken version table, failures outside a
transaction, and command-line values checked before they reach SQL or the file system."""

from __future__ import annotations

import re

import pytest
from conftest import USERS_MODEL, Project
from helpers import create_table_revision, write_revision

from manage_migrations.settings import resolve_settings
from manage_migrations.verbs import inspect as verbs_inspect


def _three_migrations(project: Project) -> list[str]:
    first = create_table_revision(project.migrations, 1, "alpha", None)
    second = create_table_revision(project.migrations, 2, "beta", first)
    third = create_table_revision(project.migrations, 3, "gamma", second)
    return [first, second, third]


def _one_error_line(result) -> str:
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.output
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_deleted_applied_file_is_named_by_every_command_and_status_exits_6(project: Project) -> None:
    revisions = _three_migrations(project)
    project.write_model("users.py", USERS_MODEL)
    assert project.run("migrate").exit_code == 0
    (project.migrations / "2026_01_01_000003_create_gamma_table.py").unlink()

    for command in (("migrate",), ("migrate:rollback",), ("make:migration", "more")):
        result = project.run(*command)
        assert result.exit_code == 6, (command, result.output)
        assert _one_error_line(result) == (
            "error: the database is at revision rev0003 (ledger name 2026_01_01_000003_create_gamma_table), "
            "which has no migration file"
        )
    assert project.version() == {revisions[2]}
    assert {"alpha", "beta", "gamma"} <= project.tables()
    assert not list(project.migrations.glob("*more*"))

    status = project.run("migrate:status")
    assert status.exit_code == 6
    assert re.search(r"^2026_01_01_000001_create_alpha_table +Ran +1 ", status.stdout, re.M)
    assert re.search(r"^2026_01_01_000003_create_gamma_table +Missing +1 ", status.stdout, re.M)
    assert "2 ran, 0 pending, 1 missing." in status.stdout
    assert "which has no migration file" in status.stderr


def test_edited_files_are_reported_and_accepted_after_review(project: Project) -> None:
    revisions = _three_migrations(project)
    assert project.run("migrate").exit_code == 0
    edited = project.migrations / "2026_01_01_000002_create_beta_table.py"
    edited.write_text(edited.read_text() + "\nREVIEWED = False\n")
    settings = resolve_settings(database_url=project.url, root=project.root)

    assert [item.revision for item in verbs_inspect.checksum_mismatches(settings)] == [revisions[1]]
    again = project.run("migrate")
    assert again.exit_code == 0
    assert again.stdout.strip() == "Nothing to migrate."
    assert (
        "warning: 2026_01_01_000002_create_beta_table was edited after it ran (checksum changed); "
        "review it, then run `python manage.py migrate:rehash rev0002`"
    ) in again.stderr
    status = project.run("migrate:status")
    assert status.exit_code == 0
    assert re.search(r"^2026_01_01_000002_create_beta_table +Ran, edited +1 ", status.stdout, re.M)
    assert status.stdout.splitlines()[-1] == "3 ran, 0 pending, 1 edited since it ran."

    assert project.run("migrate:rehash", "rev0001").exit_code == 2
    assert project.run("migrate:rehash", "x'; DROP TABLE alpha; --").exit_code == 2
    accepted = project.run("migrate:rehash", "2026_01_01_000002_create_beta_table")
    assert accepted.exit_code == 0, accepted.output
    assert "Accepted the current file of 1 migration." in accepted.stdout
    assert verbs_inspect.checksum_mismatches(settings) == ()
    assert "edited" not in project.run("migrate:status").stdout.split("\n", 1)[1]  # below the URL
    assert project.run("migrate:rehash").stdout.strip() == "No edited migrations."
    assert "alpha" in project.tables()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            "INSERT INTO alembic_version (version_num) VALUES ('rev0001')",
            "error: alembic_version holds rev0003 and rev0001, but rev0001 is an ancestor of rev0003",
        ),
        (
            "UPDATE alembic_version SET version_num = 'x y;--'",
            "error: alembic_version holds 'x y;--', which is not a revision id",
        ),
    ],
    ids=["ancestor-row", "garbage"],
)
def test_a_damaged_version_table_gets_a_precise_message(project: Project, damage: str, message: str) -> None:
    revisions = _three_migrations(project)
    assert project.run("migrate").exit_code == 0
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql(damage)
    engine.dispose()
    before = project.version()

    for command in ("migrate", "migrate:rollback"):
        result = project.run(command)
        assert result.exit_code == 6, result.output
        assert _one_error_line(result) == message
        assert "Running" not in result.stdout
    assert project.version() == before
    assert [rev for rev, _, _ in project.ledger()] == revisions
    assert {"alpha", "beta", "gamma"} <= project.tables()


NOT_IN_A_TRANSACTION = """
transactional = False
"""


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_failure_outside_a_transaction_is_recorded_and_blocks_until_resolved(project: Project) -> None:
    first = create_table_revision(project.migrations, 1, "alpha", None)
    path = write_revision(
        project.migrations,
        "2026_01_01_000002",
        "index_alpha_concurrently",
        "rev0002",
        first,
        upgrade="""
        op.execute("CREATE INDEX CONCURRENTLY ix_alpha_label ON alpha (label)")
        op.execute("SELECT * FROM no_such_table")
        """,
        downgrade='op.execute("DROP INDEX CONCURRENTLY ix_alpha_label")',
    )
    path.write_text(path.read_text() + NOT_IN_A_TRANSACTION)

    failed = project.run("migrate")

    assert failed.exit_code == 1
    assert "2026_01_01_000002_index_alpha_concurrently failed: UndefinedTable" in failed.stderr
    assert "ran outside a transaction, so what it did before the error stays" in failed.stderr
    assert "`python manage.py migrate:resolve rev0002`" in failed.stderr
    assert project.version() == {first}
    # CONCURRENTLY cannot run inside a transaction block: the index proves where it ran.
    assert ("ix_alpha_label",) in project.query("SELECT indexname FROM pg_indexes WHERE tablename = 'alpha'")
    assert project.query("SELECT revision FROM manage_failed_migrations") == [("rev0002",)]

    status = project.run("migrate:status")
    assert re.search(r"^2026_01_01_000002_index_alpha_concurrently +Failed *$", status.stdout, re.M)
    assert status.stdout.splitlines()[-1] == "1 ran, 0 pending, 1 failed."
    refused = project.run("migrate")
    assert refused.exit_code == 6
    assert _one_error_line(refused).startswith(
        "error: 2026_01_01_000002_index_alpha_concurrently failed outside a transaction (UndefinedTable"
    )
    assert "migrate:resolve rev0002" in refused.stderr
    assert project.version() == {first}

    assert project.run("migrate:resolve", "../../etc/passwd").exit_code == 2
    unknown = project.run("migrate:resolve", "rev0001")
    assert unknown.exit_code == 2
    assert "no failed migration rev0001 is recorded (recorded: rev0002)" in unknown.stderr

    path.write_text(path.read_text().replace('    op.execute("SELECT * FROM no_such_table")\n', ""))
    path.write_text(
        path.read_text().replace("CREATE INDEX CONCURRENTLY", "CREATE INDEX CONCURRENTLY IF NOT EXISTS")
    )
    resolved = project.run("migrate:resolve", "rev0002")
    assert resolved.exit_code == 0, resolved.output
    assert "no longer marked as failed" in resolved.stdout
    assert project.query("SELECT revision FROM manage_failed_migrations") == []
    assert project.run("migrate").exit_code == 0
    assert project.version() == {"rev0002"}
    assert [rev for rev, _, _ in project.ledger()] == [first, "rev0002"]
    assert project.run("migrate:rollback").exit_code == 0
    assert ("ix_alpha_label",) not in project.query(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'alpha'"
    )
    no_drift = project.run("make:migration", "anything")
    assert "manage_failed_migrations" not in no_drift.output


@pytest.mark.parametrize(
    "args",
    [
        ("migrate:rollback", "--batch", "0"),
        ("migrate:rollback", "--batch", "1; DROP TABLE alpha"),
        ("migrate:rollback", "--step", "-1"),
        ("migrate:resolve", ""),
        ("migrate:resolve", "rev0001\nDROP"),
        ("migrate:rehash", "../../x"),
        ("--lock-timeout", "-1", "migrate"),
        ("--lock-timeout", "soon", "migrate"),
    ],
)
def test_command_line_values_are_checked_before_use(sqlite_project: Project, args: tuple[str, ...]) -> None:
    first = create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    assert sqlite_project.run("migrate").exit_code == 0

    result = sqlite_project.run(*args)

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert sqlite_project.version() == {first}
    assert "alpha" in sqlite_project.tables()


def test_a_syntax_error_in_a_migration_names_file_and_line(sqlite_project: Project) -> None:
    create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    (sqlite_project.migrations / "2026_01_01_000002_broken.py").write_text(
        '"""broken"""\nrevision = "rev0002"\ndown_revision = "rev0001"\ndef upgrade(:\n    pass\n'
    )

    result = sqlite_project.run("migrate")

    assert result.exit_code == 3
    assert _one_error_line(result).startswith(
        "error: cannot load migration migrations/2026_01_01_000002_broken.py, line 4:"
    )
    assert sqlite_project.tables() == set()


def test_check_fails_on_an_edited_applied_migration(project: Project) -> None:
    import json

    revision = create_table_revision(project.migrations, 1, "alpha", None)
    project.write_model(
        "alpha.py",
        """
        import sqlalchemy as sa

        from models.base import Base

        alpha = sa.Table(
            "alpha",
            Base.metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("label", sa.String(50)),
        )
        """,
    )
    assert project.run("migrate").exit_code == 0
    path = project.migrations / "2026_01_01_000001_create_alpha_table.py"
    path.write_text(path.read_text() + "\nEDITED_AFTER_IT_RAN = True\n")

    result = project.run("migrate:check", "--json")

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [problem["kind"] for problem in report["problems"]] == ["edited_file"]
    assert report["problems"][0]["details"] == ["2026_01_01_000001_create_alpha_table"]
    assert project.run("migrate:rehash", revision).exit_code == 0
    assert project.run("migrate:check").exit_code == 0
