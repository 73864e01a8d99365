"""The plain-driver read of the history tables agrees with the SQLAlchemy read, on every backend."""

from __future__ import annotations

from pathlib import Path

from conftest import Project
from helpers import create_table_revision

from manage_migrations import database, ledger, rawdb


def test_plain_driver_reads_what_sqlalchemy_reads(project: Project) -> None:
    """Every backend of the `project` fixture: SQLite, PostgreSQL, MariaDB."""
    url = project.url
    parsed = database.parse_url(url, project.root)
    assert rawdb.read_state(parsed) in (None, ((), [], frozenset()))
    first = create_table_revision(project.migrations, 1, "alpha", None)
    create_table_revision(project.migrations, 2, "beta", first)
    assert project.run("migrate", "--step").exit_code == 0

    plain = rawdb.read_state(parsed)

    engine = database.create_engine_for(parsed)
    with engine.connect() as connection:
        expected = (ledger.read_version_heads(connection), ledger.read_ledger(connection))
    engine.dispose()
    assert plain is not None
    assert plain[0] == expected[0]
    assert [(r.revision, r.name, r.batch, r.checksum) for r in plain[1]] == [
        (r.revision, r.name, r.batch, r.checksum) for r in expected[1]
    ]
    assert [r.applied_at.replace(microsecond=0) for r in plain[1]] == [
        r.applied_at.replace(microsecond=0) for r in expected[1]
    ]


def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    target = tmp_path / "absent.sqlite3"
    assert rawdb.read_state(database.parse_url(f"sqlite:///{target}", tmp_path)) == ((), [], frozenset())
    assert not target.exists()
    missing_directory = database.parse_url(f"sqlite:///{tmp_path}/no/such/dir.sqlite3", tmp_path)
    assert rawdb.read_state(missing_directory) is None


def test_unusual_urls_fall_back_to_sqlalchemy(tmp_path: Path) -> None:
    for url in ("postgresql+pg8000://u@h/db", "oracle://u@h/db", "sqlite://", "mysql://u@h/db?ssl_ca=x"):
        assert rawdb.read_state(database.parse_url(url, tmp_path)) is None
