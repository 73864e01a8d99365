"""Every file make:migration (and migrate:dump --prune) writes passes `ruff check` and `ruff format
--check` under the user project's own ruff configuration, as a team would commit it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Project
from helpers import write_revision

# A user project's configuration, stricter than ours (line length 88), excluding migrations/ from
# its own runs as this repository does: the files are checked by naming them.
USER_PYPROJECT = """
[tool.ruff]
line-length = 88
extend-exclude = ["migrations"]

[tool.ruff.lint]
select = ["E", "F", "W", "I", "UP"]
"""

USERS = """
import enum

from sqlalchemy import Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Status(enum.Enum):
    active = "active"
    banned = "banned"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    {columns}
    status: Mapped[Status] = mapped_column(Enum(Status, name="user_status_with_a_long_name"))


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(50), unique=True)
"""
NAME = 'name: Mapped[str] = mapped_column(String(100), comment="what the user is called, in full")'
NICKNAME = "nickname: Mapped[str | None] = mapped_column(String(40))"
FULL_NAME = NAME.replace("name:", "full_name:", 1)
EMAIL = "email: Mapped[str] = mapped_column(String(200))"


def ruff(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=False,
    )


def assert_committable(project: Project, paths: list[Path], *, format_check: bool = True) -> None:
    names = [str(path.relative_to(project.root)) for path in paths]
    checked = ruff(project, "check", "--no-cache", *names)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    if format_check:
        formatted = ruff(project, "format", "--check", "--diff", "--no-cache", *names)
        assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def write_users(project: Project, *columns: str) -> None:
    project.write_model("users.py", USERS.format(columns="\n    ".join(columns)))


def generate_every_kind(project: Project) -> list[Path]:
    """Create tables with an enum, add a column, rename one, a NOT NULL backfill, an empty
    migration, and the merge of two heads; migrated as it goes. Returns the files written."""
    (project.root / "pyproject.toml").write_text(USER_PYPROJECT, encoding="utf-8")
    written = []
    write_users(project, NAME)
    written.append(project.make("create users and tags"))
    assert project.run("migrate").exit_code == 0
    write_users(project, NAME, NICKNAME)
    written.append(project.make("add nickname to users"))
    assert project.run("migrate").exit_code == 0
    write_users(project, FULL_NAME, NICKNAME)
    written.append(project.make("rename name", "--rename", "users.name:full_name"))
    assert project.run("migrate").exit_code == 0
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO users (id, full_name, status) VALUES (1, 'Ada', 'active')")
    engine.dispose()
    write_users(project, FULL_NAME, NICKNAME, EMAIL)
    written.append(project.make("add email", "--default", "users.email='nobody@example.org'"))
    assert project.run("migrate").exit_code == 0
    head = project.version().pop()
    written.append(project.make("--empty", "fix data"))
    write_revision(project.migrations, "2026_01_01_000001", "branch", "branch0001", head, "pass")
    written.append(project.make("--merge"))
    assert project.run("migrate").exit_code == 0
    return written


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_generated_file_passes_the_projects_ruff(project: Project) -> None:
    written = generate_every_kind(project)
    assert_committable(project, written)
    text = "".join(path.read_text(encoding="utf-8") for path in written)
    assert "please adjust" not in text
    for made in (
        "sa.Enum(",
        "new_column_name=",
        ".update()",
        "down_revision: str | Sequence[str] | None = (",
    ):
        assert made in text  # the scenarios did what they say

    result = project.run("migrate:dump", "--prune", "--force")
    assert result.exit_code == 0, result.output
    squash = [path for path in project.migration_files() if "replaces" in path.read_text()]
    assert len(squash) == 1
    assert_committable(project, squash)


def test_without_ruff_the_template_is_lint_clean(
    sqlite_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ruff not installed: nothing tidies the file, the template alone keeps it lint-clean (imports
    only where used, no trailing spaces, no banner comments); blank and merge files are formatted
    as ruff would. Alembic's operation layout is its own, so the autogenerated body is not."""
    monkeypatch.setattr("manage_migrations.generated.ruff_installed", lambda: False)
    project = sqlite_project
    written = generate_every_kind(project)
    long_lines = ["--extend-ignore", "E501"]
    checked = ruff(project, "check", "--no-cache", *long_lines, *map(str, written))
    assert checked.returncode == 0, checked.stdout
    empty_and_merge = [path for path in written if path.name.endswith(("fix_data.py", "merge_heads.py"))]
    assert len(empty_and_merge) == 2
    assert_committable(project, empty_and_merge)


def test_ruff_failing_is_a_warning_not_a_failure(sqlite_project: Project) -> None:
    """A broken ruff configuration makes ruff fail: the migration is still written, with a warning."""
    project = sqlite_project
    (project.root / "pyproject.toml").write_text("[tool.ruff]\nline-length = 'wide'\n", encoding="utf-8")
    write_users(project, NAME)
    result = project.run("make:migration", "create users")
    assert result.exit_code == 0, result.output
    assert "warning: ruff format failed on" in result.output
    assert "(the file is written as it is)" in result.output
    assert len(project.migration_files()) == 1
