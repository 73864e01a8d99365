"""The SQL a plan would run, changing nothing: inside a transaction that is rolled back where DDL
is transactional (so batch-mode SQLite shows its true statements), offline elsewhere."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manage_migrations import compat
from manage_migrations.core.events import StepDone
from manage_migrations.core.executor import TRANSACTIONAL_DDL, is_bookkeeping
from manage_migrations.core.graph import load_module
from manage_migrations.errors import OperationFailed

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from manage_migrations.core.planner import Plan, Step


def online(connection: Connection, plan: Plan, root: Path, on_step: Callable[[StepDone], None]) -> None:
    """Run the plan in a transaction that is rolled back, capturing each statement."""
    from sqlalchemy import event

    if connection.dialect.name not in TRANSACTIONAL_DDL:
        offline(connection.dialect.name, plan, root, on_step)
        return
    captured: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not is_bookkeeping(statement):
            text = statement.strip()
            captured.append(text + (f"  -- {parameters!r}" if parameters else ""))

    context = compat.migration_context(connection)
    compat.without_autocommit_blocks(context)
    event.listen(connection, "before_cursor_execute", capture)
    transaction = connection.begin()
    try:
        with compat.operations_bound(context):
            for step in plan.steps:
                _call(step, root, step.name)
                on_step(StepDone(step.revision, step.name, step.upgrade, 0.0, tuple(captured)))
                captured.clear()
    finally:
        transaction.rollback()
        event.remove(connection, "before_cursor_execute", capture)


def offline(dialect: str, plan: Plan, root: Path, on_step: Callable[[StepDone], None]) -> None:
    """Alembic's offline mode (`--sql`): statements rendered for the dialect, nothing connected."""
    for step in plan.steps:
        on_step(StepDone(step.revision, step.name, step.upgrade, 0.0, render(dialect, step, root)))


def render(dialect: str, step: Step, root: Path) -> tuple[str, ...]:
    buffer = _Statements()
    context = compat.offline_context(dialect, buffer)
    with compat.operations_bound(context):
        _call(step, root, step.name, offline=True)
    return tuple(buffer.statements)


def _call(step: Step, root: Path, name: str, *, offline: bool = False) -> None:
    module = load_module(step.path, root)
    function = module.upgrade if step.upgrade else module.downgrade
    try:
        function()
    except Exception as exc:
        hint = (
            "operations that need to read the database (e.g. SQLite batch ALTERs) have no offline SQL; "
            "`migrate --pretend` shows what they run"
            if offline
            else "nothing was changed"
        )
        raise OperationFailed(
            f"cannot render the SQL of {name}: {compat.describe_error(exc)}", hint=hint
        ) from exc


class _Statements(io.StringIO):
    """Alembic's offline output, cut into statements as it is written."""

    def __init__(self) -> None:
        super().__init__()
        self.statements: list[str] = []

    def write(self, text: str) -> int:
        stripped = text.strip()
        if (
            stripped
            and not is_bookkeeping(stripped)
            and stripped.rstrip(";").upper() not in ("COMMIT", "BEGIN")
        ):
            self.statements.append(stripped)
        return len(text)
