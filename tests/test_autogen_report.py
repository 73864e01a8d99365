"""The report before writing, --dry-run/--check, the drop guard, and generated files that import
everything they use."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import USERS_MODEL, Project
from helpers import write_revision

from manage_migrations.errors import OperationFailed
from manage_migrations.generated import check_generated, undefined_names

TAGS_MODEL = """
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(30))
"""


def _insert_users(project: Project, count: int) -> None:
    engine = project.engine()
    with engine.begin() as connection:
        for index in range(count):
            connection.exec_driver_sql(f"INSERT INTO users (id, name) VALUES ({index + 1}, 'u{index}')")
    engine.dispose()


def test_report_lists_models_tables_and_grouped_operations(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)
    project.make("create users")
    assert project.run("migrate").exit_code == 0
    project.write_model(
        "users.py",
        USERS_MODEL.replace(
            "name: Mapped[str] = mapped_column(String(100))",
            "nick: Mapped[str | None] = mapped_column(String(10))",
        ),
    )
    project.write_model("tags.py", TAGS_MODEL)

    # name -> nick is a probable rename: drop + add is what this test wants written.
    result = project.run("make:migration", "tags and nick", "--allow-drops")

    assert result.exit_code == 0, result.output
    assert "Models: models, models.base, models.tags, models.users" in result.output
    assert "Tables (metadata 1): tags, users" in result.output
    lines = [line.strip() for line in result.output.splitlines() if line.strip()[:2] in ("+ ", "~ ", "- ")]
    assert [line[0] for line in lines] == sorted((line[0] for line in lines), key="+~-".index)
    assert "- column users.name  (destructive)" in lines


def test_dry_run_writes_nothing_and_check_fails_on_changes(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)

    dry = project.run("make:migration", "create users", "--dry-run")
    checked = project.run("make:migration", "--check")

    assert dry.exit_code == 0, dry.output
    assert "+ table users" in dry.output
    assert "Dry run: nothing written." in dry.output
    assert checked.exit_code == 1
    assert "+ table users" in checked.output
    assert project.migration_files() == []
    project.make("create users")
    assert project.run("migrate").exit_code == 0
    clean = project.run("make:migration", "--check")
    assert clean.exit_code == 0, clean.output
    assert "No changes detected." in clean.output


def test_dropping_a_table_with_rows_is_refused_unless_allowed(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)
    project.write_model("tags.py", TAGS_MODEL)
    project.make("create both")
    assert project.run("migrate").exit_code == 0
    _insert_users(project, 3)
    project.remove_model("users.py")

    refused = project.run("make:migration", "drop users")

    assert refused.exit_code == 7
    assert "- table users  (destructive)" in refused.output
    assert "refusing to drop 1 table holding 3 rows (rows per table: users (3))" in refused.output
    assert "--allow-drops" in refused.output
    assert len(project.migration_files()) == 1
    project.make("drop users", "--allow-drops")
    assert project.run("migrate").exit_code == 0
    assert "users" not in project.tables()


def test_dropping_many_empty_tables_at_once_is_refused(sqlite_project: Project) -> None:
    project = sqlite_project
    for name in ("alpha", "beta", "gamma"):
        project.write_model(
            f"{name}.py",
            TAGS_MODEL.replace('"tags"', f'"{name}"').replace("class Tag", f"class {name.title()}"),
        )
    project.write_model("users.py", USERS_MODEL)
    project.make("create all")
    assert project.run("migrate").exit_code == 0
    for name in ("alpha", "beta", "gamma"):
        project.remove_model(f"{name}.py")

    refused = project.run("make:migration", "cleanup")

    assert refused.exit_code == 7
    assert "refusing to drop 3 tables holding 0 rows" in refused.output
    assert len(project.migration_files()) == 1


CUSTOM_TYPES_MODEL = """
from decimal import Decimal

from sqlalchemy import JSON, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.money import Money


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    payload: Mapped[dict] = mapped_column(JSON().with_variant(JSONB(astext_type=Text()), "postgresql"))
    total: Mapped[Decimal] = mapped_column(Money(12, 2))
"""

MONEY_MODULE = """
from sqlalchemy import Numeric
from sqlalchemy.types import TypeDecorator


class Money(TypeDecorator):
    impl = Numeric
    cache_ok = True
"""


def test_variant_and_user_types_produce_a_file_that_imports_them(project: Project) -> None:
    project.write_model("money.py", MONEY_MODULE)
    project.write_model("orders.py", CUSTOM_TYPES_MODEL)

    path = project.make("create orders")

    text = path.read_text()
    assert "import models.money" in text
    assert "astext_type=sa.Text()" in text
    assert project.run("migrate").exit_code == 0
    assert "orders" in project.tables()
    assert project.run("migrate:rollback").exit_code == 0


def test_a_generated_file_with_an_undefined_name_is_removed_and_named(tmp_path: Path) -> None:
    path = write_revision(
        tmp_path,
        "2026_01_01_000001",
        "broken",
        "rev1",
        None,
        upgrade="op.add_column('t', sa.Column('c', Text()))",
    )

    with pytest.raises(OperationFailed) as raised:
        check_generated(path)

    assert "uses names it does not import: Text" in raised.value.message
    assert not path.exists()


@pytest.mark.parametrize(
    ("upgrade", "missing"),
    [
        ("op.add_column('t', sa.Column('c', Text()))", ["Text"]),
        # `add_column` and `Column` are looked up as attributes; named bare only inside a string.
        ("op.add_column('add_column', sa.Column('Column', sa.Text()))", []),
        ("op.add_column('t', sa.Column('c', sa.Text(), comment='caf\u00e9'))\nText()", ["Text"]),
    ],
)
def test_undefined_names_of_a_module_already_loaded(tmp_path: Path, upgrade: str, missing: list[str]) -> None:
    """make:migration hands over the module Alembic loaded; the quick bytecode pass and the
    symbol-table pass it falls back to must agree."""
    import importlib.util

    path = write_revision(tmp_path, "2026_01_01_000001", "loaded", "rev1", None, upgrade=upgrade)
    spec = importlib.util.spec_from_file_location("_loaded_revision", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    assert undefined_names(path, module) == missing
    assert undefined_names(path) == missing
