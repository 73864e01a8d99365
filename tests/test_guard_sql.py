"""The production guard judges a migration by the SQL it renders, not by its source text: every way
of writing a drop is refused, nothing that only adds is, and the check runs only where the guard
applies. Undoing migrations manage.py did not apply (batch unknown) needs the same consent."""

from __future__ import annotations

import pytest
from conftest import Project
from helpers import run_on_terminal, write_revision

CREATE_USERS = """
op.create_table(
    "users",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100)),
)
"""

# Each drops data without the words `op.drop_column(` or `DROP COLUMN` in its source.
WALK_AROUNDS = {
    "alter_without_column": 'op.execute("ALTER TABLE users DROP name")',
    "space_before_parenthesis": 'op.drop_column ("users", "name")',
    "helper_function": "_helper()",
    "comment_first": 'op.execute("-- tidy up\\nDROP TABLE users")',
    "second_statement": 'op.execute("SELECT 1; DELETE FROM users")',
}
HELPER = """

def _helper():
    op.drop_table("users")
"""

ADDITIVE = {
    "create_table": """
        op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True), sa.Column("label", sa.Text))
        """,
    "add_column": """
        with op.batch_alter_table("users") as batch_op:
            batch_op.add_column(sa.Column("email", sa.String(200), nullable=True))
        """,
    "add_index": """
        with op.batch_alter_table("users") as batch_op:
            batch_op.create_index("ix_users_name", ["name"])
        """,
}


def _users(project: Project) -> None:
    write_revision(project.migrations, "2026_01_01_000001", "create_users", "rev0001", None, CREATE_USERS)
    assert project.run("migrate").exit_code == 0


def _columns(project: Project) -> set[str]:
    import sqlalchemy as sa

    engine = project.engine()
    try:
        return {column["name"] for column in sa.inspect(engine).get_columns("users")}
    finally:
        engine.dispose()


def _write_second(project: Project, name: str, upgrade: str, downgrade: str = "pass") -> None:
    path = write_revision(
        project.migrations, "2026_01_01_000002", name, "rev0002", "rev0001", upgrade, downgrade
    )
    if "_helper" in upgrade:
        path.write_text(path.read_text() + HELPER)


def test_every_way_of_writing_a_drop_is_refused_in_production(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    _users(project)
    for name, upgrade in WALK_AROUNDS.items():
        _write_second(project, name, upgrade)

        refused = project.run("migrate")

        assert refused.exit_code == 7, (name, refused.output)
        assert f"2026_01_01_000002_{name}: drops or deletes data" in refused.stderr, name
        assert "--force" in refused.stderr
        assert project.version() == {"rev0001"}, name
        assert _columns(project) == {"id", "name"}, name
        (project.migrations / f"2026_01_01_000002_{name}.py").unlink()

    _write_second(project, "alter_without_column", WALK_AROUNDS["alter_without_column"])
    forced = project.run("migrate", "--force")
    assert forced.exit_code == 0, forced.output
    assert _columns(project) == {"id"}


def test_migrations_that_only_add_are_not_refused_in_production(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    _users(project)
    down = "rev0001"
    for index, (name, upgrade) in enumerate(ADDITIVE.items(), start=2):
        revision = f"rev{index:04d}"
        write_revision(project.migrations, f"2026_01_01_{index:06d}", name, revision, down, upgrade)
        down = revision

    result = project.run("migrate")

    assert result.exit_code == 0, result.output
    assert project.version() == {"rev0004"}
    assert "tags" in project.tables() and "email" in _columns(project)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_migration_without_offline_sql_counts_as_destructive(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    _users(project)
    _write_second(
        project,
        "make_name_required",  # SQLite batch mode must read the table: no offline rendering
        """
        with op.batch_alter_table("users") as batch_op:
            batch_op.alter_column("name", nullable=False, existing_type=sa.String(100))
        """,
    )

    refused = project.run("migrate")

    assert refused.exit_code == 7, refused.output
    assert "2026_01_01_000002_make_name_required: no offline SQL to check" in refused.stderr
    assert project.version() == {"rev0001"}


COUNTING = """
import pathlib
counter = pathlib.Path(__file__).parent.parent / "upgrade_calls.txt"
counter.write_text(counter.read_text() + "x" if counter.exists() else "x")
op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True))
"""


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_drop_check_runs_only_where_the_guard_applies(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _users(project)
    _write_second(project, "create_tags", COUNTING, 'op.drop_table("tags")')
    counter = project.root / "upgrade_calls.txt"

    assert project.run("migrate").exit_code == 0
    assert counter.read_text() == "x"  # run once, never rendered: local costs nothing

    assert project.run("migrate:rollback").exit_code == 0
    counter.unlink()
    monkeypatch.setenv("APP_ENV", "production")
    assert project.run("migrate").exit_code == 0
    assert counter.read_text() == "xx"  # rendered offline for the guard, then run


def test_a_database_last_migrated_in_production_is_guarded_from_a_local_run(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    _users(project)
    monkeypatch.setenv("APP_ENV", "local")
    _write_second(project, "space_before_parenthesis", WALK_AROUNDS["space_before_parenthesis"])

    refused = project.run("migrate")

    assert refused.exit_code == 7, refused.output
    assert "last migrated in production" in refused.stderr
    assert _columns(project) == {"id", "name"}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_migration_that_fails_to_load_is_not_mistaken_for_a_drop(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    _users(project)
    _write_second(project, "broken", "pass")
    path = project.migrations / "2026_01_01_000002_broken.py"
    path.write_text(path.read_text().replace("def upgrade", 'raise RuntimeError("boom")\n\n\ndef upgrade'))

    result = project.run("migrate")

    assert result.exit_code == 3, result.output
    assert "migrations/2026_01_01_000002_broken.py, line" in result.stderr
    assert "RuntimeError: boom" in result.stderr


# B. Taking over a plain Alembic project: applied revisions without a ledger row.


def _taken_over(project: Project) -> None:
    """users and tags applied without manage.py (no ledger row), posts applied by manage.py."""
    write_revision(
        project.migrations,
        "2026_01_01_000001",
        "create_users",
        "rev0001",
        None,
        CREATE_USERS,
        'op.drop_table("users")',
    )
    for index, table in ((2, "tags"), (3, "posts")):
        write_revision(
            project.migrations,
            f"2026_01_01_{index:06d}",
            f"create_{table}",
            f"rev{index:04d}",
            f"rev{index - 1:04d}",
            f'op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True))',
            f'op.drop_table("{table}")',
        )
        if table == "tags":
            assert project.run("migrate").exit_code == 0
            engine = project.engine()
            with engine.begin() as connection:
                connection.exec_driver_sql("DELETE FROM manage_migrations")
            engine.dispose()
    assert project.run("migrate").exit_code == 0


def test_rolling_back_migrations_of_unknown_batch_needs_consent(project: Project) -> None:
    _taken_over(project)

    assert project.run("migrate:rollback", "--step", "1").exit_code == 0  # its own: no question
    assert project.run("migrate").exit_code == 0
    for args in (("--step", "2"), ("--to", "create_users")):
        refused = project.run("migrate:rollback", *args)
        assert refused.exit_code == 7, (args, refused.output)
        assert "including 1 that manage.py did not apply (batch unknown: 2026_01_01_000002_create_tags)" in (
            refused.stderr
        )
        assert "--force" in refused.stderr
        assert {"users", "tags", "posts"} <= project.tables()

    assert project.run("migrate:rollback").exit_code == 0  # the last batch: posts
    refused = project.run("migrate:rollback")
    assert refused.exit_code == 2 and "no batch is recorded" in refused.stderr
    assert project.run("migrate:rollback", "--step", "1", "--fake").exit_code == 0  # runs nothing
    assert project.version() == {"rev0001"} and "tags" in project.tables()
    forced = project.run("migrate:rollback", "--step", "1", "--force")
    assert forced.exit_code == 0, forced.output
    assert project.version() == set() and "users" not in project.tables()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_rolling_back_unknown_batches_asks_on_a_terminal(project: Project) -> None:
    _taken_over(project)

    code, output = run_on_terminal(
        project, b"\n", "migrate:rollback", "--step", "2", question=b"are you sure?"
    )
    assert code == 7, output
    assert {"users", "tags", "posts"} <= project.tables()

    code, output = run_on_terminal(
        project, b"y\n", "migrate:rollback", "--step", "2", question=b"are you sure?"
    )
    assert code == 0, output
    assert "2 migrations rolled back" in output
    assert project.version() == {"rev0001"}

    assert project.run("migrate").exit_code == 0
    assert project.run("migrate:rollback", "--step", "2").exit_code == 0  # both have a batch now


@pytest.mark.parametrize("backend", ["sqlite"])
def test_reset_reaching_unknown_batches_needs_consent(project: Project) -> None:
    _taken_over(project)

    refused = project.run("migrate:reset")
    assert refused.exit_code == 7, refused.output
    assert "roll back 3 migrations including 2 that manage.py did not apply" in refused.stderr
    assert {"users", "tags", "posts"} <= project.tables()
    assert project.run("migrate:reset", "--force").exit_code == 0
    assert project.version() == set()
