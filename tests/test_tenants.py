"""Tenants by PostgreSQL schema through the real CLI: create, make:migration --tenants, the
fan-out (one tenant failing, two runs at once, Ctrl-C and SIGTERM), status and rollback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import CLI_ENV, Project, fresh_database, make_project
from helpers import ALEMBIC_TABLE, MANAGE_PY, start_manage, wait_for, write_revision

TENANTS = ("acme", "globex", "initech")
TENANT_MODEL = """
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from models.base import NAMING_CONVENTION
from sqlalchemy import MetaData


class TenantBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Customer(TenantBase):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
"""


def configure_tenants(project: Project, tenants: tuple[str, ...] = TENANTS, extra: str = "") -> None:
    names = ", ".join(f'"{name}"' for name in tenants)
    (project.root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [tool.manage.tenants]
            mode = "schema"
            models = ["tenant_models"]
            tenants = [{names}]
            """
        )
        + extra,
        encoding="utf-8",
    )
    package = project.root / "tenant_models"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text(textwrap.dedent(TENANT_MODEL).lstrip(), encoding="utf-8")
    (project.migrations / "tenants").mkdir(exist_ok=True)


@pytest.fixture
def tenant_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    databases = fresh_database("postgresql", tmp_path)
    url = next(databases)
    project = make_project(tmp_path, url, monkeypatch)
    configure_tenants(project)
    yield project
    next(databases, None)


def create_schemas(project: Project, names: tuple[str, ...] = TENANTS) -> None:
    with project.engine().begin() as connection:
        for name in names:
            connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')


def in_schema(project: Project, schema: str, sql: str) -> list[tuple]:
    return project.query(sql.replace("{s}", f'"{schema}"'))


def tables_of(project: Project, schema: str) -> set[str]:
    engine = project.engine()
    try:
        return set(sa.inspect(engine).get_table_names(schema=schema))
    finally:
        engine.dispose()


def versions(project: Project, schema: str) -> set[str]:
    if "alembic_version" not in tables_of(project, schema):
        return set()
    return {row[0] for row in in_schema(project, schema, "SELECT version_num FROM {s}.alembic_version")}


def tenant_revision(
    project: Project, index: int, revision: str, down: str | None, upgrade: str, downgrade: str
) -> None:
    write_revision(
        project.migrations / "tenants",
        f"2026_01_01_{index:06d}",
        f"step_{index}",
        revision,
        down,
        upgrade,
        downgrade,
    )


def x_table_revision(project: Project) -> None:
    """t1: creates the table x."""
    tenant_revision(
        project,
        1,
        "t1",
        None,
        'op.create_table("x", sa.Column("id", sa.Integer, primary_key=True))',
        'op.drop_table("x")',
    )


def items_revisions(project: Project) -> None:
    """rev1 creates items(id, label NULL); rev2 makes label NOT NULL (fails where a label is NULL)."""
    tenant_revision(
        project,
        1,
        "t1",
        None,
        'op.create_table("items", sa.Column("id", sa.Integer, primary_key=True), '
        'sa.Column("label", sa.String(20)))',
        'op.drop_table("items")',
    )
    tenant_revision(
        project,
        2,
        "t2",
        "t1",
        'op.alter_column("items", "label", existing_type=sa.String(20), nullable=False)',
        'op.alter_column("items", "label", existing_type=sa.String(20), nullable=True)',
    )


def test_tenant_lifecycle_in_schemas(tenant_project: Project) -> None:
    project = tenant_project
    for name in TENANTS:
        created = project.run("tenants:create", name)
        assert created.exit_code == 0, created.output
        assert f"Created tenant {name}" in created.output
    again = project.run("tenants:create", "acme")
    assert again.exit_code == 0 and "Found existing tenant acme" in again.output

    generated = project.run("make:migration", "--tenants", "create customers")
    assert generated.exit_code == 0, generated.output
    files = list((project.migrations / "tenants").glob("*.py"))
    assert len(files) == 1 and "customers" in files[0].read_text()
    assert list(project.migrations.glob("*.py")) == []

    migrated = project.run("tenants:migrate")
    assert migrated.exit_code == 0, migrated.output
    assert "3 tenants: 3 migrated, 0 up to date" in migrated.output
    for name in TENANTS:
        assert {"customers", "alembic_version", "manage_migrations"} <= tables_of(project, name)
    assert tables_of(project, "public") == set()

    # A default-database model next to tenant models: each side only sees its own tables.
    project.write_model(
        "plans.py",
        """
        from sqlalchemy.orm import Mapped, mapped_column
        from models.base import Base

        class Plan(Base):
            __tablename__ = "plans"
            id: Mapped[int] = mapped_column(primary_key=True)
    """,
    )
    default_file = project.make("create plans")
    assert "plans" in default_file.read_text() and "customers" not in default_file.read_text()
    assert project.run("migrate").exit_code == 0
    assert "plans" in tables_of(project, "public")
    nothing = project.run("make:migration", "--tenants", "--tenant", "globex", "nothing")
    assert nothing.exit_code == 0 and "No changes" in nothing.output, nothing.output

    # A second tenant migration, applied to one tenant, then to the rest.
    model = project.root / "tenant_models" / "__init__.py"
    model.write_text(model.read_text() + "    email: Mapped[str | None] = mapped_column(String(200))\n")
    assert project.run("make:migration", "--tenants", "add email to customers").exit_code == 0
    one = project.run("tenants:migrate", "--tenant", "acme")
    assert one.exit_code == 0 and "1 tenant: 1 migrated" in one.output, one.output
    status = project.run("tenants:status", "--json")
    assert status.exit_code == 0, status.output
    pending = {entry["tenant"]: entry["pending"] for entry in json.loads(status.output)["tenants"]}
    assert pending == {"acme": 0, "globex": 1, "initech": 1}
    behind = project.run("tenants:status", "--pending")
    assert behind.exit_code == 1, behind.output
    listed = [line.split()[0] for line in behind.output.splitlines()[1:] if line.strip()]
    assert listed[:2] == ["globex", "initech"] and "acme" not in listed, behind.output

    rolled = project.run("tenants:rollback", "--tenant", "acme")
    assert rolled.exit_code == 0 and "1 tenant: 1 rolled back" in rolled.output, rolled.output
    email = (
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = '{s}' AND column_name = 'email'"
    )
    assert project.query(email.replace("{s}", "acme")) == []
    rest = project.run("tenants:migrate")
    assert rest.exit_code == 0 and "3 tenants: 3 migrated" in rest.output, rest.output
    assert all(project.query(email.replace("{s}", name)) for name in TENANTS)
    assert project.run("tenants:status", "--pending").exit_code == 0
    assert project.run("tenants:migrate").output.count("up to date") >= 3

    # migrate:fresh on the default database drops what it owns, never a tenant's schema.
    assert project.run("migrate:fresh", "--force").exit_code == 0
    assert all("customers" in tables_of(project, name) for name in TENANTS)


def test_a_tenant_whose_data_breaks_a_migration_fails_alone(tenant_project: Project) -> None:
    project = tenant_project
    create_schemas(project)
    items_revisions(project)
    (project.migrations / "tenants" / "2026_01_01_000002_step_2.py").rename(project.root / "held_back.py")
    assert project.run("tenants:migrate").exit_code == 0
    with project.engine().begin() as connection:
        connection.exec_driver_sql("INSERT INTO globex.items (label) VALUES (NULL)")
        connection.exec_driver_sql("INSERT INTO acme.items (label) VALUES ('fine')")
    (project.root / "held_back.py").rename(project.migrations / "tenants" / "2026_01_01_000002_step_2.py")

    failed = project.run("tenants:migrate", "--jobs", "2")
    assert failed.exit_code == 1, failed.output
    assert "3 tenants: 2 migrated, 0 up to date, 1 failed" in failed.output
    assert "globex:" in failed.output and "null" in failed.output.lower()
    assert versions(project, "acme") == versions(project, "initech") == {"t2"}
    assert versions(project, "globex") == {"t1"}
    nullable = (
        "SELECT is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'globex' AND column_name = 'label'"
    )
    assert project.query(nullable) == [("YES",)]

    with project.engine().begin() as connection:
        connection.exec_driver_sql("UPDATE globex.items SET label = 'fixed'")
    rerun = project.run("tenants:migrate")
    assert rerun.exit_code == 0 and "3 tenants: 1 migrated, 2 up to date" in rerun.output, rerun.output
    ledger = "SELECT revision FROM {s}.manage_migrations ORDER BY id"
    assert all(in_schema(project, name, ledger) == [("t1",), ("t2",)] for name in TENANTS)


def test_fail_fast_starts_no_tenant_after_a_failure(tenant_project: Project) -> None:
    project = tenant_project
    create_schemas(project, ("globex", "initech"))  # acme, listed first, has no schema
    x_table_revision(project)
    result = project.run("tenants:migrate", "--jobs", "1", "--fail-fast")
    assert result.exit_code == 1
    assert "acme: the schema acme does not exist" in result.output
    assert "tenants:create acme" in result.output
    assert "not started: 2 tenants (globex, initech)" in result.output
    assert versions(project, "globex") == set()

    status = project.run("tenants:status")
    assert status.exit_code == 1
    assert "unreadable" in status.output and "acme: the schema acme does not exist" in status.output


def test_unknown_tenant_is_a_usage_error(tenant_project: Project) -> None:
    result = tenant_tenant = tenant_project.run("tenants:migrate", "--tenant", "acme", "--tenant", "nope")
    assert result.exit_code == 2
    assert "unknown tenant: nope" in result.output and "acme, globex, initech" in result.output
    assert "Traceback" not in tenant_tenant.output


def _slow_revisions(project: Project, seconds: float) -> None:
    tenant_revision(
        project,
        1,
        "t1",
        None,
        'op.create_table("a", sa.Column("id", sa.Integer, primary_key=True))',
        'op.drop_table("a")',
    )
    tenant_revision(
        project,
        2,
        "t2",
        "t1",
        f"""
        op.create_table("b", sa.Column("id", sa.Integer, primary_key=True))
        import os, pathlib
        marker = os.environ.get("SLOW_MARKER")
        if marker:
            pathlib.Path(marker).write_text("x")
        op.execute("SELECT pg_sleep({seconds})")
        """,
        'op.drop_table("b")',
    )


def test_two_runs_at_once_migrate_each_tenant_once(tenant_project: Project, processes: list) -> None:
    project = tenant_project
    names = tuple(f"t{i}" for i in range(6))
    configure_tenants(project, names)
    create_schemas(project, names)
    _slow_revisions(project, 0.3)
    first = start_manage(processes, project, "tenants:migrate", "--jobs", "2")
    second = start_manage(processes, project, "tenants:migrate", "--jobs", "3")
    outputs = [process.communicate(timeout=120) for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    counts = [out for out, _ in outputs]
    migrated = sum(int(out.split("6 tenants: ")[1].split(" migrated")[0]) for out in counts)
    assert migrated == 6, counts
    ledger = "SELECT revision FROM {s}.manage_migrations ORDER BY id"
    assert all(in_schema(project, name, ledger) == [("t1",), ("t2",)] for name in names)


@pytest.mark.parametrize(("how", "jobs"), [("ctrl-c", "2"), ("sigterm", "2"), ("ctrl-c", "1")])
def test_an_interrupt_rolls_back_running_tenants_and_starts_no_new_one(
    tenant_project: Project, processes: list, tmp_path: Path, how: str, jobs: str
) -> None:
    project = tenant_project
    names = tuple(f"t{i}" for i in range(8))
    configure_tenants(project, names)
    create_schemas(project, names)
    _slow_revisions(project, 30)
    marker = tmp_path / "slow_started"
    process = start_manage(
        processes, project, "tenants:migrate", "--jobs", jobs, new_session=True, SLOW_MARKER=str(marker)
    )
    wait_for(marker, process, timeout=60)
    started = time.monotonic()
    if how == "ctrl-c":
        os.killpg(process.pid, signal.SIGINT)  # what a terminal does: the whole foreground group
    else:
        os.kill(process.pid, signal.SIGTERM)  # a deploy tool stopping the main process alone
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert time.monotonic() - started < 15, "the running pg_sleep(30) was not cancelled"
    assert "interrupted" in out and "not started" in err, out + err
    assert "Traceback" not in out + err
    at = {name: versions(project, name) for name in names}
    # Nobody is left at t2 (its pg_sleep never finished) and nothing of t2 stays behind.
    assert all(version <= {"t1"} for version in at.values()), at
    assert all("b" not in tables_of(project, name) for name in names)
    idle = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE position('pg_sleep(30)' in query) > 0 AND pid <> pg_backend_pid()"
    )
    assert project.query(idle) == [(0,)]

    _slow_revisions(project, 0)
    rerun = project.run("tenants:migrate")
    assert rerun.exit_code == 0, rerun.output
    assert all(versions(project, name) == {"t2"} for name in names)


def test_piped_output_has_a_line_per_tenant_and_a_summary(tenant_project: Project) -> None:
    project = tenant_project
    create_schemas(project)
    x_table_revision(project)
    first = project.run("tenants:migrate")
    lines = [line for line in first.output.splitlines() if line.strip()]
    for name in TENANTS:
        assert any(
            line.strip().startswith(name) and "1 migration applied" in line and line.endswith("DONE")
            for line in lines
        ), first.output
    second = project.run("tenants:migrate", "--jobs", "1")
    assert sum(line.endswith("up to date") for line in second.output.splitlines()) == 3, second.output
    assert "3 tenants: 0 migrated, 3 up to date in" in second.output


def test_a_terminal_gets_a_live_progress_line(tenant_project: Project) -> None:
    import pty
    import select

    project = tenant_project
    names = tuple(f"t{i}" for i in range(4))
    configure_tenants(project, names)
    create_schemas(project, names)
    _slow_revisions(project, 0.6)
    (project.root / "manage.py").write_text(MANAGE_PY)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "APP_ENV", "NO_COLOR")}
    env.update(COLUMNS="120", DATABASE_URL=project.url, TERM="xterm")
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "tenants:migrate", "--jobs", "2"],
        cwd=project.root,
        env=env,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    seen = b""
    try:
        while True:
            if select.select([primary], [], [], 60)[0]:
                try:
                    chunk = os.read(primary, 65536)
                except OSError:  # the other end closed: the process is done
                    break
                if not chunk:
                    break
                seen += chunk
            else:
                break
    finally:
        os.close(primary)
    assert process.wait(timeout=60) == 0, seen.decode()
    text = seen.decode()
    assert "/4 tenants" in text and "slowest running: t" in text, text
    assert "4 tenants: 4 migrated, 0 up to date" in text
    second = project.run("tenants:migrate")
    assert "4 tenants: 0 migrated, 4 up to date" in second.output


def test_tenant_models_on_the_default_base_are_refused(tenant_project: Project) -> None:
    """A tenant model on the default database's Base would put the tenant tables into the default
    database's migrations (and the default's tables into every tenant)."""
    project = tenant_project
    create_schemas(project, ("acme",))
    project.write_model(
        "plans.py",
        """
        from sqlalchemy.orm import Mapped, mapped_column
        from models.base import Base

        class Plan(Base):
            __tablename__ = "plans"
            id: Mapped[int] = mapped_column(primary_key=True)
        """,
    )
    (project.root / "tenant_models" / "__init__.py").write_text(
        textwrap.dedent(
            """
            from sqlalchemy.orm import Mapped, mapped_column
            from models.base import Base

            class Customer(Base):
                __tablename__ = "customers"
                id: Mapped[int] = mapped_column(primary_key=True)
            """
        ),
        encoding="utf-8",
    )
    for args in (("--tenants", "create customers"), ("create plans",)):
        result = project.run("make:migration", *args)
        assert result.exit_code == 3, result.output
        assert "share one MetaData" in result.output and "tenant_models" in result.output
        assert "models.base" in result.output or "models.plans" in result.output
    assert list(project.migrations.rglob("*.py")) == []


def test_a_new_tenant_is_built_from_the_tenant_dump_by_renaming_its_schema(tenant_project: Project) -> None:
    project = tenant_project
    create_schemas(project, ("acme",))
    items_revisions(project)
    assert project.run("tenants:migrate", "--tenant", "acme").exit_code == 0
    dumped = project.run("migrate:dump", "--tenants")
    assert dumped.exit_code == 0, dumped.output
    dump = project.migrations / "tenants" / "schema" / "postgresql-schema.sql"
    assert "CREATE SCHEMA manage_tenant_template" in dump.read_text()
    assert tables_of(project, "manage_tenant_template") == set()  # the scratch schema is gone
    # A third migration after the dump: tenants:create loads the dump, then runs only that one.
    tenant_revision(
        project,
        3,
        "t3",
        "t2",
        'op.add_column("items", sa.Column("price", sa.Integer))',
        'op.drop_column("items", "price")',
    )
    created = project.run("tenants:create", "globex")
    assert created.exit_code == 0, created.output
    assert "from postgresql-schema.sql" in created.output and "1 migration applied" in created.output
    assert versions(project, "globex") == {"t3"}
    ledger = "SELECT revision, batch FROM {s}.manage_migrations ORDER BY id"
    assert in_schema(project, "globex", ledger) == [("t1", 1), ("t2", 1), ("t3", 2)]
    assert {"items", "alembic_version", "manage_migrations"} <= tables_of(project, "globex")
    # The renamed schema's objects work: its serial and its NOT NULL column.
    with project.engine().begin() as connection:
        connection.exec_driver_sql("INSERT INTO globex.items (label, price) VALUES ('a', 1)")
    rolled = project.run("tenants:rollback", "--tenant", "globex")
    assert rolled.exit_code == 0 and versions(project, "globex") == {"t2"}, rolled.output
    again = project.run("tenants:create", "globex")
    assert again.exit_code == 0 and "Found existing tenant globex" in again.output


def test_destructive_tenant_migrations_in_production_need_force(
    tenant_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tenant_project
    create_schemas(project, ("acme", "globex"))
    items_revisions(project)
    assert project.run("tenants:migrate", "--tenant", "acme", "--tenant", "globex").exit_code == 0
    tenant_revision(project, 3, "t3", "t2", 'op.drop_table("items")', "pass")
    monkeypatch.setenv("APP_ENV", "production")
    refused = project.run("tenants:migrate", "--tenant", "acme", "--tenant", "globex")
    assert refused.exit_code == 1, refused.output
    assert refused.output.count("refused to run migrations that may destroy data") == 2
    assert "pass --force: tenants run side by side" in refused.output
    assert versions(project, "acme") == versions(project, "globex") == {"t2"}
    forced = project.run("tenants:migrate", "--tenant", "acme", "--tenant", "globex", "--force")
    assert forced.exit_code == 0, forced.output
    assert "items" not in tables_of(project, "acme")


def test_plain_alembic_reaches_a_tenant_with_x_tenant(tenant_project: Project) -> None:
    project = tenant_project
    pyproject = project.root / "pyproject.toml"
    pyproject.write_text(ALEMBIC_TABLE + pyproject.read_text(), encoding="utf-8")
    create_schemas(project, ("acme", "globex"))
    items_revisions(project)

    def alembic(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "APP_ENV")}
        env.update(CLI_ENV, DATABASE_URL=project.url)
        return subprocess.run(
            [sys.executable, "-m", "alembic", *args],
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    heads = alembic("-x", "tenant=acme", "heads")
    assert heads.returncode == 0 and heads.stdout.split() == ["t2", "(head)"], heads.stdout + heads.stderr
    upgraded = alembic("-x", "tenant=acme", "upgrade", "t1")
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert versions(project, "acme") == {"t1"} and versions(project, "globex") == set()
    assert tables_of(project, "public") == set()
    status = project.run("tenants:status", "--json")
    pending = {entry["tenant"]: entry.get("pending") for entry in json.loads(status.output)["tenants"]}
    assert pending == {"acme": 1, "globex": 2, "initech": None}, status.output
    current = alembic("-x", "tenant=acme", "current")
    assert current.returncode == 0 and "t1" in current.stdout, current.stdout + current.stderr
    # The ledger row plain alembic wrote is the tenant's: tenants:migrate goes on from there.
    assert project.run("tenants:migrate", "--tenant", "acme").exit_code == 0
    assert in_schema(project, "acme", "SELECT revision FROM {s}.manage_migrations ORDER BY id") == [
        ("t1",),
        ("t2",),
    ]
    unknown = alembic("-x", "tenant=nope", "upgrade", "head")
    assert unknown.returncode != 0 and "unknown tenant: nope" in unknown.stdout + unknown.stderr
    assert "Traceback" not in unknown.stdout + unknown.stderr


def test_create_without_a_name_creates_every_missing_tenant(tenant_project: Project) -> None:
    project = tenant_project
    create_schemas(project, ("globex",))
    items_revisions(project)
    created = project.run("tenants:create", "--jobs", "2")
    assert created.exit_code == 0, created.output
    assert "3 tenants: 3 migrated, 0 up to date" in created.output
    assert all(versions(project, name) == {"t2"} for name in TENANTS)
    again = project.run("tenants:create", "--tenant", "acme", "--tenant", "initech")
    assert again.exit_code == 0 and "2 tenants: 0 migrated, 2 up to date" in again.output, again.output
    unknown = project.run("tenants:create", "nope")
    assert unknown.exit_code == 2 and "unknown tenant: nope" in unknown.output


def test_a_tenant_migration_failing_outside_a_transaction_is_resolved_per_tenant(
    tenant_project: Project,
) -> None:
    project = tenant_project
    create_schemas(project, ("acme", "globex"))
    path = write_revision(
        project.migrations / "tenants",
        "2026_01_01_000001",
        "outside",
        "o1",
        None,
        """
        op.execute("CREATE TABLE IF NOT EXISTS half (id integer)")
        import os
        if os.path.exists("break_it"):
            raise RuntimeError("boom")
        """,
        'op.execute("DROP TABLE half")',
    )
    path.write_text(path.read_text().replace("depends_on = None", "depends_on = None\ntransactional = False"))
    (project.root / "break_it").write_text("x")
    failed = project.run("tenants:migrate", "--tenant", "acme", "--tenant", "globex")
    assert failed.exit_code == 1, failed.output
    assert "outside a transaction, so what it did stays" in failed.output
    assert "tenants:resolve o1 --tenant acme" in failed.output
    assert "tenants:resolve o1 --tenant globex" in failed.output
    assert "half" in tables_of(project, "acme")

    (project.root / "break_it").unlink()
    refused = project.run("tenants:migrate", "--tenant", "acme")
    assert refused.exit_code == 1 and "tenants:resolve o1 --tenant acme" in refused.output, refused.output
    status = project.run("tenants:status", "--json")
    failed_marks = {entry["tenant"]: entry.get("failed") for entry in json.loads(status.output)["tenants"]}
    assert failed_marks["acme"] == ["2026_01_01_000001_outside"], status.output

    needs_names = project.run("tenants:resolve", "o1")
    assert needs_names.exit_code == 2 and "--tenant" in needs_names.output
    resolved = project.run("tenants:resolve", "o1", "--tenant", "acme")
    assert resolved.exit_code == 0 and "no longer marked as failed" in resolved.output, resolved.output
    again = project.run("tenants:resolve", "o1", "--tenant", "acme")
    assert again.exit_code == 1 and "acme: no failed migration o1 is recorded" in again.output
    migrated = project.run("tenants:migrate", "--tenant", "acme")
    assert migrated.exit_code == 0 and versions(project, "acme") == {"o1"}, migrated.output
    assert versions(project, "globex") == set()  # still marked failed until someone looks at it
