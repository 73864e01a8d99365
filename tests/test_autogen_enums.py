"""Enum changes plain autogenerate misses, on SQLite, PostgreSQL and MariaDB, checked against
`metadata.create_all` of the same models, with rows that must survive."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from conftest import USERS_MODEL, Project, fresh_database
from schema_state import assert_matches_models

MOOD_MODEL = """
from sqlalchemy import Enum
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

MOOD = Enum({values}, name="mood")


class Diary(Base):
    __tablename__ = "diaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    mood: Mapped[str] = mapped_column(MOOD, server_default="happy")
"""

NOTES_MODEL = """
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.diary import MOOD


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    mood: Mapped[str | None] = mapped_column(MOOD)
"""


def _moods(*values: str) -> str:
    return MOOD_MODEL.format(values=", ".join(repr(value) for value in values))


def _rows(project: Project) -> list[tuple]:
    return project.query("SELECT id, mood FROM diaries ORDER BY id")


def test_enum_value_added_is_usable_and_rolled_back(any_project: Project, twin_url: str) -> None:
    project = any_project
    project.write_model("diary.py", _moods("happy", "sad"))
    project.make("create diaries")
    assert project.run("migrate").exit_code == 0
    project.query("SELECT 1")
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO diaries (id, mood) VALUES (1, 'happy'), (2, 'sad')")
    engine.dispose()
    project.write_model("diary.py", _moods("happy", "indifferent", "sad"))

    result = project.run("make:migration", "add indifferent")

    assert result.exit_code == 0, result.output
    assert "Created" in result.output
    assert project.run("migrate").exit_code == 0
    assert_matches_models(project, twin_url)
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO diaries (id, mood) VALUES (3, 'indifferent')")
    assert "No changes detected." in project.run("make:migration", "again").output
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM diaries WHERE id = 3")
    engine.dispose()

    assert project.run("migrate:rollback").exit_code == 0
    project.write_model("diary.py", _moods("happy", "sad"))
    assert_matches_models(project, twin_url)
    assert _rows(project) == [(1, "happy"), (2, "sad")]


def test_enum_value_removed_keeps_rows_and_rolls_back(any_project: Project, twin_url: str) -> None:
    project = any_project
    project.write_model("diary.py", _moods("happy", "indifferent", "sad"))
    project.make("create diaries")
    assert project.run("migrate").exit_code == 0
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO diaries (id, mood) VALUES (1, 'happy'), (2, 'sad')")
    engine.dispose()
    project.write_model("diary.py", _moods("happy", "sad"))

    result = project.run("make:migration", "remove indifferent")

    assert result.exit_code == 0, result.output
    assert project.run("migrate").exit_code == 0
    assert_matches_models(project, twin_url)
    assert _rows(project) == [(1, "happy"), (2, "sad")]
    assert "No changes detected." in project.run("make:migration", "again").output

    assert project.run("migrate:rollback").exit_code == 0
    project.write_model("diary.py", _moods("happy", "indifferent", "sad"))
    assert_matches_models(project, twin_url)
    assert _rows(project) == [(1, "happy"), (2, "sad")]


def _enum_types(project: Project) -> set[str]:
    if project.backend != "postgresql":
        return set()
    return {row[0] for row in project.query("SELECT typname FROM pg_type WHERE typtype = 'e'")}


def test_shared_enum_type_is_dropped_with_its_last_user(any_project: Project, twin_url: str) -> None:
    project = any_project
    project.write_model("users.py", USERS_MODEL)
    project.write_model("diary.py", _moods("happy", "sad"))
    project.make("create diaries")
    assert project.run("migrate").exit_code == 0
    project.write_model("notes.py", NOTES_MODEL)
    project.make("create notes")
    assert project.run("migrate").exit_code == 0
    assert_matches_models(project, twin_url)

    project.remove_model("notes.py")
    project.make("drop notes")
    assert project.run("migrate").exit_code == 0
    assert_matches_models(project, twin_url)
    if project.backend == "postgresql":
        assert _enum_types(project) == {"mood"}

    project.write_model("diary.py", MOOD_MODEL.split("class Diary")[0].format(values="'happy', 'sad'"))
    project.make("drop diaries", "--allow-drops")
    assert project.run("migrate").exit_code == 0
    assert_matches_models(project, twin_url)
    assert _enum_types(project) == set()

    assert project.run("migrate:rollback", "--step", "2").exit_code == 0
    project.write_model("diary.py", _moods("happy", "sad"))
    project.write_model("notes.py", NOTES_MODEL)
    assert_matches_models(project, twin_url)


def test_enum_column_added_to_an_existing_table(any_project: Project, twin_url: str) -> None:
    project = any_project
    project.write_model(
        "diary.py",
        """
        from sqlalchemy.orm import Mapped, mapped_column

        from models.base import Base


        class Diary(Base):
            __tablename__ = "diaries"

            id: Mapped[int] = mapped_column(primary_key=True)
        """,
    )
    project.make("create diaries")
    assert project.run("migrate").exit_code == 0
    project.query("SELECT 1")
    project.write_model(
        "diary.py",
        _moods("happy", "sad").replace('server_default="happy")', "nullable=True)"),
    )

    result = project.run("make:migration", "add mood")

    assert result.exit_code == 0, result.output
    assert project.run("migrate").exit_code == 0
    assert_matches_models(project, twin_url)
    assert project.run("migrate:rollback").exit_code == 0
    assert _enum_types(project) == set()
    assert project.run("migrate").exit_code == 0
    assert_matches_models(project, twin_url)


def test_sqlite_enum_check_constraint_follows_value_changes(sqlite_project: Project) -> None:
    project = sqlite_project
    constrained = _moods("happy", "sad").replace('name="mood")', 'name="mood", create_constraint=True)')
    project.write_model("diary.py", constrained)
    project.make("create diaries")
    assert project.run("migrate").exit_code == 0
    assert "No changes detected." in project.run("make:migration", "again").output
    project.query("SELECT 1")
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO diaries (id, mood) VALUES (1, 'sad')")
    engine.dispose()
    project.write_model("diary.py", constrained.replace("'sad', name", "'sad', 'calm', name"))

    project.make("add calm")
    assert project.run("migrate").exit_code == 0
    engine = project.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO diaries (id, mood) VALUES (2, 'calm')")
    engine.dispose()
    assert "No changes detected." in project.run("make:migration", "again").output
    assert _rows(project) == [(1, "sad"), (2, "calm")]


def test_pretend_on_an_added_postgresql_enum_value_changes_nothing(project: Project) -> None:
    project.write_model("diary.py", _moods("happy", "sad"))
    project.make("create diaries")
    assert project.run("migrate").exit_code == 0
    project.write_model("diary.py", _moods("happy", "sad", "indifferent"))
    project.make("add indifferent")

    result = project.run("migrate", "--pretend")

    assert result.exit_code == 0, result.output
    if project.backend == "postgresql":
        # The autocommit block runs inside the rolled-back transaction: shown, never committed.
        assert "ALTER TYPE \"mood\" ADD VALUE IF NOT EXISTS 'indifferent'" in result.stdout
        labels = project.query("SELECT enum_range(NULL::mood)::text")
        assert labels == [("{happy,sad}",)]
    assert project.run("migrate").exit_code == 0


def test_a_table_made_on_sqlite_takes_its_enum_type_with_it_on_postgresql(
    sqlite_project: Project, tmp_path: Path
) -> None:
    """Teams generate on a laptop's SQLite and deploy to PostgreSQL: the downgrade must still drop
    the native type that create_table made there, or the next upgrade fails ("already exists")."""
    project = sqlite_project
    project.write_model("diary.py", _moods("happy", "sad"))
    created = project.make("create diaries")
    assert 'sa.Enum(name="mood").drop(' in created.read_text().replace("'", '"')
    for pg_url in fresh_database("postgresql", tmp_path / "pg"):
        assert project.run("migrate", url=pg_url).exit_code == 0
        assert project.run("migrate:rollback", url=pg_url).exit_code == 0
        engine = sa.create_engine(pg_url)
        with engine.connect() as connection:
            assert (
                connection.exec_driver_sql("SELECT count(*) FROM pg_type WHERE typname = 'mood'").scalar()
                == 0
            )
        engine.dispose()
        assert project.run("migrate", url=pg_url).exit_code == 0
