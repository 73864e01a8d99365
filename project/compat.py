"""Every use of a private (or unstable) Alembic, SQLAlchemy, driver or typer detail lives here,
each covered by tests/test_compat.py so an upgrade that changes one fails loudly."""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

if TYPE_CHECKING:
    from pathlib import Path

    from alembic.config import Config
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


def x_arguments(config: Config) -> dict[str, str]:
    """`alembic -x key=value` arguments, readable before env.py runs (where Alembic builds its
    ScriptDirectory): the argparse namespace's `x`, as EnvironmentContext.get_x_argument reads it;
    none for a Config built in code."""
    given = getattr(config.cmd_opts, "x", None) or []
    return {key: value for key, _, value in (argument.partition("=") for argument in given)}


def typer_runtime_param_types() -> tuple[Any, Any]:
    """typer's parameter coercion (RuntimeParam, build_runtime_param), which `lighten` replaces
    where no pydantic adapter is needed."""
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


def type_affinity_name(type_: Any) -> str:
    """The generic type a column type belongs to (SQLAlchemy's `_type_affinity`): `String` for
    VARCHAR(100) and Text alike, so a rename of the same shape is recognised."""
    return str(type_._type_affinity.__name__)


def reverse_of(operation: Any) -> Any:
    """The operation an autogenerated drop undoes (Alembic keeps it as `_reverse`), or None."""
    return getattr(operation, "_reverse", None)


# Typer's parameter coercion without importing pydantic for values that need no conversion.
# Typer (0.2x) builds a pydantic TypeAdapter for every parameter it processes, even one left at
# its default: importing pydantic alone costs 0.15-0.35 s on every command. An absent value stays
# absent and a text or bool value stays what it is, so those skip it; anything else
# (`--lock-timeout 5`, with its bounds) still goes through typer's own coercion. With a typer
# whose internals differ, nothing is changed.

NONE_TYPE = type(None)


def _text(annotation: Any) -> bool:
    """`str` or `str | None`."""
    if annotation is str:
        return True
    union = get_origin(annotation) in (Union, types.UnionType)
    return union and set(get_args(annotation)) == {str, NONE_TYPE}


def _text_list(annotation: Any) -> bool:
    """`list[str]` or `list[str] | None`."""
    if get_origin(annotation) in (Union, types.UnionType):
        options = [arg for arg in get_args(annotation) if arg is not NONE_TYPE]
        annotation = options[0] if len(options) == 1 else None
    return get_origin(annotation) is list and get_args(annotation) == (str,)


def _light_runtime_param(descriptor: Any) -> Any:
    RuntimeParam, build_runtime_param = typer_runtime_param_types()

    built: list[Any] = []

    def typer_runtime_param() -> Any:
        if not built:
            built.append(build_runtime_param(descriptor))
        return built[0]

    class LightRuntimeParam(RuntimeParam):  # type: ignore[misc, valid-type]
        """Absent, text and bool values as they are; the rest through typer's pydantic adapter."""

        def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
            if value is None:
                return super().coerce(value, param=param, ctx=ctx)  # () or None, no adapter
            if (_text(self.annotation) and isinstance(value, str)) or (
                self.annotation is bool and isinstance(value, bool)
            ):
                return value
            if (
                _text_list(self.annotation)
                and isinstance(value, tuple | list)
                and all(isinstance(item, str) for item in value)
            ):
                return list(value)
            return typer_runtime_param().coerce(value, param=param, ctx=ctx)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            return typer_runtime_param()._coerce_value(value, param=param, ctx=ctx)

    return LightRuntimeParam(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation)


def lighten(params: list[Any]) -> list[Any]:
    """Give each typer parameter that has no coercion yet the light one; returns `params`."""
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", False) is not None:
            continue
        if getattr(descriptor, "file_annotation", None) is None:
            try:
                param._runtime_param = _light_runtime_param(descriptor)
            except (ImportError, TypeError, AttributeError):
                break
    return params
