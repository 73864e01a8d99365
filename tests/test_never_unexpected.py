"""Broken histories, broken files and a hand-edited ledger end in one sentence naming the file or
the value, a hint and the documented exit code, from every command; never "unexpected"."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
from conftest import CLI_ENV, Project
from helpers import create_table_revision, write_revision

COMMANDS = [
    ("migrate",),
    ("migrate:rollback", "--step", "1"),
    ("migrate:status",),
    ("migrate:check",),
    ("make:migration", "--empty", "next"),
    ("make:migration", "--merge"),
    ("migrate:history",),
    ("migrate:sql", "head"),
]
# The commands that execute every migration file (or the pending ones): migrate:status and
# migrate:history read only the headers, a rollback and --merge load only what they need.
EXECUTING = [("migrate",), ("migrate:check",), ("make:migration", "--empty", "next"), ("migrate:sql", "head")]


def reported(output: str, stderr: str, code: int, expected: int, *named: str) -> None:
    assert code == expected, output
    for text in ("unexpected", "Traceback", "UserWarning", "Nothing to migrate."):
        assert text not in output, output
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert "hint: " in stderr, stderr
    for text in named:
        assert text in errors[0], stderr


def run_all(project: Project, expected: int, *named: str, commands=COMMANDS) -> None:
    before = sorted(project.migrations.iterdir()) if project.migrations.is_dir() else []
    for command in commands:
        result = project.run(*command)
        try:
            reported(result.output, result.stderr, result.exit_code, expected, *named)
        except AssertionError as exc:
            raise AssertionError(f"{command}: {exc}") from None
    after = sorted(project.migrations.iterdir()) if project.migrations.is_dir() else []
    assert after == before  # no migration was written


@pytest.fixture
def two_applied(sqlite_project: Project) -> Project:
    first = create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    create_table_revision(sqlite_project.migrations, 2, "beta", first)
    assert sqlite_project.run("migrate").exit_code == 0
    return sqlite_project


def test_a_down_revision_cycle_names_the_revisions_in_it(two_applied: Project) -> None:
    write_revision(two_applied.migrations, "2026_01_01_000003", "loop_a", "rev0003", "rev0004", "pass")
    write_revision(two_applied.migrations, "2026_01_01_000004", "loop_b", "rev0004", "rev0003", "pass")
    write_revision(two_applied.migrations, "2026_01_01_000005", "after", "rev0005", "rev0004", "pass")

    run_all(
        two_applied,
        6,
        "cycle: 2026_01_01_000003_loop_a (rev0003) -> 2026_01_01_000004_loop_b (rev0004) -> "
        "2026_01_01_000003_loop_a (rev0003)",
    )
    assert "2026_01_01_000005_after" not in two_applied.run("migrate").stderr


def test_a_revision_revising_itself_is_a_cycle(two_applied: Project) -> None:
    write_revision(two_applied.migrations, "2026_01_01_000003", "itself", "rev0003", "rev0003", "pass")

    run_all(two_applied, 6, "cycle: 2026_01_01_000003_itself (rev0003) -> 2026_01_01_000003_itself (rev0003)")


@pytest.mark.parametrize(
    ("statement", "error"),
    [('raise RuntimeError("boom")', "RuntimeError: boom"), ("sys.exit(3)", "SystemExit: 3")],
)
def test_a_migration_failing_at_import_is_named_with_its_line(
    two_applied: Project, statement: str, error: str
) -> None:
    path = write_revision(two_applied.migrations, "2026_01_01_000003", "broken", "rev0003", "rev0002", "pass")
    lines = path.read_text().splitlines()
    lines.insert(2, f"import sys\n{statement}")
    path.write_text("\n".join(lines) + "\n")
    line = lines.index(f"import sys\n{statement}") + 2

    run_all(
        two_applied, 3, f"migrations/2026_01_01_000003_broken.py, line {line}: {error}", commands=EXECUTING
    )
    for command in ("migrate:status", "migrate:history"):
        result = two_applied.run(command)
        assert result.exit_code == 0 and "2026_01_01_000003_broken" in result.stdout, result.output
    assert two_applied.version() == {"rev0002"}

    # Applied, then broken: the rollback that needs it names it too.
    path.write_text(path.read_text().replace(statement, "pass"))
    assert two_applied.run("migrate").exit_code == 0
    path.write_text(path.read_text().replace("import sys\npass", f"import sys\n{statement}"))
    rollback = two_applied.run("migrate:rollback")
    reported(rollback.output, rollback.stderr, rollback.exit_code, 3, "2026_01_01_000003_broken.py")
    assert two_applied.version() == {"rev0003"}


def test_a_revision_id_in_two_files_names_both(two_applied: Project) -> None:
    original = two_applied.migrations / "2026_01_01_000002_create_beta_table.py"
    shutil.copy(original, two_applied.migrations / "2026_01_01_000003_copy_of_beta.py")

    run_all(
        two_applied,
        6,
        "rev0002",
        "2026_01_01_000002_create_beta_table.py",
        "2026_01_01_000003_copy_of_beta.py",
    )
    assert "heads" not in two_applied.run("migrate:status").stderr


def test_a_migrations_path_that_is_a_file(sqlite_project: Project) -> None:
    shutil.rmtree(sqlite_project.migrations)
    sqlite_project.migrations.write_text("not a directory\n")

    run_all(sqlite_project, 3, "migrations path migrations is a file")


def _without_root_powers() -> list[str]:
    """A command prefix under which permissions apply: root reads everything unless it drops
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (setpriv, util-linux)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv is missing: root reads any directory")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.parametrize(("mode", "what"), [(0o000, "migrations directory migrations"), (0o600, "migration")])
def test_an_unreadable_migrations_directory(two_applied: Project, mode: int, what: str) -> None:
    prefix = _without_root_powers()
    (two_applied.root / "manage.py").write_text("from manage_migrations.cli import main\n\nmain()\n")
    env = {**os.environ, **CLI_ENV, "DATABASE_URL": two_applied.url}
    two_applied.migrations.chmod(mode)
    try:
        for command in COMMANDS:
            completed = subprocess.run(
                [*prefix, sys.executable, "manage.py", *command],
                cwd=two_applied.root,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            output = completed.stdout + completed.stderr
            try:
                reported(output, completed.stderr, completed.returncode, 3, what, "Permission denied")
            except AssertionError as exc:
                raise AssertionError(f"{command}: {exc}") from None
    finally:
        two_applied.migrations.chmod(0o755)
    assert two_applied.version() == {"rev0002"}


def test_garbage_in_the_ledger_is_a_warning_naming_the_row(two_applied: Project) -> None:
    with sqlite3.connect(two_applied.root.parent / "test.sqlite3") as connection:
        connection.execute("UPDATE manage_migrations SET applied_at = 'garbage' WHERE revision = 'rev0001'")
        connection.execute("UPDATE manage_migrations SET batch = 'abc' WHERE revision = 'rev0002'")
    create_table_revision(two_applied.migrations, 3, "gamma", "rev0002")
    warnings = (
        "warning: the ledger row of 2026_01_01_000001_create_alpha_table (rev0001) has applied_at "
        "'garbage', not a date and time",
        "warning: the ledger row of 2026_01_01_000002_create_beta_table (rev0002) has batch 'abc', "
        "not a number",
    )

    for command in (("migrate:status",), ("migrate",), ("migrate:status",), ("migrate:rollback",)):
        result = two_applied.run(*command)
        assert result.exit_code == 0, (command, result.output)
        assert all(warning in result.stderr for warning in warnings), (command, result.stderr)
        assert "unexpected" not in result.output
    status = two_applied.run("migrate:status").stdout
    assert "2026_01_01_000003_create_gamma_table   Pending" in status

    stepped = two_applied.run("migrate:rollback", "--step", "1")
    assert stepped.exit_code == 0, stepped.output
    assert two_applied.version() == {"rev0001"} and "beta" not in two_applied.tables()
    assert two_applied.run("migrate").exit_code == 0
    assert two_applied.version() == {"rev0003"}


def test_merge_names_a_migration_failing_at_import(two_applied: Project) -> None:
    write_revision(two_applied.migrations, "2026_01_01_000003", "left", "rev0003", "rev0002", "pass")
    path = write_revision(two_applied.migrations, "2026_01_01_000004", "right", "rev0004", "rev0002", "pass")
    path.write_text(path.read_text().replace("def upgrade", 'raise RuntimeError("boom")\n\n\ndef upgrade'))

    merged = two_applied.run("make:migration", "--merge")

    reported(merged.output, merged.stderr, merged.exit_code, 3, "2026_01_01_000004_right.py, line", "boom")
    assert len(two_applied.migration_files()) == 4
