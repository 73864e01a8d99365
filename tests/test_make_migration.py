"""make:migration: autogenerate from model edits, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import sqlalchemy as sa
from conftest import USERS_MODEL, Project

INVOICES_MODEL = """
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Invoice(Base):
    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    total: Mapped[Decimal] = mapped_column(Numeric(10, 2), server_default="0")
"""


def test_new_model_module_becomes_one_migration(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)
    project.make("create users")
    assert project.run("migrate").exit_code == 0
    project.write_model("invoices.py", INVOICES_MODEL)

    result = project.run("make:migration", "add invoices")

    assert result.exit_code == 0, result.output
    files = project.migration_files()
    assert len(files) == 2
    assert re.fullmatch(r"\d{4}_\d{2}_\d{2}_\d{6}_add_invoices\.py", files[-1].name)
    assert 'op.create_table(\n        "invoices"' in files[-1].read_text()
    assert "+ table invoices" in result.output
    assert f"Created migrations/{files[-1].name}" in result.output
    assert project.run("migrate").exit_code == 0
    assert "invoices" in project.tables()


def test_no_changes_writes_nothing_and_second_run_finds_nothing(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)
    project.write_model("invoices.py", INVOICES_MODEL)
    project.make("initial")
    assert project.run("migrate").exit_code == 0

    result = project.run("make:migration", "again")

    assert result.exit_code == 0, result.output
    assert "No changes detected." in result.output
    assert len(project.migration_files()) == 1


def test_empty_writes_a_blank_migration(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)
    path = project.make("backfill data", "--empty")
    text = path.read_text()
    assert path.name.endswith("_backfill_data.py")
    assert "def upgrade() -> None:\n    pass" in text
    assert "def downgrade() -> None:\n    pass" in text


def test_refuses_when_migrations_are_pending(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)
    project.make("create users")
    project.make("second", "--empty")
    project.write_model("invoices.py", INVOICES_MODEL)

    result = project.run("make:migration", "add invoices")

    assert result.exit_code == 1
    assert "2 migrations are pending; run migrate first" in result.output
    assert len(project.migration_files()) == 2


def test_detects_added_dropped_and_altered_columns(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)
    project.make("create users")
    assert project.run("migrate").exit_code == 0
    project.write_model(
        "users.py",
        """
        from sqlalchemy import String
        from sqlalchemy.orm import Mapped, mapped_column

        from models.base import Base


        class User(Base):
            __tablename__ = "users"

            id: Mapped[int] = mapped_column(primary_key=True)
            email: Mapped[str | None] = mapped_column(String(255))
        """,
    )

    # name -> email looks like a rename: without a terminal only --allow-drops writes drop + add.
    result = project.run("make:migration", "rework users", "--allow-drops")

    assert result.exit_code == 0, result.output
    assert "+ column users.email" in result.output
    assert "- column users.name  (destructive)" in result.output


SCHEMA_V1 = """
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(String(20))
    bio: Mapped[str | None] = mapped_column(String(100))
    plan: Mapped[str] = mapped_column(String(10), server_default="free")
"""

SCHEMA_V2 = """
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(String(60), unique=True)
    bio: Mapped[str] = mapped_column(String(100))
    plan: Mapped[str] = mapped_column(String(10), server_default="pro")
"""


def _column(project: Project, name: str) -> dict:
    engine = project.engine()
    try:
        return {c["name"]: c for c in sa.inspect(engine).get_columns("accounts")}[name]
    finally:
        engine.dispose()


def _uniques(project: Project) -> set[str]:
    engine = project.engine()
    try:
        return {u["name"] for u in sa.inspect(engine).get_unique_constraints("accounts")}
    finally:
        engine.dispose()


def test_alters_length_nullability_unique_and_default_then_rolls_back(project: Project) -> None:
    project.write_model("accounts.py", SCHEMA_V1)
    project.make("create accounts")
    assert project.run("migrate").exit_code == 0
    project.query("SELECT 1")
    project.write_model("accounts.py", SCHEMA_V2)

    result = project.run("make:migration", "tighten accounts")
    migration = project.migration_files()[-1].read_text()

    assert result.exit_code == 0, result.output
    assert "~ column accounts.handle  VARCHAR(20) -> VARCHAR(60)" in result.output
    assert "~ column accounts.bio  NOT NULL" in result.output
    assert "default" in result.output and "plan" in result.output
    assert "+ unique constraint uq_accounts_handle on accounts" in result.output
    if project.backend == "sqlite":
        assert "batch_alter_table" in migration
    assert project.run("migrate").exit_code == 0
    assert _column(project, "handle")["type"].length == 60
    assert _column(project, "bio")["nullable"] is False
    assert "pro" in str(_column(project, "plan")["default"])
    assert "uq_accounts_handle" in _uniques(project)
    assert "No changes detected." in project.run("make:migration", "again").output

    assert project.run("migrate:rollback").exit_code == 0
    assert _column(project, "handle")["type"].length == 20
    assert _column(project, "bio")["nullable"] is True
    assert "free" in str(_column(project, "plan")["default"])
    assert "uq_accounts_handle" not in _uniques(project)


ENUM_MODEL = """
import enum

from sqlalchemy import Enum
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Mood(enum.Enum):
    happy = "happy"
    sad = "sad"


class Diary(Base):
    __tablename__ = "diaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    mood: Mapped[Mood] = mapped_column(Enum(Mood, name="mood"))
"""


def _enum_types(project: Project) -> set[str]:
    if project.backend != "postgresql":
        return set()
    return {row[0] for row in project.query("SELECT typname FROM pg_type WHERE typtype = 'e'")}


def test_enum_table_migrates_rolls_back_and_migrates_again(project: Project) -> None:
    project.write_model("diary.py", ENUM_MODEL)
    project.make("create diaries")

    assert project.run("migrate").exit_code == 0
    if project.backend == "postgresql":
        assert _enum_types(project) == {"mood"}
    assert project.run("migrate:rollback").exit_code == 0
    assert _enum_types(project) == set()
    assert "diaries" not in project.tables()
    assert project.run("migrate").exit_code == 0
    assert "diaries" in project.tables()
    assert "No changes detected." in project.run("make:migration", "again").output


def test_dropping_an_enum_table_drops_its_type(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)
    project.write_model("diary.py", ENUM_MODEL)
    project.make("create both")
    assert project.run("migrate").exit_code == 0
    project.remove_model("diary.py")

    result = project.run("make:migration", "drop diaries")

    assert "- table diaries  (destructive)" in result.output
    assert project.run("migrate").exit_code == 0
    assert _enum_types(project) == set()
    assert project.run("migrate:rollback").exit_code == 0
    if project.backend == "postgresql":
        assert _enum_types(project) == {"mood"}


def test_tool_tables_are_never_dropped_but_stray_user_tables_are(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)
    project.make("create users")
    assert project.run("migrate").exit_code == 0
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE legacy_orders (id INTEGER PRIMARY KEY)")
    engine.dispose()

    result = project.run("make:migration", "cleanup")

    assert result.exit_code == 0, result.output
    assert "- table legacy_orders  (destructive)" in result.output
    text = project.migration_files()[-1].read_text()
    assert "manage_migrations" not in text
    assert "alembic_version" not in text


def test_name_is_derived_from_operations_when_omitted(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)
    path = project.make()
    assert path.name.endswith("_create_users_table.py")


def test_hostile_names_are_slugged_inside_migrations(sqlite_project: Project) -> None:
    sqlite_project.write_model("users.py", USERS_MODEL)
    path = sqlite_project.make('../../etc/"""; import os; os.system("x") # Ünïcode\nline')

    assert path.parent == sqlite_project.migrations
    assert re.fullmatch(r"\d{4}_\d{2}_\d{2}_\d{6}_[a-z0-9_]+\.py", path.name)
    source = path.read_text()
    compile(source, str(path), "exec")
    assert 'import os; os.system("x")' not in source

    empty = sqlite_project.run("make:migration", "!!!")
    assert empty.exit_code == 2
    assert "has no letters or digits" in empty.output


INDEXED_FK_MODEL = """
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Invoice(Base):
    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
"""


def test_dropping_a_table_with_an_indexed_foreign_key_rolls_back(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)
    project.make("create users")
    assert project.run("migrate").exit_code == 0
    project.write_model("invoices.py", INDEXED_FK_MODEL)
    path = project.make("create invoices")
    downgrade = path.read_text().split("def downgrade")[1]
    assert "drop_index" not in downgrade  # MariaDB refuses to drop an index a foreign key needs

    assert project.run("migrate").exit_code == 0
    result = project.run("migrate:rollback")
    assert result.exit_code == 0, result.output
    assert "invoices" not in project.tables()


EMAIL_LINE = "    email: Mapped[str | None] = mapped_column(String(200))\n"


def test_derived_names_follow_laravel_and_django(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)
    project.write_model("invoices.py", INVOICES_MODEL)
    assert project.make().name.endswith("_create_users_and_invoices_tables.py")
    assert project.run("migrate").exit_code == 0

    project.write_model("users.py", USERS_MODEL + EMAIL_LINE)
    assert project.make().name.endswith("_add_email_to_users.py")
    assert project.run("migrate").exit_code == 0

    project.write_model("users.py", USERS_MODEL.replace("String(100)", "String(150)") + EMAIL_LINE)
    assert project.make().name.endswith("_alter_users.py")
    assert project.run("migrate").exit_code == 0

    project.write_model("users.py", USERS_MODEL.replace("String(100)", "String(150)"))
    assert project.make().name.endswith("_remove_email_from_users.py")


def test_given_names_are_slugged_and_truncated_at_a_word(sqlite_project: Project) -> None:
    sqlite_project.write_model("users.py", USERS_MODEL)
    path = sqlite_project.make("Add Users-Table, with UPPER case & punctuation " + "very long " * 10)
    slug = path.stem[len("2026_01_01_000000_") :]
    assert slug.startswith("add_users_table_with_upper_case_punctuation_very_long")
    assert re.fullmatch(r"[a-z0-9_]+", slug)
    assert len(slug) <= 60
    assert not slug.endswith("_") and not slug.endswith("_ver")
