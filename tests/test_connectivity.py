"""Connection problems found for real: a silent server, a wrong password, an unknown database,
a read-only SQLite file; one line each, the right exit code, and never a secret."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import MARIADB_ADMIN_URL, PG_ADMIN_URL, USERS_MODEL, Project, _admin_engine, fresh_database
from helpers import create_table_revision

SECRETS = ("s3cr3tpw", "qs3cr3tq")


def _assert_one_clean_line(project: Project, url: str, code: int, message: str) -> None:
    for args in (("migrate",), ("--traceback", "migrate")):
        result = project.run(*args, url=url)
        assert result.exit_code == code, result.output
        assert message in result.stderr
        for secret in SECRETS:
            assert secret not in result.output
        if "--traceback" not in args:
            assert "Traceback" not in result.output
            assert result.stderr.startswith("error: ")


@pytest.mark.parametrize(("scheme", "secret_option"), [("postgresql", "sslpassword"), ("mysql", "ssl_key")])
def test_a_server_that_never_answers_times_out(
    sqlite_project: Project, silent_port: int, scheme: str, secret_option: str
) -> None:
    sqlite_project.write_model("users.py", USERS_MODEL)
    url = f"{scheme}://app:s3cr3tpw@127.0.0.1:{silent_port}/app?connect_timeout=1&{secret_option}=qs3cr3tq"
    started = time.monotonic()

    result = sqlite_project.run("migrate", url=url)

    assert time.monotonic() - started < 8
    assert result.exit_code == 4, result.output
    assert result.stderr.startswith(
        f"error: cannot connect to {scheme}://app:***@127.0.0.1:{silent_port}/app?"
    )
    assert "did not answer within 1 s" in result.stderr
    _assert_one_clean_line(sqlite_project, url, 4, "cannot connect to")


def test_the_default_connect_timeout_is_a_few_seconds(sqlite_project: Project, silent_port: int) -> None:
    started = time.monotonic()
    result = sqlite_project.run("migrate:status", url=f"postgresql://app@127.0.0.1:{silent_port}/app")
    assert result.exit_code == 4
    assert 4 <= time.monotonic() - started < 10
    assert "did not answer within 5 s" in result.stderr


@pytest.fixture
def mariadb_user(tmp_path: Path) -> Iterator[str]:
    """A fresh MariaDB database and a user with a password; yields that database's admin URL."""
    database = fresh_database("mariadb", tmp_path)
    url = next(database)
    user = f"mt_{uuid.uuid4().hex[:8]}"
    admin = _admin_engine(MARIADB_ADMIN_URL, "mariadb")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'right-password'"))
    try:
        yield sa.make_url(url).set(username=user).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'%'"))
        admin.dispose()
        database.close()


def test_a_wrong_password_is_an_authentication_error(sqlite_project: Project, mariadb_user: str) -> None:
    url = sa.make_url(mariadb_user).set(password="s3cr3tpw").render_as_string(hide_password=False)
    _assert_one_clean_line(sqlite_project, url, 4, "Access denied for user")
    result = sqlite_project.run("migrate", url=url)
    assert "hint: check the user name and password in the database URL" in result.stderr


def test_an_unknown_database_is_named(sqlite_project: Project) -> None:
    missing = f"mt_missing_{uuid.uuid4().hex[:8]}"
    url = sa.make_url(PG_ADMIN_URL).set(database=missing, password="s3cr3tpw").render_as_string(False)
    _admin_engine(PG_ADMIN_URL, "postgresql").dispose()
    _assert_one_clean_line(sqlite_project, url, 4, f'database "{missing}" does not exist')
    result = sqlite_project.run("migrate", url=url)
    assert f"hint: create the database '{missing}' first" in result.stderr


def test_a_read_only_sqlite_file_is_refused_before_any_migration(sqlite_project: Project) -> None:
    path = sqlite_project.root / "readonly.sqlite3"
    sqlite3.connect(path).close()
    create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    url = f"sqlite:///file:{path}?mode=ro&uri=true"

    result = sqlite_project.run("migrate", url=url)

    assert result.exit_code == 4, result.output
    assert result.stderr.startswith("error: cannot write to sqlite:///file:")
    assert "attempt to write a readonly database" in result.stderr
    assert "Running" not in result.stdout
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT name FROM sqlite_master").fetchall() == []
    status = sqlite_project.run("migrate:status", url=url)
    assert status.exit_code == 0
    assert "0 ran, 1 pending." in status.stdout


def test_a_query_option_the_driver_rejects_is_a_configuration_error(sqlite_project: Project) -> None:
    url = "mysql://app:s3cr3tpw@127.0.0.1:1/app?sslpassword=qs3cr3tq"
    _assert_one_clean_line(sqlite_project, url, 3, "unexpected keyword argument 'sslpassword'")


def test_secrets_from_the_environment_stay_hidden_in_tracebacks(sqlite_project: Project) -> None:
    from manage_migrations.cli import app

    url = "postgresql://app:s3cr3tpw@127.0.0.1:1/app?sslpassword=qs3cr3tq"
    result = sqlite_project.runner.invoke(
        app, ["--traceback", "migrate"], env={"DATABASE_URL": url, "NO_COLOR": "1"}
    )

    assert result.exit_code == 4
    assert "Traceback" in result.stderr
    assert "cannot connect to postgresql://app:***@127.0.0.1:1/app?sslpassword=***" in result.stderr
    for secret in SECRETS:
        assert secret not in result.output
