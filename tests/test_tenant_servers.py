"""Tenants spread over two PostgreSQL servers (the second one started by the suite), listed by
a two-column query, including a server that goes away in the middle of a run."""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import Project, fresh_database, make_project
from helpers import start_manage, wait_for, write_revision
from pgserver import PostgresServer


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))


def _version(url: str, schema: str) -> set[str]:
    engine = _engine(url)
    try:
        if "alembic_version" not in sa.inspect(engine).get_table_names(schema=schema):
            return set()
        with engine.connect() as connection:
            return {
                row[0]
                for row in connection.exec_driver_sql(f'SELECT version_num FROM "{schema}".alembic_version')
            }
    finally:
        engine.dispose()


@pytest.fixture
def spread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, disposable_postgres: PostgresServer
) -> Iterator[tuple[Project, dict[str, str]]]:
    """A project whose default database lists six tenants: three on the suite's server, three
    (listed first) on a server of their own. Yields the project and each tenant's server URL."""
    databases = fresh_database("postgresql", tmp_path)
    project = make_project(tmp_path, next(databases), monkeypatch)
    remote_name = f"remote_{uuid.uuid4().hex[:8]}"
    remote = disposable_postgres.create_database(remote_name)
    local = project.url.replace("postgresql+psycopg2://", "postgresql://", 1)
    where = {f"r{i}": remote for i in range(3)} | {f"l{i}": local for i in range(3)}
    with project.engine().begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE tenants (name TEXT PRIMARY KEY, url TEXT NOT NULL, position INT)"
        )
        for position, (name, url) in enumerate(where.items()):
            connection.exec_driver_sql(
                "INSERT INTO tenants VALUES (%(name)s, %(url)s, %(position)s)",
                {"name": name, "url": url, "position": position},
            )
    (project.root / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [tool.manage.tenants]
            mode = "schema"
            models = ["tenant_models"]
            query = "SELECT name, url FROM tenants ORDER BY position"
            """
        ),
        encoding="utf-8",
    )
    (project.root / "tenant_models").mkdir()
    (project.root / "tenant_models" / "__init__.py").write_text("", encoding="utf-8")
    tenants = project.migrations / "tenants"
    tenants.mkdir()
    write_revision(
        tenants,
        "2026_01_01_000001",
        "create_a",
        "t1",
        None,
        'op.create_table("a", sa.Column("id", sa.Integer, primary_key=True))',
        'op.drop_table("a")',
    )
    write_revision(
        tenants,
        "2026_01_01_000002",
        "slow_b",
        "t2",
        "t1",
        """
        op.create_table("b", sa.Column("id", sa.Integer, primary_key=True))
        import os, pathlib
        marker = os.environ.get("SLOW_MARKER")
        if marker:
            pathlib.Path(marker).write_text("x")
            op.execute("SELECT pg_sleep(2)")
        """,
        'op.drop_table("b")',
    )
    yield project, where
    next(databases, None)


def test_tenants_on_two_servers_from_a_two_column_query(spread: tuple[Project, dict[str, str]]) -> None:
    project, where = spread
    for name in where:
        created = project.run("tenants:create", name)
        assert created.exit_code == 0, created.output
    status = project.run("tenants:status")
    assert status.exit_code == 0, status.output
    assert "6 tenants: 6 up to date" in status.output
    remote_port = sa.make_url(where["r0"]).port
    assert any(line.startswith("r0") and f":{remote_port}/" in line for line in status.output.splitlines())
    for name, url in where.items():
        assert _version(url, name) == {"t2"}
    # Each server holds only its own tenants' schemas.
    assert _version(where["l0"], "r0") == set() and _version(where["r0"], "l0") == set()


def test_a_server_going_away_mid_run_fails_only_its_tenants(
    spread: tuple[Project, dict[str, str]],
    disposable_postgres: PostgresServer,
    tmp_path: Path,
    processes: list,
) -> None:
    project, where = spread
    for name, url in where.items():
        engine = _engine(url)
        with engine.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        engine.dispose()
    marker = tmp_path / "slow_started"
    process = start_manage(processes, project, "tenants:migrate", "--jobs", "2", SLOW_MARKER=str(marker))
    wait_for(marker, process, timeout=60)
    disposable_postgres.stop(mode="immediate")  # the remote tenants are first: two are mid-migration
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, out + err
    assert "Traceback" not in out + err
    assert "6 tenants: 3 migrated, 0 up to date, 3 failed" in out, out + err
    for name in ("l0", "l1", "l2"):
        assert _version(where[name], name) == {"t2"}
    assert "r2: cannot connect to postgresql://postgres@127.0.0.1:" in err, err
    assert "is the server running" in err
    # The two caught mid-migration: the lost connection, not whatever statement noticed it.
    assert err.count("lost the connection to postgresql://postgres@127.0.0.1:") == 2, err
    assert "unexpected OperationalError" not in err

    disposable_postgres.start()
    os.environ.pop("SLOW_MARKER", None)
    marker.unlink()
    rerun = project.run("tenants:migrate")
    assert rerun.exit_code == 0, rerun.output
    assert "6 tenants: 3 migrated, 3 up to date" in rerun.output
    for name, url in where.items():
        assert _version(url, name) == {"t2"}


def test_migrate_reports_a_server_lost_mid_migration(
    disposable_postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: list
) -> None:
    url = disposable_postgres.create_database(f"lost_{uuid.uuid4().hex[:8]}")
    project = make_project(tmp_path, url, monkeypatch)
    write_revision(
        project.migrations,
        "2026_01_01_000001",
        "slow",
        "s1",
        None,
        """
        op.create_table("a", sa.Column("id", sa.Integer, primary_key=True))
        import os, pathlib
        pathlib.Path(os.environ["SLOW_MARKER"]).write_text("x")
        op.execute("SELECT pg_sleep(5)")
        """,
        'op.drop_table("a")',
    )
    marker = tmp_path / "slow_started"
    process = start_manage(processes, project, "migrate", SLOW_MARKER=str(marker))
    wait_for(marker, process, timeout=60)
    disposable_postgres.stop(mode="immediate")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 4, out + err
    assert "error: lost the connection to postgresql://postgres@127.0.0.1:" in err
    assert "during 2026_01_01_000001_slow" in err and "Traceback" not in err
    disposable_postgres.start()
    assert _version(url, "public") == set()
