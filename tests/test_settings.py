"""Settings resolution and URL handling: option > DATABASE_URL > .env > [tool.manage] > default."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import USERS_MODEL, Project, fresh_database, make_project
from helpers import create_table_revision

from manage_migrations.settings import resolve_settings


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
        __import__("manage_migrations.cli", fromlist=["app"]).app, ["migrate"], env={"NO_COLOR": "1"}
    )
    assert result.exit_code == 0, result.output
    assert "sqlite:///database.sqlite3" in result.stdout
    assert (sqlite_project.root / "database.sqlite3").is_file()


def test_status_names_the_database_like_migrate_does(sqlite_project: Project) -> None:
    """The status fast path redacts URLs without SQLAlchemy; it must not mangle them."""
    import json

    from manage_migrations.cli import app

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
    from manage_migrations.cli import app

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
    from manage_migrations.cli import app

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


def _status_json(project: Project, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """migrate:status --json with the URL from the project's own settings (no --database-url)."""
    from manage_migrations.cli import app

    result = project.runner.invoke(app, ["migrate:status", "--json"], env={"NO_COLOR": "1", **(env or {})})
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("dotenv", "database"),
    [
        ("DATABASE_URL=sqlite:///plain.sqlite3   # the local one\n", "plain.sqlite3"),
        ('DATABASE_URL="sqlite:///hash#1.sqlite3"   # a comment after quotes\n', "hash#1.sqlite3"),
        ("export DATABASE_URL='sqlite:///single #2.sqlite3'\n", "single #2.sqlite3"),
        ('DATABASE_URL="sqlite:///es\\"caped\\\\.sqlite3"\n', 'es"caped\\.sqlite3'),
        ("DATABASE_URL = sqlite:///spaced.sqlite3\n", "spaced.sqlite3"),
        ("# DATABASE_URL=sqlite:///commented.sqlite3\nDATABASE_URL=sqlite:///real.sqlite3\n", "real.sqlite3"),
        ('DATABASE_URL="sqlite:///multi\nline.sqlite3"\n', "multi\nline.sqlite3"),
        ("NAME=interpolated\nDATABASE_URL=sqlite:///${NAME}.sqlite3\n", "interpolated.sqlite3"),
        ("DATABASE_URL=sqlite:///${NOT_SET:-fallback}.sqlite3\n", "fallback.sqlite3"),
    ],
)
def test_dotenv_is_read_as_python_dotenv_reads_it(
    sqlite_project: Project, dotenv: str, database: str
) -> None:
    import json

    (sqlite_project.root / ".env").write_text(dotenv, encoding="utf-8")

    code, stdout, stderr = _status_json(sqlite_project)

    assert code == 0, stderr
    assert json.loads(stdout)["database"] == f"sqlite:///{database}"


@pytest.mark.parametrize(
    "source",
    [
        (".env", "APP_ENV=production   # never change this\n"),
        (".env", "APP_ENV=Production\n"),
        (".env", "export APP_ENV='PRODUCTION'\n"),
        ("environ", "Production"),
        ("pyproject.toml", '[tool.manage]\nenvironment = "Production"\n'),
    ],
)
def test_production_is_recognised_whatever_its_case_or_comment(
    sqlite_project: Project, monkeypatch: pytest.MonkeyPatch, source: tuple[str, str]
) -> None:
    first = create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    assert sqlite_project.run("migrate").exit_code == 0
    where, text = source
    if where == "environ":
        monkeypatch.setenv("APP_ENV", text)
    else:
        (sqlite_project.root / where).write_text(text, encoding="utf-8")

    refused = sqlite_project.run("migrate:rollback")

    assert refused.exit_code == 7, refused.output
    assert "in the production environment" in refused.stderr
    assert sqlite_project.version() == {first}
    assert "alpha" in sqlite_project.tables()


def test_a_database_recorded_as_production_in_another_case_stays_guarded(
    sqlite_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    monkeypatch.setenv("APP_ENV", "Production")
    assert sqlite_project.run("migrate").exit_code == 0
    monkeypatch.setenv("APP_ENV", "local")
    second = create_table_revision(sqlite_project.migrations, 2, "beta", first)
    assert sqlite_project.run("migrate").exit_code == 0  # must not overwrite the production mark

    refused = sqlite_project.run("migrate:rollback")

    assert refused.exit_code == 7, refused.output
    assert "on a database last migrated in production" in refused.stderr
    assert sqlite_project.version() == {second}


@pytest.mark.parametrize(
    ("table", "message", "hint"),
    [
        (
            'database-url = "postgresql://app@127.0.0.1/app"',
            "unknown key 'database-url' in [tool.manage]",
            "did you mean database_url?",
        ),
        ('exclude_table = ["legacy"]', "unknown key 'exclude_table'", "did you mean exclude_tables?"),
        ("lock-timeout = 5", "unknown key 'lock-timeout'", "did you mean lock_timeout?"),
        ("colour = true", "unknown key 'colour'", "known keys: database_url, models, migrations"),
        # [tool.manage.tenants] is a known sub-table now: a singular one is a typo of it.
        (
            "[tool.manage.tenant]\nmain = 'sqlite:///x.sqlite3'",
            "unknown key 'tenant'",
            "did you mean tenants?",
        ),
    ],
)
def test_unknown_keys_in_tool_manage_are_refused(
    sqlite_project: Project, table: str, message: str, hint: str
) -> None:
    (sqlite_project.root / "pyproject.toml").write_text(f"[tool.manage]\n{table}\n", encoding="utf-8")
    create_table_revision(sqlite_project.migrations, 1, "alpha", None)

    from manage_migrations.cli import app

    for command in ("migrate", "migrate:status"):
        result = sqlite_project.runner.invoke(app, [command], env={"NO_COLOR": "1"})
        assert result.exit_code == 3, result.output
        assert message in result.stderr
        assert f"hint: {hint}" in result.stderr
        assert "Traceback" not in result.output
    assert sqlite_project.tables() == set()
    assert not (sqlite_project.root / "database.sqlite3").exists()


def test_a_registered_sub_table_is_accepted(sqlite_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    from manage_migrations import settings

    (sqlite_project.root / "pyproject.toml").write_text(
        "[tool.manage]\nmodels = ['models']\n\n[tool.manage.extras]\nmain = 'sqlite:///x.sqlite3'\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(settings, "TOOL_TABLES", (*settings.TOOL_TABLES, "extras"))

    code, _stdout, stderr = _status_json(sqlite_project)

    assert code == 0, stderr


@pytest.mark.parametrize("value", ["inf", "-inf", "1e12", "nan", "86400.5", "-1"])
def test_lock_timeout_option_outside_its_range_is_a_usage_error(sqlite_project: Project, value: str) -> None:
    first = create_table_revision(sqlite_project.migrations, 1, "alpha", None)

    result = sqlite_project.run("migrate", "--lock-timeout", value)

    assert result.exit_code == 2, result.output
    assert "error: --lock-timeout must be a number of seconds from 0 to 86400 (one day)" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.output
    assert sqlite_project.version() == set()
    assert sqlite_project.run("migrate", "--lock-timeout", "86400").exit_code == 0
    assert sqlite_project.version() == {first}


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e12", "86401", "-0.5", '"soon"', "true"])
def test_lock_timeout_in_pyproject_outside_its_range_is_a_config_error(
    sqlite_project: Project, value: str
) -> None:
    create_table_revision(sqlite_project.migrations, 1, "alpha", None)
    (sqlite_project.root / "pyproject.toml").write_text(f"[tool.manage]\nlock_timeout = {value}\n")

    result = sqlite_project.run("migrate")

    assert result.exit_code == 3, result.output
    assert "error: [tool.manage] lock_timeout must be a number of seconds from 0 to 86400" in result.stderr
    assert "Traceback" not in result.output
    assert sqlite_project.version() == set()
