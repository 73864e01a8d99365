"""Self-checks of every private library detail project/compat.py relies on: an upgrade of Alembic,
SQLAlchemy, PyMySQL or typer that changes one fails here, loudly, before it breaks a user."""

from __future__ import annotations

import io
from pathlib import Path

import pymysql
import pytest
import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext

from manage_migrations import compat


def sqlite_engine(tmp_path: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{tmp_path / 'compat.sqlite3'}")


def test_operations_bind_to_a_context_built_without_env_py(tmp_path: Path) -> None:
    from alembic import op

    engine = sqlite_engine(tmp_path)
    with engine.begin() as connection:
        context = compat.migration_context(connection)
        with compat.operations_bound(context):
            op.create_table("t", sa.Column("id", sa.Integer, primary_key=True))
        assert sa.inspect(connection).has_table("t")
    engine.dispose()


def test_migration_context_holds_its_transaction_where_autocommit_block_looks(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path)
    with engine.connect() as connection:
        context = compat.migration_context(connection)
        assert hasattr(context, "_transaction")
        transaction = connection.begin()
        compat.bind_transaction(context, transaction)
        assert compat.bound_transaction(context) is transaction
        with context.autocommit_block():
            pass  # commits the bound transaction and binds a new one afterwards
        assert compat.bound_transaction(context) is not transaction
        compat.bound_transaction(context).rollback()
    engine.dispose()


def test_savepoints_go_through_the_driver_cursor(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path)
    with engine.connect() as connection:
        connection.exec_driver_sql("BEGIN")
        savepoint = compat.Savepoint(connection)
        savepoint.begin()
        savepoint.rollback()
        savepoint.begin()
        savepoint.release()
    engine.dispose()


def test_offline_context_writes_sql_to_the_buffer() -> None:
    from alembic import op

    buffer = io.StringIO()
    context = compat.offline_context("postgresql", buffer)
    with compat.operations_bound(context):
        op.drop_table("t")
    assert "DROP TABLE t" in buffer.getvalue()


def test_pretend_turns_autocommit_blocks_off(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path)
    with engine.connect() as connection:
        context = compat.migration_context(connection)
        compat.without_autocommit_blocks(context)
        transaction = connection.begin()
        compat.bind_transaction(context, transaction)
        with context.autocommit_block():
            pass
        assert compat.bound_transaction(context) is transaction and transaction.is_active
        transaction.rollback()
    engine.dispose()


def test_plain_alembic_steps_function_is_where_the_downgrade_guard_looks(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"fn": lambda heads, ctx: []})
        assert compat.planned_steps(context) is not None
        assert compat.replace_planned_steps(context, lambda heads, ctx: [])
    engine.dispose()


def test_pymysql_keeps_its_read_timeout_where_we_clear_it() -> None:
    connection = pymysql.connections.Connection(defer_connect=True, read_timeout=5)
    assert connection._read_timeout == 5
    compat.disable_pymysql_read_timeout(connection)
    assert connection._read_timeout is None


def test_typer_still_has_the_coercion_we_lighten() -> None:
    runtime_param, build = compat.typer_runtime_param_types()
    assert callable(build)
    assert hasattr(runtime_param, "coerce")


def test_describe_error_uses_the_driver_message() -> None:
    error = sa.exc.OperationalError("SELECT 1", {}, Exception("no such table: x\nmore"))
    assert compat.describe_error(error) == "Exception: no such table: x"


@pytest.mark.parametrize("name", ["alembic", "sqlalchemy", "typer", "pymysql"])
def test_installed_versions_are_inside_the_ranges_pyproject_declares(name: str) -> None:
    """compat.py is checked against these ranges; a release outside them is untested."""
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement

    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    requirements = {
        Requirement(text).name.lower(): Requirement(text) for text in pyproject["project"]["dependencies"]
    }
    requirement = requirements[name]
    assert requirement.specifier, f"{name} has no version range"
    assert requirement.specifier.contains(version(name)), (name, version(name), str(requirement.specifier))


def test_type_affinity_groups_types_of_one_kind() -> None:
    assert compat.type_affinity_name(sa.String(100)) == compat.type_affinity_name(sa.Text())
    assert compat.type_affinity_name(sa.Integer()) != compat.type_affinity_name(sa.String())


def test_an_autogenerated_drop_remembers_what_it_undoes() -> None:
    from alembic.operations import ops

    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer), sa.UniqueConstraint("id", name="uq"))
    constraint = next(c for c in table.constraints if isinstance(c, sa.UniqueConstraint))
    drop = ops.DropConstraintOp.from_constraint(constraint)
    assert isinstance(compat.reverse_of(drop), ops.AddConstraintOp)


def test_a_column_copy_is_detached_from_its_table() -> None:
    column = sa.Table("t", sa.MetaData(), sa.Column("name", sa.String(10))).c.name
    copy = compat.copy_column(column)
    assert copy is not column and copy.name == "name" and copy.table is None


def test_sqlite_reflection_reads_types_back_by_affinity() -> None:
    from sqlalchemy.dialects import sqlite

    assert isinstance(
        compat.sqlite_reflected_type(sqlite.dialect(), "BINARY(16)"), sa.NUMERIC | sa.types.BINARY
    )


def test_new_revision_files_can_be_written_elsewhere(tmp_path: Path) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(compat.__file__).parent / "alembic_env"))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(tmp_path / "versions"))
    (tmp_path / "versions").mkdir()
    (tmp_path / "staging").mkdir()
    script = ScriptDirectory.from_config(config)
    compat.write_revisions_into(script, tmp_path / "staging")
    created = script.generate_revision("abc123", "x", refresh=True, head="base")
    assert created is not None and Path(created.path).parent == tmp_path / "staging"


def test_x_arguments_are_read_as_alembic_reads_them_before_any_env_py() -> None:
    from alembic.config import CommandLine, Config
    from alembic.runtime.environment import EnvironmentContext

    options = CommandLine().parser.parse_args(["-x", "database=analytics", "-x", "force=1", "current"])
    config = Config(cmd_opts=options)

    assert compat.x_arguments(config) == {"database": "analytics", "force": "1"}
    assert compat.x_arguments(config) == EnvironmentContext(config, None).get_x_argument(as_dictionary=True)  # type: ignore[arg-type]
    assert compat.x_arguments(Config()) == {}
