"""Plain `alembic` and tools built on it (pytest-alembic) through the shared environment: the same
migrations directory as manage.py, an Engine or a Connection handed over, the same guard."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import CLI_ENV, fresh_database

EXAMPLE_TABLES = {"users", "posts", "tags", "post_tags"}
HEAD = "008b9ce71854"


def _run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A subprocess of `python manage.py ...` or `python -m alembic ...` in the project copy."""
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "APP_ENV")}
    environ.update(CLI_ENV, **env)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=120
    )


def _alembic(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return _run(cwd, "-m", "alembic", *args, **env)


def _tables(root: Path) -> set[str]:
    path = root / "database.sqlite3"
    if not path.exists():
        return set()
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _edit_pyproject(root: Path, pattern: str, replacement: str) -> None:
    path = root / "pyproject.toml"
    text, count = re.subn(pattern, replacement, path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert count == 1, pattern
    path.write_text(text, encoding="utf-8")


def _move_migrations(root: Path) -> None:
    (root / "db").mkdir()
    (root / "migrations").rename(root / "db" / "migrations")


def test_disagreeing_migrations_keys_are_refused_by_both_tools(repo_copy: Path) -> None:
    _move_migrations(repo_copy)
    _edit_pyproject(repo_copy, r'^migrations = "migrations"$', 'migrations = "db/migrations"')

    for args in (("heads",), ("upgrade", "head"), ("history",)):
        plain = _alembic(repo_copy, *args)
        assert plain.returncode != 0, plain.stdout
        output = plain.stdout + plain.stderr
        assert (
            "FAILED: [tool.manage] migrations = 'db/migrations' and [tool.alembic] version_locations"
            in output
        )
        assert f"({repo_copy}/db/migrations and {repo_copy}/migrations)" in output
        assert "Traceback" not in output
    status = _run(repo_copy, "manage.py", "migrate:status")
    assert status.returncode == 3, status.stdout + status.stderr
    assert (
        "error: [tool.manage] migrations = 'db/migrations' and [tool.alembic] version_locations"
        in status.stderr
    )
    assert "hint: make both name the same directory" in status.stderr
    assert _tables(repo_copy) == set()


def test_tool_manage_migrations_alone_is_what_plain_alembic_reads(repo_copy: Path) -> None:
    _move_migrations(repo_copy)
    _edit_pyproject(repo_copy, r'^migrations = "migrations"$', 'migrations = "db/migrations"')
    _edit_pyproject(repo_copy, r"^version_locations = .*\n", "")

    heads = _alembic(repo_copy, "heads")
    assert heads.returncode == 0, heads.stdout + heads.stderr
    assert f"{HEAD} (head)" in heads.stdout
    assert _run(repo_copy, "manage.py", "migrate:status").stdout.strip().endswith("0 ran, 3 pending.")

    upgraded = _alembic(repo_copy, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    assert _tables(repo_copy) >= EXAMPLE_TABLES
    assert _run(repo_copy, "manage.py", "migrate:status").stdout.strip().endswith("3 ran, 0 pending.")


def test_alembic_version_locations_alone_is_what_manage_py_reads(repo_copy: Path) -> None:
    _move_migrations(repo_copy)
    _edit_pyproject(repo_copy, r'^migrations = "migrations"\n', "")
    _edit_pyproject(repo_copy, r"^version_locations = .*$", 'version_locations = ["%(here)s/db/migrations"]')

    status = _run(repo_copy, "manage.py", "migrate:status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.strip().endswith("0 ran, 3 pending.")
    migrated = _run(repo_copy, "manage.py", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    current = _alembic(repo_copy, "current")
    assert f"{HEAD} (head)" in current.stdout


def test_plain_alembic_downgrade_obeys_prohibit_destructive(repo_copy: Path) -> None:
    _edit_pyproject(
        repo_copy, r'^migrations = "migrations"$', 'migrations = "migrations"\nprohibit_destructive = true'
    )
    assert _alembic(repo_copy, "upgrade", "head").returncode == 0

    refused = _alembic(repo_copy, "downgrade", "base")

    assert refused.returncode != 0
    assert (
        "FAILED: refused to downgrade ([tool.manage] prohibit_destructive = true); nothing was changed"
        in (refused.stdout)
    )
    assert "-x force=1" in refused.stdout
    assert "Traceback" not in refused.stdout + refused.stderr
    assert _tables(repo_copy) >= EXAMPLE_TABLES
    assert f"{HEAD} (head)" in _alembic(repo_copy, "current").stdout

    forced = _alembic(repo_copy, "-x", "force=1", "downgrade", "base")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert not _tables(repo_copy) & EXAMPLE_TABLES


@pytest.mark.parametrize("recorded", [False, True])
def test_plain_alembic_downgrade_is_guarded_in_production(repo_copy: Path, recorded: bool) -> None:
    """APP_ENV=production, or a database manage.py migrated in production (recorded in manage_state)."""
    migrated = _run(repo_copy, "manage.py", "migrate", APP_ENV="Production")
    assert migrated.returncode == 0, migrated.stderr
    env = {} if recorded else {"APP_ENV": "production"}
    why = "a database last migrated in production" if recorded else "the production environment"

    for target in ("base", "-1"):
        refused = _alembic(repo_copy, "downgrade", target, **env)
        assert refused.returncode != 0
        assert f"FAILED: refused to downgrade ({why}); nothing was changed" in refused.stdout
        assert _tables(repo_copy) >= EXAMPLE_TABLES
        assert f"{HEAD} (head)" in _alembic(repo_copy, "current").stdout

    assert _alembic(repo_copy, "-x", "force=1", "downgrade", "-1", **env).returncode == 0
    assert "tags" not in _tables(repo_copy)
    upgraded = _alembic(repo_copy, "upgrade", "head", **env)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert "tags" in _tables(repo_copy)


PYTEST_ALEMBIC_TESTS = (
    "test_single_head_revision",
    "test_upgrade",
    "test_model_definitions_match_ddl",
    "test_up_down_consistency",
)


@pytest.mark.parametrize("handover", ["engine", "connection"])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("name", PYTEST_ALEMBIC_TESTS)
def test_pytest_alembic_default_tests_pass_on_the_example_app(
    repo_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    backend: str,
    handover: str,
) -> None:
    """pytest-alembic's own tests, driven through its API as its plugin would (a fresh database
    per test), with an Engine or a Connection in config.attributes["connection"]."""
    from pytest_alembic import runner
    from pytest_alembic.config import Config
    from pytest_alembic.tests import default

    monkeypatch.chdir(repo_copy)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("APP_ENV", raising=False)
    for url in fresh_database(backend, tmp_path):
        engine = sa.create_engine(url)
        try:
            with contextlib.ExitStack() as stack:
                # A caller's Connection stays in the caller's transaction: look through it.
                given = engine if handover == "engine" else stack.enter_context(engine.connect())
                with runner(config=Config(), engine=given) as alembic_runner:
                    getattr(default, name)(alembic_runner)
                if name == "test_upgrade":
                    assert set(sa.inspect(given).get_table_names()) >= EXAMPLE_TABLES
        finally:
            engine.dispose()
