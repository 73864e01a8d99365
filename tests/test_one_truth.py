"""One source of truth (issue 11): one revision graph, alembic_version over the ledger, a COMMIT
that can fail, version writes that check what they replace, work outside a transaction."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from conftest import CLI_ENV, USERS_MODEL, Project
from helpers import create_table_revision, write_revision

ALEMBIC_TABLE = """
[tool.alembic]
script_location = "manage_migrations:alembic_env"
version_locations = ["%(here)s/migrations"]
prepend_sys_path = ["."]

[tool.manage]
models = ["models"]
migrations = "migrations"
"""


def alembic(project: Project, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Plain `alembic` from the project root, through the shared environment."""
    (project.root / "pyproject.toml").write_text(ALEMBIC_TABLE)
    if not (project.root / "models" / "users.py").exists():
        project.write_model("users.py", USERS_MODEL)  # the environment refuses a project without models
    env = {**os.environ, **CLI_ENV, "DATABASE_URL": project.url, **extra_env}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def status_states(project: Project) -> dict[str, str]:
    result = project.run("migrate:status")
    return dict(re.findall(r"^(2026_\S+) +(Ran|Pending|Failed|Missing)", result.stdout, re.M))


def _branch_with_dependency(project: Project) -> None:
    """a; b on its own branch; c revises a and depends on b."""
    create_table_revision(project.migrations, 1, "alpha", None)
    path = project.migrations / "2026_01_01_000002_create_beta_table.py"
    create_table_revision(project.migrations, 2, "beta", None)
    text = path.read_text().replace("branch_labels = None", "branch_labels = ('other',)")
    path.write_text(text)
    create_table_revision(project.migrations, 3, "gamma", "rev0001")
    gamma = project.migrations / "2026_01_01_000003_create_gamma_table.py"
    gamma.write_text(gamma.read_text().replace("depends_on = None", "depends_on = 'rev0002'"))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_one_graph_for_migrate_reset_and_status_with_depends_on(project: Project) -> None:
    _branch_with_dependency(project)
    migrated = project.run("migrate", "rev0003")
    assert migrated.exit_code == 0, migrated.output
    assert "3 migrations applied" in migrated.stdout
    assert set(status_states(project).values()) == {"Ran"}

    reset = project.run("migrate:reset")

    assert reset.exit_code == 0, reset.output
    assert "3 migrations rolled back" in reset.stdout
    assert project.version() == set()
    assert not {"alpha", "beta", "gamma"} & project.tables()
    assert set(status_states(project).values()) == {"Pending"}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_plain_alembic_downgrade_is_seen_by_every_command(project: Project) -> None:
    first = create_table_revision(project.migrations, 1, "alpha", None)
    second = create_table_revision(project.migrations, 2, "beta", first)
    assert project.run("migrate").exit_code == 0

    downgraded = alembic(project, "downgrade", "-1")
    assert downgraded.returncode == 0, downgraded.stderr

    assert status_states(project) == {
        "2026_01_01_000001_create_alpha_table": "Ran",
        "2026_01_01_000002_create_beta_table": "Pending",
    }
    assert project.run("migrate:status", "--pending").exit_code == 1
    check = project.run("migrate:check")
    assert check.exit_code == 1 and "not applied" in check.stderr
    migrated = project.run("migrate")
    assert migrated.exit_code == 0, migrated.output
    assert "1 migration applied" in migrated.stdout
    assert [row[0] for row in project.ledger()] == [first, second]

    to_base = alembic(project, "downgrade", "base")
    assert to_base.returncode == 0, to_base.stderr
    for command in (("migrate:status",), ("migrate:check",), ("migrate:rollback",)):
        result = project.run(*command)
        assert result.exit_code != 6, (command, result.output)
    assert set(status_states(project).values()) == {"Pending"}
    assert project.run("migrate").exit_code == 0
    assert project.version() == {second}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_ledger_rows_outside_alembic_version_are_reconciled_with_a_note(project: Project) -> None:
    first = create_table_revision(project.migrations, 1, "alpha", None)
    second = create_table_revision(project.migrations, 2, "beta", first)
    assert project.run("migrate").exit_code == 0
    engine = project.engine()
    with engine.begin() as connection:  # a hand repair (or another tool) moved alembic_version back
        connection.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{first}'")
    engine.dispose()

    status = project.run("migrate:status")
    assert status.exit_code == 0, status.output
    assert "note: the ledger listed 1 migration(s) alembic_version does not" in status.stderr
    assert status_states(project)["2026_01_01_000002_create_beta_table"] == "Pending"
    rolled_back = project.run("migrate:rollback")
    assert rolled_back.exit_code == 0, rolled_back.output
    assert "2026_01_01_000001_create_alpha_table" in rolled_back.stdout
    assert "2026_01_01_000002_create_beta_table" not in rolled_back.stdout
    assert project.ledger() == []
    assert project.version() == set()
    assert second not in {row[0] for row in project.ledger()}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_a_lost_ledger_is_recreated_and_never_means_roll_back_everything(project: Project) -> None:
    first = create_table_revision(project.migrations, 1, "alpha", None)
    create_table_revision(project.migrations, 2, "beta", first)
    assert project.run("migrate").exit_code == 0
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE manage_migrations")
    engine.dispose()

    refused = project.run("migrate:rollback")
    assert refused.exit_code == 2, refused.output
    assert "no batch is recorded" in refused.stderr and "--step N" in refused.stderr
    assert {"alpha", "beta"} <= project.tables()

    create_table_revision(project.migrations, 3, "gamma", "rev0002")
    migrated = project.run("migrate")
    assert migrated.exit_code == 0, migrated.output
    assert [row[0] for row in project.ledger()] == ["rev0003"]
    assert project.run("migrate:rollback").exit_code == 0
    assert "gamma" not in project.tables() and {"alpha", "beta"} <= project.tables()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_deferred_constraint_fails_its_own_migration_not_the_commit(project: Project) -> None:
    write_revision(
        project.migrations,
        "2026_01_01_000001",
        "create_parent_and_child",
        "rev0001",
        None,
        upgrade="""
        op.execute("CREATE TABLE parent (id int PRIMARY KEY)")
        op.execute(
            "CREATE TABLE child (id int PRIMARY KEY, "
            "parent_id int REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
        )
        """,
        downgrade='op.execute("DROP TABLE child, parent")',
    )
    write_revision(
        project.migrations,
        "2026_01_01_000002",
        "orphan_child",
        "rev0002",
        "rev0001",
        upgrade="""op.execute("INSERT INTO child VALUES (1, 42)")""",
    )

    result = project.run("migrate")

    assert result.exit_code == 1, result.output
    assert "unexpected" not in result.output
    assert re.search(r"create_parent_and_child \.+ .* DONE", result.stdout)
    assert re.search(r"orphan_child \.+ .* FAIL", result.stdout)
    assert "ForeignKeyViolation" in result.stderr
    assert project.version() == {"rev0001"}
    assert {"parent", "child"} <= project.tables()
    assert project.query("SELECT count(*) FROM child") == [(0,)]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_migration_that_commits_by_itself_is_marked_failed_when_it_breaks(project: Project) -> None:
    create_table_revision(project.migrations, 1, "alpha", None)
    write_revision(
        project.migrations,
        "2026_01_01_000002",
        "commits_then_fails",
        "rev0002",
        "rev0001",
        upgrade="""
        op.execute("CREATE TABLE committed_early (id int)")
        op.execute("COMMIT")
        op.execute("INSERT INTO no_such_table VALUES (1)")
        """,
    )

    result = project.run("migrate")

    assert result.exit_code == 1, result.output
    stderr = " ".join(result.stderr.split())
    assert "migrate:resolve rev0002" in stderr
    assert "CREATE TABLE committed_early" in stderr
    assert "committed_early" in project.tables()
    assert project.version() == {"rev0001"}
    assert status_states(project)["2026_01_01_000002_commits_then_fails"] == "Failed"
    assert project.run("migrate").exit_code == 6


@pytest.mark.parametrize("backend", ["postgresql"])
def test_plain_alembic_racing_a_migrate_never_applies_a_migration_twice(project: Project) -> None:
    create_table_revision(project.migrations, 1, "runs", None)
    write_revision(
        project.migrations,
        "2026_01_01_000002",
        "slow_counted",
        "rev0002",
        "rev0001",
        upgrade="""
        import os, pathlib
        pathlib.Path(os.environ["RACE_MARKER"]).touch()
        op.execute("SELECT pg_sleep(2)")
        op.execute("INSERT INTO runs (label) VALUES ('slow_counted')")
        """,
        downgrade="""op.execute("DELETE FROM runs WHERE label = 'slow_counted'")""",
    )
    assert project.run("migrate", "rev0001").exit_code == 0
    marker = project.root / "inside_the_slow_migration"
    (project.root / "manage.py").write_text("from manage_migrations.cli import main\n\nmain()\n")
    env = {**os.environ, **CLI_ENV, "DATABASE_URL": project.url, "RACE_MARKER": str(marker)}
    ours = subprocess.Popen(
        [sys.executable, "manage.py", "migrate"],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not marker.exists():  # start Alembic only once ours is inside the slow migration
        assert ours.poll() is None and time.monotonic() < deadline, ours.communicate()
        time.sleep(0.02)
    theirs = alembic(project, "upgrade", "head", RACE_MARKER=str(project.root / "theirs_too"))
    out, err = ours.communicate(timeout=60)

    assert project.query("SELECT count(*) FROM runs WHERE label = 'slow_counted'") == [(1,)]
    assert project.version() == {"rev0002"}
    assert sorted([ours.returncode, theirs.returncode])[0] == 0, (out, err, theirs.stderr)
    assert ours.returncode != theirs.returncode, "both overlapped, so one of them must have lost"
    if ours.returncode:
        assert ours.returncode == 6, err
        assert "alembic_version changed while this run was migrating" in err


@pytest.mark.parametrize("backend", ["postgresql"])
def test_an_idle_session_timeout_does_not_end_the_migration_lock(project: Project) -> None:
    create_table_revision(project.migrations, 1, "runs", None)
    write_revision(
        project.migrations,
        "2026_01_01_000002",
        "slow",
        "rev0002",
        "rev0001",
        upgrade="""
        import os, pathlib
        pathlib.Path(os.environ["SLOW_MARKER"]).touch()
        op.execute("SELECT pg_sleep(3.5)")
        """,
    )
    marker = project.root / "inside_the_slow_migration"
    database = project.url.rsplit("/", 1)[1]
    engine = project.engine()
    with engine.connect() as connection:
        connection.exec_driver_sql(f"ALTER DATABASE {database} SET idle_session_timeout = '1500ms'")
        connection.commit()
    engine.dispose()
    (project.root / "manage.py").write_text("from manage_migrations.cli import main\n\nmain()\n")
    env = {**os.environ, **CLI_ENV, "DATABASE_URL": project.url, "SLOW_MARKER": str(marker)}
    first = subprocess.Popen(
        [sys.executable, "manage.py", "migrate"], cwd=project.root, env=env, stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.02)
    time.sleep(1.6)  # the lock's connection has now been idle longer than idle_session_timeout
    second = subprocess.run(
        [sys.executable, "manage.py", "migrate"], cwd=project.root, env=env, capture_output=True, text=True
    )
    out, _ = first.communicate(timeout=60)

    assert first.returncode == 0, out
    assert "2 migrations applied" in out
    assert second.returncode == 0, second.stderr
    assert "Nothing to migrate." in second.stdout
    assert project.version() == {"rev0002"}
