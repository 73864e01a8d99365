"""Type rendering that imports what it names: a user's TypeDecorator gets its module imported,
and SQLAlchemy types Alembic renders bare (JSONB's `astext_type=Text()`) get the `sa.` prefix."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy
from alembic.autogenerate import render

BARE_CALL = re.compile(r"(?<![\w.])([A-Z]\w*)\(")


def _prefixed(rendered: str) -> str:
    def prefix(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"sa.{name}(" if isinstance(getattr(sqlalchemy, name, None), type) else match.group(0)

    return BARE_CALL.sub(prefix, rendered)


def _import_user_modules(type_: Any, imports: set[str]) -> None:
    """Alembic renders a type from outside SQLAlchemy as `module.Class()` without importing it."""
    for candidate in (type_, *getattr(type_, "mapping", {}).values()):
        module = type(candidate).__module__
        if not module.startswith(("sqlalchemy", "builtins")):
            imports.add(f"import {module}")


def render_item_hook() -> Any:
    rendering = False

    def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
        nonlocal rendering
        if type_ != "type" or rendering:
            return False
        rendering = True
        try:
            rendered = render._repr_type(obj, autogen_context)
        finally:
            rendering = False
        _import_user_modules(obj, autogen_context.imports)
        return _prefixed(rendered)

    return render_item
