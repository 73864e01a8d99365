"""Adopting the tool: the `manage` console script in an application of its own (from any of its
directories, src layout included), shell completion, and taking over a plain Alembic project.
Each test does what README's "Use it in your application" / "Take over an existing Alembic
project" / "Shell completion" sections say, through the real console scripts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import write_revision

BIN = Path(sys.executable).parent
MANAGE = str(BIN / "manage")
ALEMBIC = str(BIN / "alembic")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A console script of this virtualenv, as a user runs it in a terminal-less shell."""
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "APP_ENV")}
    environ |= {"NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run(list(args), cwd=cwd, env=environ, capture_output=True, text=True, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


NOTES_MODEL = """
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
"""
TAGS_MODEL = """
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from myapp.models.notes import Base


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(50))
"""


@pytest.fixture
def application(tmp_path: Path) -> Path:
    """README "Use it in your application": an app with its own Base, models and DATABASE_URL."""
    root = tmp_path / "myproject"
    write(root / "pyproject.toml", '[project]\nname = "myapp"\n\n[tool.manage]\nmodels = ["myapp.models"]\n')
    write(root / ".env", "DATABASE_URL=sqlite:///app.sqlite3\n")
    write(root / "myapp" / "__init__.py", "")
    write(root / "myapp" / "models" / "__init__.py", "")
    write(root / "myapp" / "models" / "notes.py", NOTES_MODEL)
    write(root / "myapp" / "web" / "views.py", "")
    return root


def test_manage_in_your_application_from_a_subdirectory(application: Path) -> None:
    inside = application / "myapp" / "web"
    assert "Created migrations/" in ok(run(inside, MANAGE, "make:migration", "create notes"))
    assert "1 migration applied" in ok(run(inside, MANAGE, "migrate"))
    status = ok(run(inside, MANAGE, "migrate:status"))
    assert re.search(r"_create_notes\s+Ran\s+1\s", status), status
    assert "Migrations on sqlite:///app.sqlite3" in status
    # Everything happened at the root the pyproject.toml marks, not in the subdirectory.
    assert (application / "app.sqlite3").is_file() and not (inside / "app.sqlite3").exists()
    assert len(list((application / "migrations").glob("*.py"))) == 1
    assert not (inside / "migrations").exists()
    engine = sa.create_engine(f"sqlite:///{application / 'app.sqlite3'}")
    assert "notes" in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_usage_and_hints_name_the_console_script(application: Path) -> None:
    usage = run(application, MANAGE)
    assert usage.stderr.startswith("Usage: manage [OPTIONS] COMMAND"), usage.stderr
    help_text = ok(run(application, sys.executable, "-m", "manage_migrations", "--help"))
    assert help_text.startswith("Usage: python -m manage_migrations [OPTIONS]")
    ok(run(application, MANAGE, "make:migration", "create notes"))
    head = next((application / "migrations").glob("*.py"))
    revision = re.search(r'revision: str = "(\w+)"', head.read_text()).group(1)
    write_revision(application / "migrations", "2026_01_01_000001", "other", "other0001", revision, "pass")
    write_revision(application / "migrations", "2026_01_01_000002", "another", "another001", revision, "pass")
    several = run(application, MANAGE, "migrate")
    assert several.returncode == 6
    assert "hint: write the merge migration with `manage make:migration --merge`" in several.stderr


def test_manage_py_keeps_its_name(application: Path) -> None:
    """`python manage.py` (the repository's own script) still says manage.py in usage and hints."""
    write(application / "manage.py", "from manage_migrations.cli import main\n\nmain()\n")
    usage = run(application, sys.executable, "manage.py")
    assert usage.stderr.startswith("Usage: manage.py [OPTIONS] COMMAND"), usage.stderr


SRC_TYPES = """
import sqlalchemy as sa


class Slug(sa.types.TypeDecorator):
    impl = sa.String(80)
    cache_ok = True
"""
SRC_MODEL = """
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.types import Slug


class Base(DeclarativeBase):
    pass


class Page(Base):
    __tablename__ = "pages"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(Slug())
"""
SRC_PYPROJECT = """
[tool.manage]
models = ["app.models"]

[tool.alembic]
script_location = "manage_migrations:alembic_env"
version_locations = ["%(here)s/migrations"]
prepend_sys_path = [".", "src"]
"""


def test_src_layout_for_manage_and_plain_alembic(tmp_path: Path) -> None:
    """models = ["app.models"] with the package under src/app/models/; a migration importing the
    app's own type (src/app/types.py) runs in a fresh process of manage and of plain alembic."""
    root = tmp_path / "srcapp"
    write(root / "pyproject.toml", SRC_PYPROJECT)
    write(root / ".env", "DATABASE_URL=sqlite:///src.sqlite3\n")
    write(root / "src" / "app" / "__init__.py", "")
    write(root / "src" / "app" / "types.py", SRC_TYPES)
    write(root / "src" / "app" / "models" / "__init__.py", "")
    write(root / "src" / "app" / "models" / "pages.py", SRC_MODEL)

    made = ok(run(root, MANAGE, "make:migration", "create pages"))
    assert "app.models.pages" in made
    migration = next((root / "migrations").glob("*.py"))
    assert "import app.types" in migration.read_text()
    ok(run(root / "src", MANAGE, "migrate"))
    assert "No changes detected." in ok(run(root, MANAGE, "make:migration", "--check"))
    # Plain alembic through the shared environment: same models (from src/), same history.
    assert "(head)" in ok(run(root, ALEMBIC, "current"))
    ok(run(root, ALEMBIC, "check"))
    ok(run(root, ALEMBIC, "downgrade", "base"))
    ok(run(root, ALEMBIC, "upgrade", "head"))
    assert re.search(r"_create_pages\s+Ran\s", ok(run(root, MANAGE, "migrate:status")))


def complete(cwd: Path, shell: str, line: str) -> list[str]:
    """What the shell gets for `line` (cursor at its end), by the click/typer completion protocol."""
    words = line.split(" ")
    env = {"_MANAGE_COMPLETE": f"complete_{shell}", "_TYPER_COMPLETE_ARGS": line}
    if shell == "bash":
        env |= {"COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    if shell == "fish":
        env["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    result = run(cwd, MANAGE, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


# typer detects the user's shell; a test names it instead (the option then takes a value).
NAMED_SHELL = {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}


def test_shell_completion(application: Path, tmp_path: Path) -> None:
    ok(run(application, MANAGE, "make:migration", "create notes"))
    ok(run(application, MANAGE, "migrate"))
    write(application / "myapp" / "models" / "tags.py", TAGS_MODEL)
    ok(run(application, MANAGE, "make:migration", "create tags"))
    names = sorted(path.stem for path in (application / "migrations").glob("*.py"))
    inside = application / "myapp"

    assert "migrate:rollback" in complete(inside, "bash", "manage migrate:ro")
    assert complete(inside, "bash", "manage make:mig") == ["make:migration"]
    assert "--allow-drops" in complete(inside, "bash", "manage make:migration --allow")
    assert complete(inside, "bash", "manage migrate ") == [*names, "head"]
    assert complete(inside, "bash", f"manage migrate:sql {names[1][:-3]}") == [names[1]]
    assert complete(inside, "bash", "manage migrate:rollback --to ") == names
    assert complete(inside, "bash", "manage migrate:resolve ") == names
    assert complete(inside, "bash", "manage migrate:rehash ") == names
    assert complete(inside, "fish", "manage migrate:sql ") == names
    zsh = "\n".join(complete(inside, "zsh", "manage migrate:rollback --to "))
    assert all(name in zsh for name in names)
    assert complete(tmp_path, "bash", "manage migrate ") == ["head"]  # no project: no names, no error

    for shell, marker in [
        ("bash", "complete -o default -F"),
        ("zsh", "#compdef manage"),
        ("fish", "complete --command manage"),
    ]:
        script = ok(run(application, MANAGE, "--show-completion", shell, env=NAMED_SHELL))
        assert marker in script and "_MANAGE_COMPLETE" in script
    home = tmp_path / "home"
    home.mkdir()
    installed = ok(
        run(application, MANAGE, "--install-completion", "zsh", env={"HOME": str(home), **NAMED_SHELL})
    )
    assert "zsh completion installed" in installed
    assert "_MANAGE_COMPLETE" in (home / ".zfunc" / "_manage").read_text()


REVISION_BODIES = {
    "create notes": (
        'op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True), '
        'sa.Column("title", sa.String(200), nullable=False))',
        'op.drop_table("notes")',
    ),
    "add body to notes": (
        'op.add_column("notes", sa.Column("body", sa.Text))',
        'op.drop_column("notes", "body")',
    ),
}


def status_of(status: str, name: str) -> list[str]:
    """The cells after the name in migrate:status's row of a migration."""
    return next(line.split()[1:] for line in status.splitlines() if line.startswith(name + " "))


def alembic_project(root: Path) -> list[Path]:
    """An existing Alembic project: `alembic init`, its own env.py, two hex-named revisions made
    by `alembic revision`, and a database upgraded to head by plain Alembic."""
    root.mkdir()
    ok(run(root, ALEMBIC, "init", "alembic"))
    ini = root / "alembic.ini"
    ini.write_text(
        re.sub(r"(?m)^sqlalchemy\.url = .*$", "sqlalchemy.url = sqlite:///legacy.sqlite3", ini.read_text())
    )
    write(root / "myapp" / "__init__.py", "")
    write(root / "myapp" / "models" / "__init__.py", "")
    model = NOTES_MODEL.replace(
        "String(200))", "String(200))\n    body: Mapped[str | None] = mapped_column(Text)"
    )
    write(root / "myapp" / "models" / "notes.py", model.replace("import String", "import String, Text"))
    files = []
    for message, (upgrade, downgrade) in REVISION_BODIES.items():
        created = ok(run(root, ALEMBIC, "revision", "-m", message))
        path = Path(re.search(r"Generating (\S+\.py)", created).group(1))
        text = path.read_text()
        text = text.replace(
            'def upgrade() -> None:\n    """Upgrade schema."""\n    pass',
            f"def upgrade() -> None:\n    {upgrade}",
        )
        text = text.replace(
            'def downgrade() -> None:\n    """Downgrade schema."""\n    pass',
            f"def downgrade() -> None:\n    {downgrade}",
        )
        assert upgrade in text and downgrade in text, text
        path.write_text(text)
        assert re.fullmatch(r"[0-9a-f]{12}_\w+\.py", path.name)
        files.append(path)
    ok(run(root, ALEMBIC, "upgrade", "head"))
    return files


def test_take_over_an_existing_alembic_project(tmp_path: Path) -> None:
    root = tmp_path / "legacy"
    create_notes, add_body = alembic_project(root)
    # README: point [tool.manage] at the models and the existing revision files, and DATABASE_URL
    # at the database alembic.ini names. alembic.ini and env.py stay as they are.
    write(
        root / "pyproject.toml", '[tool.manage]\nmodels = ["myapp.models"]\nmigrations = "alembic/versions"\n'
    )
    write(root / ".env", "DATABASE_URL=sqlite:///legacy.sqlite3\n")

    status = ok(run(root, MANAGE, "migrate:status"))
    for path in (create_notes, add_body):
        assert status_of(status, path.stem) == ["Ran"], status  # batch (and time) unknown
    assert "2 ran, 0 pending." in status
    assert "2 applied migration(s) have no ledger row (batch unknown)" in status

    write(root / "myapp" / "models" / "tags.py", TAGS_MODEL)
    made = ok(run(root, MANAGE, "make:migration", "create tags"))
    tags = next((root / "alembic" / "versions").glob("*_create_tags.py"))
    assert "Created alembic/versions/" in made
    assert "1 migration applied" in ok(run(root, MANAGE, "migrate"))
    assert status_of(ok(run(root, MANAGE, "migrate:status")), tags.stem)[:2] == ["Ran", "1"]

    rolled = ok(run(root, MANAGE, "migrate:rollback"))
    assert tags.stem in rolled and "1 migration rolled back" in rolled
    refused = run(root, MANAGE, "migrate:rollback", "--step", "1")
    assert refused.returncode == 7, refused.stdout + refused.stderr
    assert add_body.stem in refused.stderr and "--force" in refused.stderr
    assert add_body.stem in ok(run(root, MANAGE, "migrate:rollback", "--step", "1", "--force"))

    # Plain alembic, through the project's own alembic.ini and env.py, keeps working.
    revision = create_notes.name.split("_", 1)[0]
    assert revision in ok(run(root, ALEMBIC, "current"))
    ok(run(root, ALEMBIC, "upgrade", "head"))
    engine = sa.create_engine(f"sqlite:///{root / 'legacy.sqlite3'}")
    assert {"notes", "tags"} <= set(sa.inspect(engine).get_table_names())
    assert "body" in {column["name"] for column in sa.inspect(engine).get_columns("notes")}
    engine.dispose()
    assert "3 ran, 0 pending." in ok(run(root, MANAGE, "migrate:status"))
