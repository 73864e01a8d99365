"""fresh, reset, refresh, migrate TARGET, rollback --to, --fake, history and sql, on every backend."""

from __future__ import annotations

import re

import pytest
from conftest import Project, fresh_database, make_project
from helpers import create_table_revision, write_revision

LINE = re.compile(r"^  (\S+) \.{3,} (\d[\d.]* (?:ms|s|min \d+ s)) (DONE|FAIL)$", re.MULTILINE)
NAMES = [
    "2026_01_01_000001_create_alpha_table",
    "2026_01_01_000002_create_beta_table",
    "2026_01_01_000003_create_gamma_table",
]


def _three(project: Project) -> list[str]:
    first = create_table_revision(project.migrations, 1, "alpha", None)
    second = create_table_revision(project.migrations, 2, "beta", first)
    third = create_table_revision(project.migrations, 3, "gamma", second)
    return [first, second, third]


def _ran(result) -> list[str]:
    return [name for name, _, state in LINE.findall(result.stdout) if state == "DONE"]


def test_fresh_drops_everything_in_the_database_and_migrates(project: Project) -> None:
    revisions = _three(project)
    assert project.run("migrate").exit_code == 0
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE stray (id INTEGER PRIMARY KEY)")
        connection.exec_driver_sql("CREATE VIEW stray_view AS SELECT id FROM alpha")
        if project.backend == "postgresql":
            connection.exec_driver_sql("CREATE TYPE stray_mood AS ENUM ('ok')")
            connection.exec_driver_sql("CREATE SEQUENCE stray_seq")
    engine.dispose()

    result = project.run("migrate:fresh")

    assert result.exit_code == 0, result.output
    # alpha, beta, gamma, stray and the three tool tables (ledger, version, state).
    assert "Dropped 7 tables, 1 view" in result.stdout
    if project.backend == "postgresql":
        assert "1 sequence, 1 enum type." in result.stdout
        assert project.query("SELECT typname FROM pg_type WHERE typname = 'stray_mood'") == []
    assert result.stdout.index("Dropped") < result.stdout.index("Running migrations")
    assert _ran(result) == NAMES
    assert "stray" not in project.tables()
    assert {"alpha", "beta", "gamma"} <= project.tables()
    assert project.version() == {revisions[-1]}
    assert [batch for _, _, batch in project.ledger()] == [1, 1, 1]


def test_fresh_on_postgresql_leaves_other_schemas_alone(tmp_path, monkeypatch) -> None:
    for url in fresh_database("postgresql", tmp_path):
        project = make_project(tmp_path, url, monkeypatch)
        create_table_revision(project.migrations, 1, "alpha", None)
        engine = project.engine()
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE SCHEMA other")
            connection.exec_driver_sql("CREATE TABLE other.kept (id INTEGER PRIMARY KEY)")
        engine.dispose()

        result = project.run("migrate:fresh")

        assert result.exit_code == 0, result.output
        assert project.query("SELECT count(*) FROM other.kept") == [(0,)]
        assert "alpha" in project.tables()


def test_reset_rolls_back_everything_newest_first(project: Project) -> None:
    _three(project)
    assert project.run("migrate", "--step").exit_code == 0

    result = project.run("migrate:reset")

    assert result.exit_code == 0, result.output
    assert _ran(result) == NAMES[::-1]
    assert "3 migrations rolled back" in result.stdout
    assert not {"alpha", "beta", "gamma"} & project.tables()
    assert project.version() == set()
    assert project.ledger() == []
    assert project.run("migrate:reset").stdout.strip() == "Nothing to rollback."


def test_refresh_rolls_back_and_migrates_again(project: Project) -> None:
    revisions = _three(project)
    assert project.run("migrate", "--step").exit_code == 0

    result = project.run("migrate:refresh")

    assert result.exit_code == 0, result.output
    assert _ran(result) == NAMES[::-1] + NAMES
    assert project.version() == {revisions[-1]}
    assert [batch for _, _, batch in project.ledger()] == [1, 1, 1]


def test_refresh_step_redoes_only_the_last_n(project: Project) -> None:
    revisions = _three(project)
    assert project.run("migrate", "--step").exit_code == 0

    result = project.run("migrate:refresh", "--step", "2")

    assert result.exit_code == 0, result.output
    assert _ran(result) == [NAMES[2], NAMES[1], NAMES[1], NAMES[2]]
    assert [(rev, batch) for rev, _, batch in project.ledger()] == [
        (revisions[0], 1),
        (revisions[1], 2),
        (revisions[2], 2),
    ]


def test_migrate_to_a_target_and_roll_back_to_one(project: Project) -> None:
    revisions = _three(project)

    partial = project.run("migrate", "create_beta")
    assert partial.exit_code == 0, partial.output
    assert _ran(partial) == NAMES[:2]
    assert project.version() == {revisions[1]}

    rest = project.run("migrate", "head")
    assert _ran(rest) == NAMES[2:]
    assert project.run("migrate", revisions[2]).stdout.strip() == "Nothing to migrate."

    back = project.run("migrate:rollback", "--to", "2026_01_01_000001")
    assert back.exit_code == 0, back.output
    assert _ran(back) == [NAMES[2], NAMES[1]]
    assert project.version() == {revisions[0]}
    assert [rev for rev, _, _ in project.ledger()] == [revisions[0]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("migrate", "nope"), "no migration matches 'nope'"),
        (("migrate", "create"), "'create' matches 3 migrations"),
        (("migrate:rollback", "--to", "create_"), "'create_' matches 3 migrations"),
        (("migrate:sql", "zzz"), "no migration matches 'zzz'"),
    ],
)
def test_unknown_or_ambiguous_targets_list_candidates(
    sqlite_project: Project, args: tuple[str, ...], message: str
) -> None:
    _three(sqlite_project)
    result = sqlite_project.run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert NAMES[0] in result.stderr
    assert sqlite_project.version() == set()


def test_rollback_to_a_migration_that_is_not_applied(sqlite_project: Project) -> None:
    _three(sqlite_project)
    assert sqlite_project.run("migrate", "create_alpha").exit_code == 0
    result = sqlite_project.run("migrate:rollback", "--to", "create_gamma")
    assert result.exit_code == 2
    assert "create_gamma_table is not applied" in result.stderr


def test_fake_adopts_an_existing_database(project: Project) -> None:
    revisions = _three(project)
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE alpha (id INTEGER PRIMARY KEY, label VARCHAR(50))")
    engine.dispose()

    failed = project.run("migrate")
    assert failed.exit_code == 1
    assert "migrate --fake" in " ".join(failed.stderr.split())

    faked = project.run("migrate", "create_alpha", "--fake")
    assert faked.exit_code == 0, faked.output
    assert "1 migration faked" in faked.stdout
    assert project.version() == {revisions[0]}
    assert [rev for rev, _, _ in project.ledger()] == [revisions[0]]

    assert project.run("migrate").exit_code == 0
    assert {"beta", "gamma"} <= project.tables()

    unfaked = project.run("migrate:rollback", "--step", "1", "--fake")
    assert unfaked.exit_code == 0, unfaked.output
    assert "gamma" in project.tables()  # the downgrade did not run
    assert project.version() == {revisions[1]}


def test_history_lists_ids_parents_and_heads(sqlite_project: Project) -> None:
    revisions = _three(sqlite_project)
    result = sqlite_project.run("migrate:history")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{revisions[1]} -> {revisions[2]} (head)  {NAMES[2]}"
    assert lines[-1] == f"<base> -> {revisions[0]}  {NAMES[0]}"


def test_sql_prints_one_migration_without_touching_the_database(project: Project) -> None:
    _three(project)
    write_revision(
        project.migrations,
        "2026_01_01_000004",
        "add_note",
        "rev0004",
        "rev0003",
        upgrade='op.add_column("gamma", sa.Column("note", sa.String(20)))',
        downgrade='op.drop_column("gamma", "note")',
    )

    up = project.run("migrate:sql", "create_beta")
    assert up.exit_code == 0, up.output
    assert "CREATE TABLE beta" in up.stdout
    assert "alembic_version" not in up.stdout
    assert "alpha" not in up.stdout

    down = project.run("migrate:sql", "rev0002", "--down")
    assert down.exit_code == 0, down.output
    assert "DROP TABLE beta" in down.stdout

    added = project.run("migrate:sql", "add_note")
    assert added.exit_code == 0, added.output
    assert re.search(r"ALTER TABLE gamma ADD (COLUMN )?note", added.stdout)
    assert project.tables() == set()


def test_quiet_and_verbose_across_commands(project: Project) -> None:
    revisions = _three(project)

    quiet = project.run("migrate", "-q")
    assert quiet.exit_code == 0
    assert quiet.stdout.strip().splitlines() == [quiet.stdout.strip().splitlines()[-1]]
    assert "3 migrations applied" in quiet.stdout

    verbose = project.run("migrate:status", "-v")
    assert all(revision in verbose.stdout for revision in revisions)
    assert "Revision" in verbose.stdout
    assert revisions[0] not in project.run("migrate:status").stdout

    fresh = project.run("migrate:fresh", "--quiet")
    assert fresh.exit_code == 0, fresh.output
    assert fresh.stdout.strip() == "3 migrations applied in" + fresh.stdout.strip().split("applied in")[1]
