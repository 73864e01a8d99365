"""Checksums of applied migrations ignore formatting, comments and docstrings, not code changes;
ledgers holding the older checksum (sha256 of the bytes) keep working."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Project
from helpers import create_table_revision

MESSY = '''"""add widgets

Revision ID: w1
"""
from alembic import op
import sqlalchemy as sa
revision = 'w1'
down_revision = None
branch_labels = None
depends_on = None
def upgrade():
    op.create_table('widgets', sa.Column('id', sa.Integer, primary_key = True),
      sa.Column('label', sa.String(50)))
def downgrade():
    op.drop_table( 'widgets' )
'''
NAME = "2026_01_01_000001_add_widgets"


def _migrated(project: Project) -> Path:
    path = project.migrations / f"{NAME}.py"
    path.write_text(MESSY, encoding="utf-8")
    result = project.run("migrate")
    assert result.exit_code == 0, result.output
    return path


def _status_line(project: Project) -> str:
    result = project.run("migrate:status")
    assert result.exit_code == 0, result.output
    return next(line for line in result.stdout.splitlines() if line.startswith(NAME))


def _state(line: str) -> str:
    return re.split(r"\s{2,}", line)[1]


def test_ruff_format_and_comments_leave_an_applied_migration_unedited(sqlite_project: Project) -> None:
    path = _migrated(sqlite_project)
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--no-cache", "--isolated", str(path)],
        capture_output=True,
        text=True,
    )
    assert formatted.returncode == 0, formatted.stderr
    text = path.read_text(encoding="utf-8")
    assert text != MESSY and '"widgets"' in text
    path.write_text(
        text.replace('"""add widgets', '"""Add the widgets table (reviewed)')
        .replace("def upgrade():", "# reviewed\n\n\ndef upgrade():  # creates widgets\n    '''Why.'''")
        .replace('"label"', "'label'"),
        encoding="utf-8",
    )

    assert _state(_status_line(sqlite_project)) == "Ran"
    again = sqlite_project.run("migrate")
    assert again.exit_code == 0 and "edited" not in again.output, again.output
    assert sqlite_project.run("migrate:rehash").stdout.strip() == "No edited migrations."


def test_a_changed_statement_is_an_edit(sqlite_project: Project) -> None:
    path = _migrated(sqlite_project)
    path.write_text(MESSY.replace("sa.String(50)", "sa.String(80)"), encoding="utf-8")

    assert _state(_status_line(sqlite_project)) == "Ran, edited"
    check = sqlite_project.run("migrate:check")
    assert check.exit_code == 1 and NAME in check.output

    assert sqlite_project.run("migrate:rehash").exit_code == 0
    assert _state(_status_line(sqlite_project)) == "Ran"


def test_a_ledger_row_with_the_old_byte_checksum_counts_as_unedited(project: Project) -> None:
    path = _migrated(project)
    (stored,) = project.query("SELECT checksum FROM manage_migrations")
    raw = hashlib.sha256(path.read_bytes()).hexdigest()
    assert stored[0] != raw  # the new form is stored
    engine = project.engine()
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"UPDATE manage_migrations SET checksum = '{raw}'")
    finally:
        engine.dispose()

    assert _state(_status_line(project)) == "Ran"
    path.write_text(MESSY.replace("op.drop_table( 'widgets' )", "pass"), encoding="utf-8")
    assert _state(_status_line(project)) == "Ran, edited"


def test_code_checksums_are_remembered_beside_the_bytecode(
    sqlite_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Status parses each applied file once, not on every run; a broken cache is only a cache."""
    import json

    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    assert sqlite_project.run("migrate").exit_code == 0
    cache = sqlite_project.migrations / "__pycache__" / "manage-checksums.json"
    entries = json.loads(cache.read_text())
    assert len(entries) == 1

    cache.write_text("{not json")
    status = sqlite_project.run("migrate:status")
    assert status.exit_code == 0 and "edited" not in status.stdout.split("\n", 1)[1]
    assert json.loads(cache.read_text()) == entries
