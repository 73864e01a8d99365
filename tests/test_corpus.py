"""A corpus the project did not write: models on advanced-alchemy's declarative bases (MIT) with
sqlalchemy-utils column types (BSD), round-tripped through the real CLI on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Project, fresh_database, make_project

pytest.importorskip("advanced_alchemy")
pytest.importorskip("sqlalchemy_utils")

LIBRARY = '''
"""A library app as advanced-alchemy users write one: its audit bases, GUID keys, UTC datetimes."""

from __future__ import annotations

import datetime
import enum
import uuid

import sqlalchemy as sa
from advanced_alchemy.base import BigIntAuditBase, UUIDAuditBase, UUIDBase
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy_utils import ChoiceType, EmailType, IPAddressType, JSONType, ScalarListType, URLType, UUIDType


class Status(enum.Enum):
    draft = "draft"
    published = "published"


class Author(BigIntAuditBase):
    __tablename__ = "author"

    name: Mapped[str] = mapped_column(sa.String(100))
    email: Mapped[str | None] = mapped_column(EmailType(255))
    homepage: Mapped[str | None] = mapped_column(URLType)
    born: Mapped[datetime.date | None]


class Book(UUIDAuditBase):
    __tablename__ = "book"

    title: Mapped[str] = mapped_column(sa.String(200))
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("author.id"))
    status: Mapped[Status] = mapped_column(sa.Enum(Status, name="book_status"), default=Status.draft)
    kind: Mapped[str | None] = mapped_column(ChoiceType([("novel", "Novel")], impl=sa.String(10)))
    tags: Mapped[list | None] = mapped_column(ScalarListType(str))
    extra: Mapped[dict | None] = mapped_column(JSONType)
    isbn_ref: Mapped[uuid.UUID | None] = mapped_column(UUIDType(binary=False))
    published_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    author: Mapped[Author] = relationship()


class Loan(UUIDBase):
    __tablename__ = "loan"

    book_id: Mapped[uuid.UUID] = mapped_column(GUID, sa.ForeignKey("book.id", ondelete="CASCADE"))
    from_ip: Mapped[str | None] = mapped_column(IPAddressType)
'''
CORPUS_TABLES = {"author", "book", "loan"}

# (name, old text, new text): each edit is generated, applied and rolled back on its own.
EDITS = [
    (
        "add column",
        "    born: Mapped",
        "    nickname: Mapped[str | None] = mapped_column(sa.String(40))\n    born: Mapped",
    ),
    ("drop column", "    extra: Mapped[dict | None] = mapped_column(JSONType)\n", ""),
    ("add unique", "EmailType(255))", "EmailType(255), unique=True)"),
    ("add index", "sa.String(200))", "sa.String(200), index=True)"),
    ("change type", "sa.String(100))", "sa.String(150))"),
    (
        "add foreign key",
        "    from_ip: Mapped",
        '    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("author.id"))\n    from_ip: Mapped',
    ),
    # A longer name (the enum stores names): SQLite's non-native enum is a VARCHAR that long.
    (
        "enum value",
        '    published = "published"',
        '    published = "published"\n    withdrawn_by_author = "withdrawn"',
    ),
]


def _run(project: Project, *args: str):
    """One CLI run as one process would see it: advanced-alchemy keeps its models in a registry of
    its own module, which a second in-process run would find still holding the first run's."""
    from advanced_alchemy.base import orm_registry

    orm_registry.dispose()
    orm_registry.metadata.clear()
    return project.run(*args)


def _make(project: Project, *args: str) -> Path:
    before = set(project.migration_files())
    result = _run(project, "make:migration", *args)
    assert result.exit_code == 0, result.output
    created = set(project.migration_files()) - before
    assert len(created) == 1, result.output
    return created.pop()


def _assert_nothing_to_make(project: Project) -> None:
    before = project.migration_files()
    again = _run(project, "make:migration")
    assert again.exit_code == 0, again.output
    assert "No changes detected." in again.output, again.output
    assert project.migration_files() == before


@pytest.fixture(params=["sqlite", "postgresql"])
def corpus_project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    for url in fresh_database(request.param, tmp_path):
        project = make_project(tmp_path, url, monkeypatch)
        project.remove_model("base.py")
        project.write_model("library.py", LIBRARY)
        yield project
        _run(project, "migrate:reset")  # leave no table in the shared registry's database


def test_corpus_round_trip(corpus_project: Project) -> None:
    project = corpus_project
    first = _make(project)
    assert first.name.endswith("_create_author_book_and_loan_tables.py")
    migrated = _run(project, "migrate")
    assert migrated.exit_code == 0, migrated.output
    assert project.tables() >= CORPUS_TABLES
    _assert_nothing_to_make(project)

    for name, old, new in EDITS:
        assert old in LIBRARY, name
        project.write_model("library.py", LIBRARY.replace(old, new))
        path = _make(project, name)
        applied = _run(project, "migrate")
        assert applied.exit_code == 0, f"{name}: {applied.output}\n{path.read_text()}"
        _assert_nothing_to_make(project)
        rolled_back = _run(project, "migrate:rollback")
        assert rolled_back.exit_code == 0, f"{name}: {rolled_back.output}\n{path.read_text()}"
        path.unlink()
        project.write_model("library.py", LIBRARY)
        _assert_nothing_to_make(project)

    reset = _run(project, "migrate:reset")
    assert reset.exit_code == 0, reset.output
    assert not CORPUS_TABLES & project.tables()
    if project.backend == "postgresql":
        assert project.query("SELECT typname FROM pg_type WHERE typname = 'book_status'") == []
