"""make:migration proposes exactly what stock Alembic autogenerate proposes for the same models and
database, wherever our extras (enums, CHECKs, renames, drop guard) are not involved: the speed work
in alembic_env/ must not change a single operation. Stock Alembic runs as a separate `alembic`
process with the generic env.py template, so none of our comparators or hooks are loaded there."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import Project

USERS_V1 = """
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    nickname: Mapped[str | None] = mapped_column(String(50))
    code: Mapped[str] = mapped_column(String(20), index=True)
    status: Mapped[str] = mapped_column(String(20), server_default="new")
    age: Mapped[int | None]


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(100), unique=True)
    body: Mapped[str | None] = mapped_column(Text)


class Legacy(Base):
    __tablename__ = "legacy"

    id: Mapped[int] = mapped_column(primary_key=True)
    note: Mapped[str | None] = mapped_column(String(30))
"""

# Every edit of the foundation issue: a new table, a dropped table, added and removed columns,
# length, nullability, unique, server default, index and foreign key changes. Two columns share
# the default 'active' (PostgreSQL compares it on the server once, pg_defaults.py).
USERS_V2 = """
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    email: Mapped[str | None] = mapped_column(String(255), unique=True)
    code: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), server_default="active")
    age: Mapped[int] = mapped_column(index=True)


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), server_default="active")


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), index=True)
    label: Mapped[str] = mapped_column(String(40), unique=True, server_default="misc")
"""

# The generic template's env.py with the three settings the benchmark gives plain Alembic, and the
# include_name filter any project needs to keep the tool's own tables out of the comparison.
STOCK_ENV = """
import importlib
import pkgutil

from alembic import context
from sqlalchemy import engine_from_config, pool

import models

for info in pkgutil.walk_packages(models.__path__, "models."):
    importlib.import_module(info.name)
from models.base import Base

config = context.config
target_metadata = Base.metadata


def include_name(name, type_, parent_names):
    return not (type_ == "table" and name.startswith("manage_"))


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_server_default=True,
            render_as_batch=connection.dialect.name == "sqlite",
            include_name=include_name,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
"""

STOCK_INI = """
[alembic]
script_location = {script_location}
version_locations = {migrations}
prepend_sys_path = .
path_separator = os
sqlalchemy.url = {url}
"""

SECTION = re.compile(r"^def (upgrade|downgrade)\(\)[^:]*:\n((?:[ \t]+.*\n|\n)*)", re.MULTILINE)


def _operations(path: Path | None) -> dict[str, list[str]]:
    """The rendered bodies of upgrade() and downgrade(), without comments, docstrings or `pass`."""
    bodies: dict[str, list[str]] = {"upgrade": [], "downgrade": []}
    if path is None:
        return bodies
    for name, body in SECTION.findall(path.read_text(encoding="utf-8")):
        for line in textwrap.dedent(body).splitlines():
            stripped = line.strip()
            if stripped and not stripped.startswith(("#", '"""')) and stripped != "pass":
                bodies[name].append(line.rstrip())
    return {name: _without_index_drops_of_dropped_tables(lines) for name, lines in bodies.items()}


BATCH = re.compile(r'with op\.batch_alter_table\("([^"]+)"')
DROPPED = re.compile(r'op\.drop_table\("([^"]+)"')
INDEX_DROP_ON = re.compile(r'op\.drop_index\(.*table_name="([^"]+)"')


def _without_index_drops_of_dropped_tables(lines: list[str]) -> list[str]:
    """Our one deliberate difference outside the extras: dropping a table drops its indexes, and
    dropping them first fails on MariaDB when a foreign key needs the index (autogen.py)."""
    dropped = {match.group(1) for line in lines if (match := DROPPED.search(line))}
    kept: list[str] = []
    block: list[str] = []
    block_table = None
    for line in [*lines, ""]:
        if block and line.startswith(" "):
            if not (block_table in dropped and "drop_index(" in line):
                block.append(line)
            continue
        if len(block) > 1:
            kept.extend(block)
        block, block_table = [], None
        if match := BATCH.match(line):
            block, block_table = [line], match.group(1)
        elif line and not ((match := INDEX_DROP_ON.search(line)) and match.group(1) in dropped):
            kept.append(line)
    return kept


def _stock_env(project: Project) -> Path:
    directory = project.root.parent / "stock_env"
    directory.mkdir(exist_ok=True)
    (directory / "env.py").write_text(STOCK_ENV.lstrip(), encoding="utf-8")
    template = Path(sys.modules["alembic"].__file__).parent / "templates" / "generic" / "script.py.mako"
    (directory / "script.py.mako").write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
    ini = directory / "alembic.ini"
    url = project.url.replace("postgresql://", "postgresql+psycopg2://", 1).replace("%", "%%")
    ini.write_text(
        STOCK_INI.format(script_location=directory, migrations=project.migrations, url=url),
        encoding="utf-8",
    )
    return ini


def _stock_autogenerate(project: Project, ini: Path) -> dict[str, list[str]]:
    """`alembic revision --autogenerate` in its own process; its file is read, then removed."""
    before = set(project.migration_files())
    completed = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), "revision", "--autogenerate", "-m", "stock"],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    (created,) = set(project.migration_files()) - before
    try:
        # make:migration's files are formatted by ruff (the project's configuration, here the
        # default): the stock file is too, so the operations compare line for line.
        formatted = subprocess.run(
            [sys.executable, "-m", "ruff", "format", "--no-cache", str(created)],
            cwd=project.root,
            check=False,
        )
        assert formatted.returncode == 0
        return _operations(created)
    finally:
        created.unlink()


def _ours(project: Project, name: str) -> tuple[dict[str, list[str]], str]:
    """make:migration's operations and its report."""
    before = set(project.migration_files())
    # Stock Alembic writes probable renames as drop + add; without a terminal that takes --allow-drops.
    result = project.run("make:migration", name, "--allow-drops")
    assert result.exit_code == 0, result.output
    created = set(project.migration_files()) - before
    return _operations(created.pop() if created else None), result.output


def test_make_migration_proposes_what_stock_alembic_proposes(any_project: Project) -> None:
    import alembic  # noqa: F401 - the stock env copies the generic template shipped with it

    project = any_project
    ini = _stock_env(project)

    project.write_model("app.py", USERS_V1)
    stock = _stock_autogenerate(project, ini)
    assert stock["upgrade"], "stock Alembic saw no tables to create"
    assert _ours(project, "create app tables")[0] == stock
    assert project.run("migrate").exit_code == 0

    project.write_model("app.py", USERS_V2)
    stock = _stock_autogenerate(project, ini)
    assert len(stock["upgrade"]) > 10, stock
    ours, report = _ours(project, "rework app tables")
    assert ours == stock
    assert "+ foreignkey constraint fk_posts_editor_id_users on posts" in report
    assert project.run("migrate").exit_code == 0

    stock = _stock_autogenerate(project, ini)
    assert _ours(project, "nothing")[0] == stock
    # Both report MariaDB's current_timestamp() for the now() default as a change, every time.
    assert project.backend == "mysql" or stock == {"upgrade": [], "downgrade": []}


def test_only_comparisons_of_constants_are_remembered() -> None:
    """pg_defaults.py answers a repeated comparison from memory only when it cannot change:
    functions (`now()`, `nextval(...)`) and bound parameters go to the server every time."""
    from sqlalchemy import literal_column, select, text

    from manage_migrations.alembic_env.pg_defaults import _constants

    def compared(left: str, right: object) -> object:
        return _constants(select(literal_column(left) == right))

    assert compared("'new'::character varying", literal_column("'new'")) is not None
    assert compared("0", text("0")) is not None
    assert compared("now()", literal_column("now()")) is None
    assert compared("nextval('t_id_seq')", literal_column("1")) is None
    assert compared("0", text(":value")) is None
    assert _constants(select(literal_column("0") != literal_column("0"))) is None
