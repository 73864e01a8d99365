"""One database URL value for every command: migrate, migrate:status (plain driver) and
migrate:check read, show and redact the same URL the same way, on real servers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa
from conftest import CLI_ENV, Project, fresh_database, make_project
from helpers import create_table_revision

from manage_migrations.locks import LOCK_KEY


def _url_with(url: str, **parts: str | None) -> str:
    return sa.make_url(url).set(**parts).render_as_string(hide_password=False)


def _substrings(secret: str, length: int = 3) -> set[str]:
    return {secret[start : start + length] for start in range(len(secret) - length + 1)}


@pytest.fixture
def pg_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    for url in fresh_database("postgresql", tmp_path):
        yield make_project(tmp_path, url, monkeypatch)


@pytest.fixture
def mariadb_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    for url in fresh_database("mariadb", tmp_path):
        yield make_project(tmp_path, url, monkeypatch)


# a. The same text for the same database, whichever command and code path prints it.


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_status_and_check_name_the_database_alike(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "sqlite":
        database = iter([f"sqlite:///{tmp_path / 'app' / 'inside.sqlite3'}"])
        expected = "sqlite:///inside.sqlite3"  # absolute in the URL, inside the project root
    else:
        database = fresh_database("postgresql", tmp_path)
    for url in database:
        project = make_project(tmp_path, url, monkeypatch)
        if backend == "postgresql":
            name = sa.make_url(url).database
            expected = f"postgresql://postgres@127.0.0.1:5432/{name}"  # no +psycopg2
        create_table_revision(project.migrations, 1, "alpha", None)
        assert project.run("migrate").exit_code == 0
        create_table_revision(project.migrations, 2, "beta", "rev0001")

        status = project.run("migrate:status", "--json")
        check = project.run("migrate:check", "--json")
        migrate = project.run("migrate", "--pretend")

        assert status.exit_code == 0, status.output
        assert check.exit_code == 1, check.output
        assert json.loads(status.stdout)["database"] == expected
        assert json.loads(check.stdout)["database"] == expected
        assert f"on {expected} " in migrate.stdout


# b. A "#" in an SQLite path is part of the path for every command.


def test_a_hash_in_an_sqlite_path_is_the_same_file_for_migrate_and_status(sqlite_project: Project) -> None:
    create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    url = "sqlite:///a#b.sqlite3"

    assert sqlite_project.run("migrate", url=url).exit_code == 0
    status = sqlite_project.run("migrate:status", "--json", url=url)

    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["counts"]["ran"] == 1
    assert json.loads(status.stdout)["database"] == "sqlite:///a#b.sqlite3"
    assert (sqlite_project.root / "a#b.sqlite3").is_file()
    assert not (sqlite_project.root / "a").exists()


def test_a_percent_encoded_password_with_hash_and_question_mark_works_everywhere(pg_project: Project) -> None:
    create_table_revision(pg_project.migrations, 1, "alpha", None)
    # Trust authentication ignores the password: what is tested is how each path parses it.
    url = _url_with(pg_project.url, drivername="postgresql").replace(
        "postgres@", "postgres:Kq%23Vw%3FJx7@", 1
    )

    migrate = pg_project.run("migrate", url=url)
    status = pg_project.run("migrate:status", "--json", url=url)

    assert migrate.exit_code == 0, migrate.output
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["counts"]["ran"] == 1
    assert json.loads(status.stdout)["database"].startswith("postgresql://postgres:***@127.0.0.1:5432/")
    pieces = _substrings("Kq#Vw?Jx7") | _substrings("Kq%23Vw%3FJx7")
    for output in (migrate.output, status.output):
        assert not {piece for piece in pieces if piece in output}


# c. Reserved characters typed into a password: refused, and not one piece of it shown.


@pytest.mark.parametrize(
    ("url", "password", "shown"),
    [
        ("postgresql://u:p@ss/w:rd%@127.0.0.1:1/db", "p@ss/w:rd%", "postgresql://u:***@127.0.0.1:1/db"),
        (
            "postgresql://postgres:Zq9@SecretXy@127.0.0.1/db",
            "Zq9@SecretXy",
            "postgresql://postgres:***@127.0.0.1/db",
        ),
        (
            "postgresql://postgres:Zq9?SecretXy@127.0.0.1/db",
            "Zq9?SecretXy",
            "postgresql://postgres:***@127.0.0.1/db",
        ),
        (
            "mysql+pymysql://root:Wv#8Hq@127.0.0.1:1/db?charset=utf8mb4",
            "Wv#8Hq",
            "mysql://root:***@127.0.0.1:1/db?charset=utf8mb4",
        ),
    ],
)
def test_reserved_characters_in_a_password_are_refused_without_showing_it(
    sqlite_project: Project, url: str, password: str, shown: str
) -> None:
    create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    runs = [
        ("migrate",),
        ("migrate:status",),
        ("migrate:status", "--json"),
        ("migrate:check", "--json"),
        ("-v", "migrate"),
        ("--traceback", "migrate:status"),
    ]
    for args in runs:
        result = sqlite_project.run(*args, url=url)

        assert result.exit_code == 3, (args, result.output)
        assert "error: the password in the database URL has reserved characters" in result.stderr
        assert f"hint: write it as {shown}, with *** the password percent-encoded" in result.stderr
        assert result.stdout == ""
        # A traceback quotes code ("return", ...): there, no piece between reserved characters.
        pieces = _substrings(password) if "--traceback" not in args else re.split(r"[@/?#%:]", password)
        leaked = {piece for piece in pieces if len(piece) >= 3 and piece in result.output}
        assert not leaked, (args, leaked, result.output)


# d. Async drivers run through their sync sibling; psycopg 3 is a driver of its own.


def test_an_async_postgresql_url_migrates_through_a_sync_driver(pg_project: Project) -> None:
    create_table_revision(pg_project.migrations, 1, "alpha", None)
    url = _url_with(pg_project.url, drivername="postgresql+asyncpg")

    migrate = pg_project.run("-v", "migrate", url=url)
    status = pg_project.run("migrate:status", "--json", url=url)

    assert migrate.exit_code == 0, migrate.output
    assert "1 migration" in migrate.stdout
    note = "note: postgresql+asyncpg is an async driver; migrations connect to the same database through"
    assert migrate.stderr.count(note) == 1
    assert pg_project.version() == {"rev0001"}
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["counts"]["ran"] == 1
    assert note not in pg_project.run("migrate", url=url).stderr  # only with -v


def test_an_async_sqlite_url_uses_pysqlite(sqlite_project: Project) -> None:
    create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    url = "sqlite+aiosqlite:///async.sqlite3"
    assert sqlite_project.run("migrate", url=url).exit_code == 0
    status = sqlite_project.run("migrate:status", "--json", url=url)
    assert json.loads(status.stdout)["counts"]["ran"] == 1
    assert json.loads(status.stdout)["database"] == "sqlite:///async.sqlite3"


def test_async_mysql_urls_use_pymysql(mariadb_project: Project) -> None:
    create_table_revision(mariadb_project.migrations, 1, "alpha", None)
    for driver in ("aiomysql", "asyncmy"):
        url = _url_with(mariadb_project.url, drivername=f"mysql+{driver}")
        result = mariadb_project.run("migrate:status", url=url)
        assert result.exit_code == 0, result.output
    assert mariadb_project.run("migrate", url=url).exit_code == 0
    assert mariadb_project.version() == {"rev0001"}


def test_psycopg_3_is_a_driver_of_its_own(pg_project: Project) -> None:
    first = create_table_revision(pg_project.migrations, 1, "alpha", None)
    create_table_revision(pg_project.migrations, 2, "beta", first)
    url = _url_with(pg_project.url, drivername="postgresql+psycopg")

    assert pg_project.run("migrate", url=url).exit_code == 0
    status = pg_project.run("migrate:status", "--json", url=url)
    rollback = pg_project.run("migrate:rollback", url=url)

    assert json.loads(status.stdout)["counts"]["ran"] == 2
    assert json.loads(status.stdout)["database"].startswith("postgresql://postgres@127.0.0.1:5432/")
    assert rollback.exit_code == 0, rollback.output
    assert pg_project.version() == set()


HIDE_PSYCOPG = """
import sys
from importlib.abc import MetaPathFinder


class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "psycopg":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
from manage_migrations.cli import main

sys.argv = ["manage.py", *sys.argv[1:]]
main()
"""


def test_a_missing_psycopg_3_gets_an_install_hint(sqlite_project: Project) -> None:
    """A real manage.py process in which psycopg 3 cannot be imported, as where it is not installed."""
    create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    url = "postgresql+psycopg://app:Pw7kXq@127.0.0.1:1/app"
    for command in ("migrate", "migrate:status"):
        completed = subprocess.run(
            [sys.executable, "-c", HIDE_PSYCOPG, "--database-url", url, command],
            cwd=sqlite_project.root,
            capture_output=True,
            text=True,
            check=False,
            env={**CLI_ENV, "PATH": "/usr/bin:/bin"},
            timeout=60,
        )
        assert completed.returncode == 3, completed.stderr
        assert completed.stderr.splitlines() == [
            "error: the database driver psycopg (postgresql+psycopg) is not installed",
            'hint: install it: pip install "psycopg[binary]"',
        ]


STATUS_PROBE = """
import sys
from manage_migrations.cli import main
sys.argv = ["manage.py", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    heavy = sorted({"sqlalchemy", "alembic"} & {name.partition(".")[0] for name in sys.modules})
    print(f"exit={exc.code} heavy={heavy}", file=sys.stderr)
"""


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_status_reads_postgres_urls_without_sqlalchemy(pg_project: Project, scheme: str) -> None:
    create_table_revision(pg_project.migrations, 1, "alpha", None)
    assert pg_project.run("migrate").exit_code == 0
    url = _url_with(pg_project.url, drivername=scheme)

    completed = subprocess.run(
        [sys.executable, "-c", STATUS_PROBE, "--database-url", url, "migrate:status"],
        cwd=pg_project.root,
        capture_output=True,
        text=True,
        check=False,
        env={**CLI_ENV, "PATH": "/usr/bin:/bin"},
        timeout=60,
    )

    assert "1 ran, 0 pending." in completed.stdout
    assert completed.stderr.strip().splitlines()[-1] == "exit=0 heavy=[]"


# e. A connect timeout holds on every driver, and the hint says how long it took.


@pytest.mark.parametrize("command", ["migrate", "migrate:status"])
def test_a_mysql_server_that_never_greets_times_out_as_asked(
    sqlite_project: Project, silent_port: int, command: str
) -> None:
    create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    url = f"mysql://app@127.0.0.1:{silent_port}/app?connect_timeout=1"
    started = time.monotonic()

    result = sqlite_project.run(command, url=url)

    assert time.monotonic() - started < 3
    assert result.exit_code == 4, result.output
    assert f"hint: 127.0.0.1:{silent_port} did not answer within 1 s" in result.stderr


# f. A MySQL option the driver cannot use is a configuration error naming it.


def test_an_unknown_mysql_charset_is_a_configuration_error(mariadb_project: Project) -> None:
    create_table_revision(mariadb_project.migrations, 1, "alpha", None)
    url = f"{mariadb_project.url}?charset=bogus"
    for command in ("migrate", "migrate:status"):
        result = mariadb_project.run(command, url=url)
        assert result.exit_code == 3, result.output
        assert (
            "error: unknown MySQL character set 'bogus' in the charset parameter of mysql://" in result.stderr
        )
        assert "unexpected" not in result.output


def test_an_unknown_postgresql_option_is_a_configuration_error(pg_project: Project) -> None:
    result = pg_project.run("migrate", url=f"{pg_project.url}?bogus_option=1")
    assert result.exit_code == 3, result.output
    assert 'invalid connection option "bogus_option"' in result.stderr


# g. A missing role is named as a role.


def test_a_missing_postgresql_role_is_named(pg_project: Project) -> None:
    create_table_revision(pg_project.migrations, 1, "alpha", None)
    url = _url_with(pg_project.url, username="mt_no_such_role")
    for command in ("migrate", "migrate:status"):
        result = pg_project.run(command, url=url)
        assert result.exit_code == 4, result.output
        assert 'role "mt_no_such_role" does not exist' in result.stderr
        assert "hint: create the role 'mt_no_such_role' on the server, or fix the user name" in result.stderr


# h. A statement_timeout in the URL does not cut the wait for the migration lock short.


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_a_statement_timeout_in_the_url_still_waits_for_the_lock(pg_project: Project, driver: str) -> None:
    create_table_revision(pg_project.migrations, 1, "alpha", None)
    url = (
        _url_with(pg_project.url, drivername=f"postgresql+{driver}") + "?options=-c%20statement_timeout%3D100"
    )
    plain = sa.make_url(pg_project.url)
    holder = psycopg2.connect(host=plain.host, port=plain.port, user=plain.username, dbname=plain.database)
    holder.autocommit = True
    try:
        holder.cursor().execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        started = time.monotonic()

        result = pg_project.run("--lock-timeout", "1", "migrate", url=url)

        assert time.monotonic() - started >= 1
        assert result.exit_code == 5, result.output
        assert "error: gave up after 1 s waiting for the migration lock on postgresql://" in result.stderr
    finally:
        holder.close()
    assert pg_project.version() == set()
    assert pg_project.run("migrate", url=url).exit_code == 0


@pytest.mark.parametrize("value", ["abc", "0"])
def test_a_connect_timeout_that_is_not_a_number_of_seconds_is_named(
    sqlite_project: Project, value: str
) -> None:
    for command in ("migrate", "migrate:status"):
        result = sqlite_project.run(command, url=f"mysql://app@127.0.0.1:1/app?connect_timeout={value}")
        assert result.exit_code == 3, result.output
        assert f"error: connect_timeout='{value}' in the database URL is not a whole number" in result.stderr
