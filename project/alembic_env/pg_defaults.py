"""PostgreSQL server-default comparisons: Alembic asks the server whether the model's default
equals the database's, one round trip per column with a default. The same comparison of two
constants always has the same answer, so each distinct one is asked once."""

from __future__ import annotations

from typing import Any


class _RememberingConnection:
    """The impl's connection during one comparison; a comparison of constants asked before is
    answered from memory. Anything with a function call (`now()`, `nextval(...)`) or a bound
    parameter goes to the server every time, exactly as before."""

    def __init__(self, connection: Any, answers: dict[str, Any]) -> None:
        self._connection = connection
        self._answers = answers

    def scalar(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        compiled = statement.compile(dialect=self._connection.dialect)
        sql = str(compiled)
        if args or kwargs or compiled.params or "(" in sql:
            return self._connection.scalar(statement, *args, **kwargs)
        if sql not in self._answers:
            self._answers[sql] = self._connection.scalar(statement)
        return self._answers[sql]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def install(impl: Any) -> None:
    """Wrap the impl's compare_server_default for this run."""
    original = impl.compare_server_default
    answers: dict[str, Any] = {}

    def compare_server_default(*args: Any, **kwargs: Any) -> Any:
        connection = impl.connection
        impl.connection = _RememberingConnection(connection, answers)
        try:
            return original(*args, **kwargs)
        finally:
            impl.connection = connection

    impl.compare_server_default = compare_server_default
