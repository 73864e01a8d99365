"""Every use of a private (or unstable) Alembic, SQLAlchemy, driver or typer detail lives here,
each covered by tests/test_compat.py so an upgrade that changes one fails loudly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection, Transaction
    from typer._click.core import Context as ClickContext  # typer vendors click privately

    __all__ = ["ClickContext"]


def migration_context(connection: Connection) -> MigrationContext:
    """A MigrationContext on our connection, without an EnvironmentContext or env.py run."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection=connection)


@contextmanager
def operations_bound(context: MigrationContext) -> Iterator[None]:
    """`from alembic import op` in the migration files talks to this context."""
    from alembic.operations import Operations

    with Operations.context(context):
        yield


def bind_transaction(context: MigrationContext, transaction: Transaction) -> None:
    """autocommit_block() commits `context._transaction` (Alembic asserts it is set) and binds a
    new one after the block: the executor owns the transaction, so it hands it over here."""
    context._transaction = transaction  # type: ignore[assignment]


def bound_transaction(context: MigrationContext) -> Any:
    return context._transaction


class Savepoint:
    """SAVEPOINT / RELEASE through the driver's own cursor: a thousand pairs cost a third of a
    second through SQLAlchemy's nested-transaction objects, which the executor does not need (the
    outer transaction is still SQLAlchemy's)."""

    NAME = "manage_migration"

    def __init__(self, connection: Connection) -> None:
        self.cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def execute(self, statement: str) -> None:
        self.cursor.execute(statement)

    def begin(self) -> None:
        self.cursor.execute(f"SAVEPOINT {self.NAME}")

    def release(self) -> None:
        self.cursor.execute(f"RELEASE SAVEPOINT {self.NAME}")

    def rollback(self) -> None:
        self.cursor.execute(f"ROLLBACK TO SAVEPOINT {self.NAME}")
        self.cursor.execute(f"RELEASE SAVEPOINT {self.NAME}")


def describe_error(exc: BaseException) -> str:
    """One line for a failure raised inside a migration (DBAPI errors without their SQL dump)."""
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip()
    first_line = text.splitlines()[0] if text else ""
    if original is not None:
        return f"{type(original).__name__}: {first_line}"
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


def disable_pymysql_read_timeout(dbapi_connection: Any) -> None:
    """Connected: long migrations must not time out. PyMySQL reapplies this on the next read."""
    dbapi_connection._read_timeout = None


def offline_context(dialect: str, output: Any) -> MigrationContext:
    """Alembic's offline (`--sql`) mode for one dialect, writing statements to `output`."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(
        dialect_name=dialect, opts={"as_sql": True, "output_buffer": output, "literal_binds": True}
    )


def without_autocommit_blocks(context: MigrationContext) -> None:
    """--pretend runs everything in one transaction it rolls back: an autocommit_block() there
    must not commit (PostgreSQL accepts ALTER TYPE ... ADD VALUE inside a transaction)."""
    context.autocommit_block = nullcontext  # type: ignore[method-assign, assignment]


def planned_steps(context: MigrationContext) -> Any:
    """The function a plain `alembic` run uses to pick its steps (None if Alembic changed)."""
    return getattr(context, "_migrations_fn", None)


def replace_planned_steps(context: MigrationContext, function: Any) -> bool:
    """Let the environment see (and refuse) the steps before any runs; False if it cannot."""
    if not hasattr(context, "_migrations_fn"):
        return False
    context._migrations_fn = function
    return True


def typer_runtime_param() -> tuple[Any, Any]:
    """typer's parameter coercion (RuntimeParam, build_runtime_param), which project.coercion
    replaces where no pydantic adapter is needed."""
    from typer._coercion import RuntimeParam, build_runtime_param

    return RuntimeParam, build_runtime_param


def copy_column(column: Any) -> Any:
    """A copy of a Column (SQLAlchemy's `_copy`, used by Alembic itself) to change its type."""
    return column._copy()


def write_revisions_into(script: ScriptDirectory, directory: Path) -> None:
    """New revision files of `script` are written into `directory` under the names Alembic
    chooses (`ScriptDirectory._rev_path` decides where generate_revision writes)."""
    choose = script._rev_path

    def rev_path(path: Any, rev_id: str, message: str | None, create_date: Any) -> Path:
        return directory / choose(path, rev_id, message, create_date).name

    script._rev_path = rev_path  # type: ignore[method-assign]


def sqlite_reflected_type(dialect: Any, declared: str) -> Any:
    """The type SQLite's reflection gives a column declared `declared` (its affinity rules)."""
    return dialect._resolve_type_affinity(declared)
