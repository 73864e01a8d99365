"""CHECK constraints and server defaults, on SQLite, PostgreSQL and MariaDB, checked against
`metadata.create_all` of the same models; a second make:migration must find nothing."""

from __future__ import annotations

import shutil

import sqlalchemy as sa
from conftest import REPO_ROOT, Project
from schema_state import assert_matches_models

PRODUCTS_MODEL = """
from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Product(Base):
    __tablename__ = "products"
    __table_args__ = ({checks},)

    id: Mapped[int] = mapped_column(primary_key=True)
    price: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(10))
"""

CHECKS_V1 = """
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("stock >= 0", name="stock_not_negative")"""

CHECKS_V2 = """
        CheckConstraint("price > 1", name="price_positive"),
        CheckConstraint("code <> ''", name="code_not_empty")"""


def _products(checks: str) -> str:
    return PRODUCTS_MODEL.replace("{checks}", checks.strip())


def _rows(project: Project) -> list[tuple]:
    return project.query("SELECT id, price, stock, code FROM products ORDER BY id")


def test_check_constraints_added_removed_and_changed(any_project: Project, twin_url: str) -> None:
    project = any_project
    project.write_model("products.py", _products(CHECKS_V1))
    project.make("create products")
    assert project.run("migrate").exit_code == 0
    assert_matches_models(project, twin_url)
    assert "No changes detected." in project.run("make:migration", "again").output
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO products (id, price, stock, code) VALUES (1, 5, 0, 'a')")
    engine.dispose()
    project.write_model("products.py", _products(CHECKS_V2))

    result = project.run("make:migration", "rework checks")

    assert result.exit_code == 0, result.output
    assert "- check constraint ck_products_stock_not_negative on products" in result.output
    assert "+ check constraint ck_products_code_not_empty on products" in result.output
    assert "+ check constraint ck_products_price_positive on products" in result.output
    assert project.run("migrate").exit_code == 0
    assert_matches_models(project, twin_url)
    assert _rows(project) == [(1, 5, 0, "a")]
    assert "No changes detected." in project.run("make:migration", "again").output

    assert project.run("migrate:rollback").exit_code == 0
    project.write_model("products.py", _products(CHECKS_V1))
    assert_matches_models(project, twin_url)
    assert _rows(project) == [(1, 5, 0, "a")]


DEFAULTS_MODEL = """
import datetime

from sqlalchemy import Boolean, Computed, DateTime, Identity, Integer, Numeric, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Setting(Base):
    __tablename__ = "settings"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(40), server_default="{name}")
    quoted: Mapped[str] = mapped_column(String(40), server_default=text("'it''s'"))
    empty: Mapped[str] = mapped_column(String(40), server_default="")
    amount: Mapped[float] = mapped_column(Numeric(10, 2), server_default="{amount}")
    count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created: Mapped[datetime.datetime] = mapped_column(DateTime, server_default=func.current_timestamp())


class Square(Base):
    # Alembic's SQLite batch copy inserts into generated columns, so they live in their own table.
    __tablename__ = "squares"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    side: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    area: Mapped[int | None] = mapped_column(Integer, Computed("side * side", persisted=True))
"""


def _settings(name: str, amount: str) -> str:
    return DEFAULTS_MODEL.replace("{name}", name).replace("{amount}", amount)


def _default_of(project: Project, column: str) -> str:
    engine = project.engine()
    try:
        columns = {c["name"]: c for c in sa.inspect(engine).get_columns("settings")}
        return str(columns[column]["default"])
    finally:
        engine.dispose()


def test_server_defaults_have_no_false_positives_and_changes_are_found(
    any_project: Project, twin_url: str
) -> None:
    project = any_project
    project.write_model("settings.py", _settings("draft", "1.50"))
    project.make("create settings")
    migrated = project.run("migrate")
    assert migrated.exit_code == 0, migrated.output
    assert_matches_models(project, twin_url)
    assert "No changes detected." in project.run("make:migration", "again").output
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO settings (name) VALUES ('kept')")
    engine.dispose()
    project.write_model("settings.py", _settings("final", "2.50"))

    result = project.run("make:migration", "new defaults")

    assert result.exit_code == 0, result.output
    assert "~ column settings.name  default" in result.output
    assert "~ column settings.amount  default" in result.output
    assert result.output.count("~ column") == 2, result.output
    assert project.run("migrate").exit_code == 0
    assert "final" in _default_of(project, "name")
    assert_matches_models(project, twin_url)
    assert "No changes detected." in project.run("make:migration", "again").output

    assert project.run("migrate:rollback").exit_code == 0
    project.write_model("settings.py", _settings("draft", "1.50"))
    assert "draft" in _default_of(project, "name")
    assert_matches_models(project, twin_url)
    assert project.query("SELECT name FROM settings") == [("kept",)]


def test_example_schema_migrates_to_create_all_and_a_second_run_finds_nothing(
    any_project: Project, twin_url: str
) -> None:
    project = any_project
    for source in (REPO_ROOT / "models").glob("*.py"):
        shutil.copy(source, project.root / "models" / source.name)
    for source in (REPO_ROOT / "migrations").glob("*.py"):
        shutil.copy(source, project.migrations / source.name)

    assert project.run("migrate").exit_code == 0
    assert_matches_models(project, twin_url)
    result = project.run("make:migration", "--check")
    assert result.exit_code == 0, result.output
    assert "No changes detected." in result.output
