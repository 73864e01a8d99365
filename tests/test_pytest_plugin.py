"""The pytest plugin (manage_migrations.testing): its fixtures and `pytest --migrations`, run by a real pytest
in a throwaway user project (own rootdir and pyproject.toml), on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import BASE_MODULE, PG_ADMIN_URL, _admin_engine
from helpers import write_revision

PYPROJECT = """
[tool.manage]
models = ["models"]
migrations = "migrations"

[tool.pytest.ini_options]
addopts = "-p no:pytest_alembic -p no:cacheprovider"
"""
USERS = """
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(200), index=True)
"""
ADD_EMAIL_DOWNGRADE = """
op.drop_index(op.f("ix_users_email"), table_name="users")
with op.batch_alter_table("users") as batch:
    batch.drop_column("email")
"""
ISOLATION_TESTS = """
import os
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.users import User


def test_a_commit_through_the_session(manage_session, manage_database_url):
    manage_session.add(User(name="ada"))
    manage_session.commit()
    assert manage_session.scalar(select(func.count()).select_from(User)) == 1
    record = Path(os.environ["PLUGIN_RECORD"]) / os.environ.get("PYTEST_XDIST_WORKER", "main")
    record.write_text(manage_database_url)


def test_b_sees_nothing_of_it(manage_session):
    assert manage_session.scalar(select(func.count()).select_from(User)) == 0


def test_c_own_session_commits(manage_connection):
    with Session(bind=manage_connection, join_transaction_mode="create_savepoint") as session:
        session.add(User(name="bob"))
        session.commit()


def test_d_sees_nothing_of_that_either(manage_connection):
    assert manage_connection.scalar(select(func.count()).select_from(User)) == 0
"""
OTHER_WORKER_TEST = """
import os
from pathlib import Path


def test_records_its_database(manage_database_url):
    record = Path(os.environ["PLUGIN_RECORD"]) / os.environ.get("PYTEST_XDIST_WORKER", "main")
    record.write_text(manage_database_url)
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest) -> str | None:
    """None: the plugin's default (temporary SQLite files); else the admin URL given to --manage-db."""
    if request.param == "sqlite":
        return None
    _admin_engine(PG_ADMIN_URL, "postgresql").dispose()  # skips (fails under CI) without a server
    return PG_ADMIN_URL


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def user_project(tmp_path: Path, *, forget_drop: bool = False, extra_model: str = "") -> Path:
    """models/ with a users table; migrations: create users, then add users.email (indexed)."""
    root = tmp_path / "userapp"
    _write(root / "pyproject.toml", PYPROJECT)
    _write(root / "models" / "__init__.py", "")
    _write(root / "models" / "base.py", BASE_MODULE)
    _write(root / "models" / "users.py", USERS + textwrap.indent(extra_model, "    "))
    migrations = root / "migrations"
    migrations.mkdir()
    write_revision(
        migrations,
        "2026_01_01_000001",
        "create_users_table",
        "rev0001",
        None,
        upgrade="""
        op.create_table(
            "users",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        )
        """,
        downgrade='op.drop_table("users")',
    )
    write_revision(
        migrations,
        "2026_01_01_000002",
        "add_email_to_users",
        "rev0002",
        "rev0001",
        upgrade="""
        op.add_column("users", sa.Column("email", sa.String(length=200), nullable=True))
        op.create_index(op.f("ix_users_email"), "users", ["email"], unique=False)
        """,
        downgrade=ADD_EMAIL_DOWNGRADE.split("\n")[1] if forget_drop else ADD_EMAIL_DOWNGRADE,
    )
    return root


def run_pytest(root: Path, *args: str, server: str | None = None) -> tuple[int, str]:
    """A real pytest in the user project: the plugin comes from the entry point, not a conftest."""
    record = root / "record"
    record.mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "APP_ENV")}
    env.pop("TEST_DATABASE_URL", None)
    env |= {"PLUGIN_RECORD": str(record), "COLUMNS": "200", "NO_COLOR": "1"}
    server_args = ("--manage-db", server) if server else ()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfEs", *server_args, *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.returncode, result.stdout + result.stderr


def _outcomes(output: str) -> dict[str, str]:
    """Built-in test name -> PASSED / FAILED / SKIPPED, from -rfEs and -v style lines."""
    found = {}
    for status, name in re.findall(r"(PASSED|FAILED|SKIPPED|ERROR)\b.*?(test_[a-z_]+)", output):
        found.setdefault(name, status)
    return found


def _test_databases() -> set[str]:
    engine = _admin_engine(PG_ADMIN_URL, "postgresql")
    try:
        with engine.connect() as connection:
            query = sa.text("SELECT datname FROM pg_database WHERE starts_with(datname, :prefix)")
            rows = connection.execute(query, {"prefix": "manage_test_"})
            return {row[0] for row in rows}
    finally:
        engine.dispose()


def test_a_passing_project_and_rolled_back_fixtures(tmp_path: Path, server: str | None) -> None:
    root = user_project(tmp_path)
    _write(root / "tests" / "test_isolation.py", ISOLATION_TESTS)
    _write(root / "tests" / "test_other_worker.py", OTHER_WORKER_TEST)
    before = _test_databases() if server else set()

    # Every worker runs every test (in file order): each needs a database of its own.
    code, output = run_pytest(root, "--migrations", "-vv", "-n", "2", "--dist", "each", server=server)

    assert code == 0, output
    assert "20 passed" in output, output
    for name in ("single_head", "upgrade", "models_match_migrations", "stairway", "downgrade_to_base"):
        assert re.search(rf"PASSED migrations::test_{name}\b", output), output
    urls = {path.name: path.read_text() for path in (root / "record").iterdir()}
    assert set(urls) == {"gw0", "gw1"} and len(set(urls.values())) == 2, urls
    backend = "postgresql" if server else "sqlite"
    assert all(sa.make_url(url).get_backend_name() == backend for url in urls.values()), urls
    if server:
        assert _test_databases() == before  # every test database was dropped
    else:
        assert not any(Path(sa.make_url(url).database or "").exists() for url in urls.values())


def test_a_downgrade_that_forgets_a_column_fails_the_stairway(tmp_path: Path, server: str | None) -> None:
    root = user_project(tmp_path, forget_drop=True)

    code, output = run_pytest(root, "--migrations", server=server)

    assert code == 1, output
    outcomes = _outcomes(output)
    assert outcomes["test_stairway"] == "FAILED" and outcomes["test_downgrade_to_base"] == "FAILED", output
    assert "test_upgrade" not in outcomes and "test_single_head" not in outcomes, output
    assert re.search(
        r"2026_01_01_000002_add_email_to_users: its downgrade does not undo its upgrade:\n"
        r"\s+\+ table users: columns \('email', 'VARCHAR\(200\)', True, None\) is left behind",
        output,
    ), output
    assert "2026_01_01_000002_add_email_to_users: rolled back on the way from head to base" in output
    assert "Traceback" not in output


def test_drift_between_models_and_migrations_fails(tmp_path: Path) -> None:
    root = user_project(tmp_path, extra_model="nickname: Mapped[str | None] = mapped_column(String(50))\n")

    code, output = run_pytest(root, "--migrations", "-k", "models_match or stairway")

    assert code == 1, output
    assert _outcomes(output) == {"test_models_match_migrations": "FAILED"}, output
    assert "the models do not match what the migrations build (head: 2026_01_01_000002_add_email" in output
    assert re.search(r"\n\s+\+ .*users\.nickname", output), output


def test_two_heads_fail_naming_both(tmp_path: Path) -> None:
    root = user_project(tmp_path)
    write_revision(
        root / "migrations",
        "2026_01_01_000003",
        "create_extras_table",
        "rev0003",
        "rev0001",
        upgrade='op.create_table("extras", sa.Column("id", sa.Integer, primary_key=True))',
        downgrade='op.drop_table("extras")',
    )

    code, output = run_pytest(root, "--migrations")

    assert code == 1, output
    outcomes = _outcomes(output)
    assert outcomes.pop("test_single_head") == "FAILED", output
    assert outcomes == {}, output  # upgrade, stairway and downgrade to base pass on both branches
    assert "1 failed, 3 passed, 1 skipped" in output, output
    assert "models are compared with a single head only (see test_single_head)" in output, output
    assert (
        "the migration history has 2 heads: 2026_01_01_000002_add_email_to_users, "
        "2026_01_01_000003_create_extras_table" in output
    )


def test_a_project_that_does_not_use_the_plugin_collects_as_before(tmp_path: Path) -> None:
    root = tmp_path / "other"
    _write(root / "pyproject.toml", '[tool.pytest.ini_options]\naddopts = "-p no:pytest_alembic"\n')
    _write(
        root / "test_plain.py",
        "import sys\n\ndef test_plain():\n    assert 'sqlalchemy' not in sys.modules\n",
    )

    code, output = run_pytest(root)
    assert code == 0 and "1 passed" in output, output
    code, output = run_pytest(root, "--fixtures")
    assert code == 0 and "manage_session" in output, output


def test_an_enum_type_left_behind_on_postgresql_fails_naming_the_migration(tmp_path: Path) -> None:
    root = user_project(tmp_path)
    write_revision(
        root / "migrations",
        "2026_01_01_000003",
        "create_moods_table",
        "rev0003",
        "rev0002",
        upgrade="""
        op.create_table(
            "moods",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("mood", sa.Enum("happy", "sad", name="mood")),
        )
        """,
        downgrade='op.drop_table("moods")',  # PostgreSQL keeps the type the table created
    )
    _admin_engine(PG_ADMIN_URL, "postgresql").dispose()

    code, output = run_pytest(root, "--migrations", "-k", "stairway", server=PG_ADMIN_URL)

    assert code == 1, output
    assert (
        "2026_01_01_000003_create_moods_table: its downgrade does not undo its upgrade:\n"
        "    + enum type mood is left behind" in output
    ), output
