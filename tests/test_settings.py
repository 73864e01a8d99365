"""Settings resolution and URL handling: option > DATABASE_URL > .env > [tool.manage] > default."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import USERS_MODEL, Project, fresh_database, make_project
from helpers import create_table_revision

from project.settings import resolve_settings


def _write_pyproject(root: Path, url: str) -> None:
    (root / "pyproject.toml").write_text(f'[tool.manage]\ndatabase_url = "{url}"\n')


def test_precedence_of_every_source(tmp_path: Path) -> None:
    root = tmp_path
    _write_pyproject(root, "sqlite:///from_pyproject.sqlite3")
    assert resolve_settings(root=root, environ={}).database_url.endswith("from_pyproject.sqlite3")
    (root / ".env").write_text('# comment\nexport DATABASE_URL="sqlite:///from_dotenv.sqlite3"\n')
    assert resolve_settings(root=root, environ={}).database_url.endswith("from_dotenv.sqlite3")
    env = {"DATABASE_URL": "sqlite:///from_env.sqlite3"}
    assert resolve_settings(root=root, environ=env).database_url.endswith("from_env.sqlite3")
    chosen = resolve_settings(database_url="sqlite:///from_option.sqlite3", root=root, environ=env)
    assert chosen.database_url.endswith("from_option.sqlite3")
    assert chosen.database_url_source == "--database-url"


def test_default_is_an_sqlite_file_in_the_project_root(sqlite_project: Project) -> None:
    sqlite_project.write_model("users.py", USERS_MODEL)
    sqlite_project.make("create users")
    result = sqlite_project.runner.invoke(
        __import__("project.cli", fromlist=["app"]).app, ["migrate"], env={"NO_COLOR": "1"}
    )
    assert result.exit_code == 0, result.output
    assert "sqlite:///database.sqlite3" in result.stdout
    assert (sqlite_project.root / "database.sqlite3").is_file()


def test_status_names_the_database_like_migrate_does(sqlite_project: Project) -> None:
    """The status fast path redacts URLs without SQLAlchemy; it must not mangle them."""
    import json

    from project.cli import app

    sqlite_project.write_model("users.py", USERS_MODEL)
    sqlite_project.make("create users")
    env = {"NO_COLOR": "1", "DATABASE_URL": "sqlite:///relative.sqlite3"}
    migrated = sqlite_project.runner.invoke(app, ["migrate"], env=env)
    assert "on sqlite:///relative.sqlite3 " in migrated.stdout
    status = sqlite_project.runner.invoke(app, ["migrate:status", "--json"], env=env)
    assert json.loads(status.stdout)["database"] == "sqlite:///relative.sqlite3"


def test_database_url_from_environment_and_dotenv_reach_the_cli(
    sqlite_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from project.cli import app

    sqlite_project.write_model("users.py", USERS_MODEL)
    sqlite_project.make("create users")
    (sqlite_project.root / ".env").write_text("DATABASE_URL=sqlite:///dotenv.sqlite3\n")
    result = sqlite_project.runner.invoke(app, ["migrate"], env={"NO_COLOR": "1"})
    assert "sqlite:///dotenv.sqlite3" in result.stdout
    monkeypatch.setenv("DATABASE_URL", "sqlite:///environ.sqlite3")
    result = sqlite_project.runner.invoke(app, ["migrate"], env={"NO_COLOR": "1"})
    assert "sqlite:///environ.sqlite3" in result.stdout
    assert (sqlite_project.root / "environ.sqlite3").is_file()


def test_postgres_scheme_works_and_password_is_never_shown(sqlite_project: Project, tmp_path: Path) -> None:
    database = fresh_database("postgresql", tmp_path)
    url = next(database)
    try:
        with_password = url.replace("postgresql+psycopg2://postgres@", "postgres://postgres:hunter2@")
        sqlite_project.write_model("users.py", USERS_MODEL)
        sqlite_project.make("create users", "--empty")

        result = sqlite_project.run("migrate", url=with_password)

        assert result.exit_code == 0, result.output
        assert "postgresql://postgres:***@127.0.0.1" in result.stdout
        assert "hunter2" not in result.output
        status = sqlite_project.run("migrate:status", url=with_password)
        assert "hunter2" not in status.output
    finally:
        database.close()


@pytest.mark.parametrize(
    ("url", "code", "message"),
    [
        (
            "postgres://app:s3cr3tpw@127.0.0.1:1/app",
            4,
            "cannot connect to postgresql://app:***@127.0.0.1:1/app",
        ),
        ("nosuchdb://app:s3cr3tpw@host/db", 3, "unknown database scheme"),
        ("not a url at all s3cr3tpw", 3, "malformed database URL"),
        ("sqlite:////nonexistent/dir/s3cr3tpw.sqlite3", 4, "does not exist"),
    ],
)
def test_bad_urls_give_one_line_and_an_exit_code(
    sqlite_project: Project, url: str, code: int, message: str
) -> None:
    sqlite_project.write_model("users.py", USERS_MODEL)
    result = sqlite_project.run("migrate", url=url)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    if "sqlite" not in url:
        assert "s3cr3tpw" not in result.output
    traced = sqlite_project.run("--traceback", "migrate", url=url)
    assert "Traceback" in traced.stderr
    if "sqlite" not in url:
        assert "s3cr3tpw" not in traced.output


def test_global_options_may_follow_the_command(sqlite_project: Project) -> None:
    from project.cli import app

    result = sqlite_project.runner.invoke(
        app, ["migrate:status", "--database-url", "postgres://u:pw123456@127.0.0.1:1/x"], env={}
    )
    assert result.exit_code == 4
    assert "pw123456" not in result.output


def test_mysql_and_mariadb_schemes_use_pymysql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for url in fresh_database("mariadb", tmp_path):
        project = make_project(tmp_path, url, monkeypatch)
        create_table_revision(project.migrations, 1, "alpha", None)
        plain = sa.make_url(url).set(drivername="mysql").render_as_string(hide_password=False)
        for scheme in ("mysql", "mariadb"):
            result = project.run("migrate:status", url=plain.replace("mysql://", f"{scheme}://", 1))
            assert result.exit_code == 0, result.output
            assert "0 ran, 1 pending." in result.stdout
        migrated = project.run("migrate", url=plain.replace("mysql://", "mariadb://", 1))
        assert migrated.exit_code == 0, migrated.output
        assert (
            f"Running migrations on mariadb://root@127.0.0.1:3306/{sa.make_url(url).database}"
            in migrated.stdout
        )
        assert "alpha" in project.tables()
