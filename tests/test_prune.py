"""migrate:dump --prune: the migration files a dump covers become one squash migration, and every
database (at head, empty, or behind the dump) keeps working or gets one clear error."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import REPO_ROOT, Project, fresh_database
from helpers import create_table_revision, run_on_terminal
from test_schema_dump import reflected_schema

EXAMPLE_HEAD = "008b9ce71854"
EXAMPLE_PRUNED = ("513834cb9430", "108a29611720")
HEAD_FILE = "2026_11_25_043825_create_tags_and_post_tags_tables.py"
COMMENTS_MODEL = """
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(String(500))
"""


def example_app(project: Project) -> None:
    """The repository's example models and their three migrations (users, posts, tags)."""
    for source in (REPO_ROOT / "models").glob("*.py"):
        project.write_model(source.name, source.read_text())
    for source in (REPO_ROOT / "migrations").glob("*.py"):
        (project.migrations / source.name).write_text(source.read_text())


def dialect(project: Project) -> str:
    backend = project.backend
    return "mysql" if backend in ("mysql", "mariadb") else backend


def pruned(project: Project) -> None:
    """Migrate the example app, then prune it without a prompt."""
    example_app(project)
    assert project.run("migrate").exit_code == 0
    result = project.run("migrate:dump", "--prune", "--force")
    assert result.exit_code == 0, result.output
    assert "Pruned 2 migration files" in result.stdout


def no_traceback(result) -> str:
    assert "Traceback" not in result.output
    return result.stderr


@pytest.fixture
def other_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database on the project's backend."""
    (tmp_path / "other").mkdir()
    yield from fresh_database(backend, tmp_path / "other")


@pytest.fixture
def third_database(backend: str, tmp_path: Path) -> Iterator[str]:
    (tmp_path / "third").mkdir()
    yield from fresh_database(backend, tmp_path / "third")


def test_prune_leaves_the_squash_migration_and_the_dumps(project: Project) -> None:
    pruned(project)

    assert [path.name for path in project.migration_files()] == [HEAD_FILE]
    schema = project.migrations / "schema"
    assert sorted(path.name for path in schema.iterdir()) == [
        f"{dialect(project)}-schema.sql",
        f"{dialect(project)}-squashed-{EXAMPLE_HEAD}.sql",
    ]
    squash = (project.migrations / HEAD_FILE).read_text()
    assert f'revision: str = "{EXAMPLE_HEAD}"' in squash
    assert "down_revision: str | None = None" in squash
    assert all(f'"{revision}"' in squash for revision in EXAMPLE_PRUNED)


def test_a_database_at_head_keeps_working_after_the_prune(project: Project) -> None:
    pruned(project)

    status = project.run("migrate:status")
    assert status.exit_code == 0, status.output
    assert "Ran, squashes 2" in status.stdout
    assert "Missing" not in status.stdout and "edited" not in status.stdout
    assert "1 ran, 0 pending, 2 pruned migrations squashed." in status.stdout
    check = project.run("migrate:check")
    assert check.exit_code == 0, check.output
    assert project.run("migrate").stdout.strip() == "Nothing to migrate."

    project.write_model("comments.py", COMMENTS_MODEL)
    created = project.make("add comments")
    assert f'down_revision: str | Sequence[str] | None = "{EXAMPLE_HEAD}"' in created.read_text()
    migrated = project.run("migrate")
    assert migrated.exit_code == 0, migrated.output
    assert "comments" in project.tables()
    assert project.run("migrate:check").exit_code == 0

    rolled_back = project.run("migrate:rollback")
    assert rolled_back.exit_code == 0, rolled_back.output
    assert "comments" not in project.tables()
    assert project.run("migrate").exit_code == 0

    for command in (("migrate:rollback", "--step", "2"), ("migrate:reset",), ("migrate:refresh",)):
        refused = project.run(*command)
        assert refused.exit_code == 6, (command, refused.output)
        assert f"cannot roll back {HEAD_FILE[:-3]}: it squashes 2 pruned migrations" in no_traceback(refused)
        assert "migrate:fresh" in refused.stderr
    assert "--step 1" in project.run("migrate:rollback", "--step", "2").stderr
    assert {"users", "posts", "tags", "post_tags", "comments"} <= project.tables()

    fresh = project.run("migrate:fresh")
    assert fresh.exit_code == 0, fresh.output
    assert "Loaded schema dump" in fresh.stdout
    assert "comments" in project.tables()


def test_an_empty_database_gets_the_same_schema_from_the_dump_or_the_squash_migration(
    project: Project, other_database: str, third_database: str
) -> None:
    example_app(project)
    assert project.run("migrate").exit_code == 0
    before = reflected_schema(project.url)
    pruned_project = project.run("migrate:dump", "--prune", "--force")
    assert pruned_project.exit_code == 0, pruned_project.output

    loaded = project.run("migrate", url=other_database)
    assert loaded.exit_code == 0, loaded.output
    assert "Loaded schema dump" in loaded.stdout
    assert reflected_schema(other_database) == before
    assert "Ran, squashes 2" in project.run("migrate:status", url=other_database).stdout

    project.url = third_database
    squashed = project.run("migrate", "--no-dump")
    assert squashed.exit_code == 0, squashed.output
    assert "Loaded schema dump" not in squashed.stdout
    assert f"{HEAD_FILE[:-3]} " in squashed.stdout and squashed.stdout.count(" DONE") == 1
    assert reflected_schema(third_database) == before
    status = project.run("migrate:status")
    assert status.exit_code == 0 and "edited" not in status.stdout, status.output
    assert project.run("migrate:check").exit_code == 0


def test_a_database_behind_the_dump_gets_one_clear_error(project: Project, other_database: str) -> None:
    example_app(project)
    assert project.run("migrate", "create_users_table", url=other_database).exit_code == 0
    pruned(project)

    for command in (("migrate",), ("migrate:status",), ("migrate:rollback",), ("make:migration", "x")):
        result = project.run(*command, url=other_database)
        assert result.exit_code == 6, (command, result.output)
        error = no_traceback(result)
        assert (
            f"error: the database is at revision {EXAMPLE_PRUNED[0]} (2026_11_25_043818_create_users_table), "
            f"whose file was pruned into the squashed migration {HEAD_FILE[:-3]}"
        ) in error
        assert "migrate:fresh" in error
    assert project.run("migrate:check", url=other_database).exit_code == 1


def test_prune_without_a_terminal_refuses_and_changes_nothing(project: Project) -> None:
    example_app(project)
    assert project.run("migrate").exit_code == 0
    before = sorted(path.name for path in project.migration_files())

    refused = project.run("migrate:dump", "--prune")

    assert refused.exit_code == 7, refused.output
    assert "refused to prune without confirmation; nothing was written or deleted" in no_traceback(refused)
    assert f"delete   migrations/{before[0]}" in refused.stdout
    assert sorted(path.name for path in project.migration_files()) == before
    assert not (project.migrations / "schema").exists()

    pretend = project.run("migrate:dump", "--prune", "--pretend")
    assert pretend.exit_code == 0, pretend.output
    assert "nothing was changed" in pretend.stdout
    assert sorted(path.name for path in project.migration_files()) == before
    assert not (project.migrations / "schema").exists()


def test_prune_refuses_when_the_dump_would_not_cover_the_files(sqlite_project: Project) -> None:
    project = sqlite_project
    first = create_table_revision(project.migrations, 1, "alpha", None)
    create_table_revision(project.migrations, 2, "beta", first)
    assert project.run("migrate", first).exit_code == 0

    behind = project.run("migrate:dump", "--prune", "--force")
    assert behind.exit_code == 1, behind.output
    assert "the database is not at the newest migration" in no_traceback(behind)
    assert "1 migration(s) are pending" in behind.stderr

    create_table_revision(project.migrations, 3, "gamma", first)
    heads = project.run("migrate:dump", "--prune", "--force")
    assert heads.exit_code == 6, heads.output
    assert "the migration history has 2 heads" in no_traceback(heads)
    (project.migrations / "2026_01_01_000003_create_gamma_table.py").unlink()

    assert project.run("migrate").exit_code == 0
    schema = project.migrations / "schema"
    schema.mkdir()
    stale = schema / "postgresql-schema.sql"
    stale.write_text(f"-- postgresql schema dump written by manage.py migrate:dump\n-- revisions: {first}\n")
    other_dialect = project.run("migrate:dump", "--prune", "--force")
    assert other_dialect.exit_code == 1, other_dialect.output
    assert f"schema/postgresql-schema.sql was dumped at {first}, not at" in no_traceback(other_dialect)
    assert len(project.migration_files()) == 2
    assert not (schema / "sqlite-schema.sql").exists()


def test_the_squash_migration_fails_clearly_without_a_dump_for_the_dialect(
    sqlite_project: Project, tmp_path: Path
) -> None:
    project = sqlite_project
    pruned(project)
    for path in (project.migrations / "schema").iterdir():
        path.unlink()

    result = project.run("migrate", url=f"sqlite:///{tmp_path / 'new.sqlite3'}")

    assert result.exit_code == 1, result.output
    assert (
        f"the migrations up to {EXAMPLE_HEAD} were pruned into a schema dump, and there is none for sqlite"
    ) in no_traceback(result)
    assert project.run("migrate:status").exit_code == 0  # the database at head does not need it


def test_a_dump_taken_before_the_prune_is_not_loaded(sqlite_project: Project, tmp_path: Path) -> None:
    project = sqlite_project
    example_app(project)
    assert project.run("migrate", "create_posts_table").exit_code == 0
    assert project.run("migrate:dump").exit_code == 0
    old_dump = (project.migrations / "schema" / "sqlite-schema.sql").read_text()
    assert project.run("migrate").exit_code == 0
    assert project.run("migrate:dump", "--prune", "--force").exit_code == 0
    (project.migrations / "schema" / "sqlite-schema.sql").write_text(old_dump)

    result = project.run("migrate", url=f"sqlite:///{tmp_path / 'new.sqlite3'}")

    assert result.exit_code == 6, result.output
    assert f"was dumped at revision {EXAMPLE_PRUNED[1]}, which was pruned into" in no_traceback(result)
    assert "--no-dump" in result.stderr


def test_pruning_again_folds_the_earlier_squash_into_the_new_one(
    sqlite_project: Project, tmp_path: Path
) -> None:
    project = sqlite_project
    pruned(project)
    project.write_model("comments.py", COMMENTS_MODEL)
    later = project.make("add comments")
    assert project.run("migrate").exit_code == 0

    again = project.run("migrate:dump", "--prune", "--force")

    assert again.exit_code == 0, again.output
    assert [path.name for path in project.migration_files()] == [later.name]
    assert sorted(path.name for path in (project.migrations / "schema").iterdir()) == [
        "sqlite-schema.sql",
        f"sqlite-squashed-{project.version().pop()}.sql",
    ]
    status = project.run("migrate:status")
    assert "Ran, squashes 3" in status.stdout and "Missing" not in status.stdout, status.output
    fresh = project.run("migrate", "--no-dump", url=f"sqlite:///{tmp_path / 'new.sqlite3'}")
    assert fresh.exit_code == 0, fresh.output
    assert (
        "comments" in sa.inspect(sa.create_engine(f"sqlite:///{tmp_path / 'new.sqlite3'}")).get_table_names()
    )
    assert project.run("migrate:dump", "--prune", "--force").stdout.strip().endswith("is the only migration.")


def test_plain_alembic_builds_an_empty_database_through_the_squash_migration(
    sqlite_project: Project, tmp_path: Path
) -> None:
    project = sqlite_project
    pruned(project)
    (project.root / "pyproject.toml").write_text(
        (REPO_ROOT / "pyproject.toml").read_text().split("[tool.pytest")[0], encoding="utf-8"
    )
    url = f"sqlite:///{tmp_path / 'plain.sqlite3'}"
    env = {**os.environ, "DATABASE_URL": url}
    upgrade = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    assert {"users", "posts", "tags", "post_tags"} <= set(sa.inspect(sa.create_engine(url)).get_table_names())
    downgrade = subprocess.run(
        [sys.executable, "-m", "alembic", "downgrade", "-1"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert downgrade.returncode != 0
    assert "cannot be rolled back" in downgrade.stdout + downgrade.stderr


def test_prune_asks_on_a_terminal_and_defaults_to_no(sqlite_project: Project) -> None:
    project = sqlite_project
    example_app(project)
    assert project.run("migrate").exit_code == 0

    code, output = _run_on_terminal(project, b"\n", "migrate:dump", "--prune")
    assert code == 7, output
    assert len(project.migration_files()) == 3

    code, output = _run_on_terminal(project, b"y\n", "migrate:dump", "--prune")
    assert code == 0, output
    assert "Pruned 2 migration files" in output
    assert [path.name for path in project.migration_files()] == [HEAD_FILE]


def _run_on_terminal(project: Project, answer: bytes, *args: str) -> tuple[int, str]:
    return run_on_terminal(project, answer, *args, question=b"migration files?")


def test_the_index_reads_a_squash_header_without_executing_it(tmp_path: Path) -> None:
    from manage_migrations.core.graph import RevisionGraph

    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "2026_01_01_000001_squash.py").write_text(
        'revision: str = "rrrr"\ndown_revision: str | None = None\n'
        'replaces: tuple[str, ...] = (\n    "aaaa",  # first\n    "bbbb",\n)\n'
        'original_checksum: str = "abc"\nraise RuntimeError("executed")\n'
    )
    (migrations / "2026_01_01_000002_computed.py").write_text(
        'revision = "ssss"\ndown_revision = "rrrr"\nreplaces = tuple("cd")  # not a literal\n'
    )

    index = RevisionGraph.load(migrations, tmp_path)

    squash = index.revisions["rrrr"]
    assert (squash.replaces, squash.original_checksum) == (("aaaa", "bbbb"), "abc")
    assert index.revisions["ssss"].replaces == ("c", "d")
    assert {pruned: header.revision for pruned, header in index.replaced_by.items()} == {
        "aaaa": "rrrr",
        "bbbb": "rrrr",
        "c": "ssss",
        "d": "ssss",
    }


# Run the real manage.py and SIGKILL it as it is about to delete the second pruned file: Python's
# audit hook for os.remove fires before the deletion, so the first file is gone and the second not.
KILLED_WHILE_DELETING = """
import os, signal, sys

removed = []


def hook(event, args):
    if event == "os.remove" and str(args[0]).endswith(".py"):
        removed.append(args[0])
        if len(removed) == 2:
            os.kill(os.getpid(), signal.SIGKILL)


sys.addaudithook(hook)
sys.argv = ["manage.py", *sys.argv[1:]]
from manage_migrations.cli import main

main()
"""


def test_a_prune_killed_while_deleting_leaves_a_usable_history(
    sqlite_project: Project, tmp_path: Path
) -> None:
    project = sqlite_project
    example_app(project)
    assert project.run("migrate").exit_code == 0

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_DELETING, "migrate:dump", "--prune", "--force"],
        cwd=project.root,
        env={**os.environ, "DATABASE_URL": project.url},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert killed.returncode == -9, killed.stderr
    left = [path.name for path in project.migration_files()]
    assert len(left) == 2 and HEAD_FILE in left  # one pruned file was still there
    assert "replaces" in (project.migrations / HEAD_FILE).read_text()  # the squash was written first
    assert not list(project.migrations.glob("*.squash"))
    status = project.run("migrate:status")
    assert status.exit_code == 0, status.output
    assert "Ran, squashes 2" in status.stdout
    assert project.run("migrate").stdout.strip() == "Nothing to migrate."
    empty = project.run("migrate", url=f"sqlite:///{tmp_path / 'new.sqlite3'}")
    assert empty.exit_code == 0, empty.output
    (leftover,) = set(left) - {HEAD_FILE}
    blocked = project.run("make:migration", "--empty", "after_prune")  # Alembic would see two heads
    assert blocked.exit_code == 6, blocked.output
    assert f"{leftover} was pruned into {HEAD_FILE.removesuffix('.py')} but not deleted" in blocked.stderr
    (project.migrations / leftover).unlink()
    assert project.run("make:migration", "--empty", "after_prune").exit_code == 0
