"""PostgreSQL server-default comparisons: Alembic asks the server whether the model's default
equals the database's, one round trip per column with a default. The same comparison of two
constants always has the same answer, so each distinct one is asked once."""

from __future__ import annotations

from typing import Any

from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, ColumnClause, TextClause


def _constant(side: Any) -> tuple[str, str] | None:
    """A side of the comparison as (kind, SQL) if it is a constant: literal SQL (or text() without
    bound parameters) and no function call (`now()`, `nextval(...)` are asked every time)."""
    if isinstance(side, ColumnClause) and side.is_literal and side.table is None:
        sql = str(side.name)
    elif isinstance(side, TextClause) and ":" not in side.text:
        sql = side.text
    else:
        return None
    return None if "(" in sql else (type(side).__name__, sql)


def _constants(statement: Any) -> tuple[Any, ...] | None:
    """The two constants of `SELECT <constant> = <constant>`, Alembic's comparison; None for
    any other statement."""
    columns: Any = getattr(statement, "selected_columns", ())
    if len(columns) != 1 or getattr(statement, "whereclause", None) is not None:
        return None
    comparison = columns[0]
    if not isinstance(comparison, BinaryExpression) or comparison.operator is not operators.eq:
        return None
    left, right = _constant(comparison.left), _constant(comparison.right)
    return None if left is None or right is None else (left, right)


class _RememberingConnection:
    """The impl's connection during one comparison: a comparison of two constants asked before
    is answered from memory; anything else goes to the server every time, exactly as before."""

    def __init__(self, connection: Any, answers: dict[tuple[Any, ...], Any]) -> None:
        self._connection = connection
        self._answers = answers

    def scalar(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        key = None if args or kwargs else _constants(statement)
        if key is None:
            return self._connection.scalar(statement, *args, **kwargs)
        if key not in self._answers:
            self._answers[key] = self._connection.scalar(statement)
        return self._answers[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def install(impl: Any) -> None:
    """Wrap the impl's compare_server_default for this run."""
    original = impl.compare_server_default
    answers: dict[tuple[Any, ...], Any] = {}

    def compare_server_default(*args: Any, **kwargs: Any) -> Any:
        connection = impl.connection
        impl.connection = _RememberingConnection(connection, answers)
        try:
            return original(*args, **kwargs)
        finally:
            impl.connection = connection

    impl.compare_server_default = compare_server_default
