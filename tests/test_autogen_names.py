"""Models without a naming convention: every constraint a generated migration creates gets a
deterministic name, so upgrade, downgrade and SQLite's batch mode work on every backend."""

from __future__ import annotations

import re

from conftest import Project

# Their own Base, as most real projects have: a plain MetaData, no naming convention.
PLAIN_BASE = """
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass
"""

SHOP_MODELS = """
from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(100), unique=True)


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("sku", "shop"),
        CheckConstraint("price >= 0"),
        {extra}
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(20))
    shop: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(20))
    price: Mapped[int]
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
"""


def _shop(extra: str = "") -> str:
    return SHOP_MODELS.replace("{extra}", extra)


def _constraint_names(project: Project) -> set[str]:
    import sqlalchemy as sa

    engine = project.engine()
    try:
        inspector = sa.inspect(engine)
        names = {uq["name"] for uq in inspector.get_unique_constraints("items")}
        names |= {ck["name"] for ck in inspector.get_check_constraints("items")}
        names |= {fk["name"] for fk in inspector.get_foreign_keys("items")}
        return {name for name in names if name}
    finally:
        engine.dispose()


def test_unnamed_constraints_get_names_and_roll_back(any_project: Project) -> None:
    project = any_project
    project.write_model("base.py", PLAIN_BASE)
    project.write_model("shop.py", _shop())

    result = project.run("make:migration", "create shop")

    assert result.exit_code == 0, result.output
    assert "= name uq_items_sku chosen for the unnamed unique constraint on items" in result.output
    assert (
        "= name fk_items_customer_id_customers chosen for the unnamed foreign key on items" in result.output
    )
    assert "= name uq_customers_email chosen for the unnamed unique constraint on customers" in result.output
    assert "= name ck_items_" in result.output
    migrate = project.run("migrate")
    assert migrate.exit_code == 0, migrate.output
    assert {"uq_items_sku", "fk_items_customer_id_customers"} <= _constraint_names(project)
    assert "No changes detected." in project.run("make:migration", "again").output
    assert project.run("migrate:rollback").exit_code == 0
    assert "items" not in project.tables()
    assert project.run("migrate").exit_code == 0

    # An unnamed UNIQUE added to a table that exists: batch mode on SQLite, DROP CONSTRAINT in
    # the downgrade everywhere.
    project.write_model("shop.py", _shop('UniqueConstraint("label", "shop"),'))
    result = project.run("make:migration", "unique label")
    assert result.exit_code == 0, result.output
    assert "+ unique constraint uq_items_label on items" in result.output
    migrate = project.run("migrate")
    assert migrate.exit_code == 0, migrate.output
    assert "uq_items_label" in _constraint_names(project)
    check = project.run("migrate:check")
    assert check.exit_code == 0, check.output
    rollback = project.run("migrate:rollback")
    assert rollback.exit_code == 0, rollback.output
    assert "uq_items_label" not in _constraint_names(project)
    assert project.run("migrate").exit_code == 0


def test_unnamed_check_added_to_an_existing_table_rolls_back(any_project: Project) -> None:
    project = any_project
    project.write_model("base.py", PLAIN_BASE)
    project.write_model("shop.py", _shop())
    project.make("create shop")
    assert project.run("migrate").exit_code == 0
    project.write_model("shop.py", _shop('CheckConstraint("price <= 100000"),'))

    before = set(project.migration_files())
    result = project.run("make:migration", "price limit")

    assert result.exit_code == 0, result.output
    assert "+ check constraint ck_items_" in result.output
    migrate = project.run("migrate")
    assert migrate.exit_code == 0, migrate.output
    assert "No changes detected." in project.run("make:migration", "again").output
    rollback = project.run("migrate:rollback")
    assert rollback.exit_code == 0, rollback.output
    (created,) = set(project.migration_files()) - before
    created.unlink()
    project.write_model("shop.py", _shop())
    assert "No changes detected." in project.run("make:migration", "again").output


def test_a_database_built_with_unnamed_checks_shows_no_drift(any_project: Project) -> None:
    """A check created unnamed (create_all, or a migration written before) is the same check."""
    project = any_project
    project.write_model("base.py", PLAIN_BASE)
    project.write_model("shop.py", _shop())
    path = project.make("create shop")
    text, count = re.subn(r', name="ck_items_[0-9a-f]{8}"\)', ")", path.read_text())
    assert count == 1
    path.write_text(text)
    migrate = project.run("migrate")
    assert migrate.exit_code == 0, migrate.output + path.read_text()

    result = project.run("make:migration", "again")

    assert result.exit_code == 0, result.output
    assert "No changes detected." in result.output
