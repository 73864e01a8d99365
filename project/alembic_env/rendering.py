"""Type rendering that imports what it names: a user's TypeDecorator gets its module imported,
and SQLAlchemy types Alembic renders bare (JSONB's `astext_type=Text()`) get the `sa.` prefix."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy
from alembic.autogenerate import render
from sqlalchemy.types import TypeDecorator

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
        # `sqlalchemy_utils` is not SQLAlchemy: only the package itself and its submodules are.
        if module.split(".", 1)[0] not in ("sqlalchemy", "builtins"):
            imports.add(f"import {module}")


def _constructible(rendered: str, imports: set[str]) -> bool:
    """Does the rendered type expression run, with the imports the migration file will have?"""
    namespace: dict[str, Any] = {"sa": sqlalchemy}
    try:
        for line in sorted(imports):
            exec(line, namespace)
        eval(rendered, namespace)
    except Exception:
        return False
    return True


def render_item_hook() -> Any:
    rendering = False

    def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
        nonlocal rendering
        if type_ != "type" or rendering:
            return False
        rendering = True
        try:
            rendered = _prefixed(render._repr_type(obj, autogen_context))
            _import_user_modules(obj, autogen_context.imports)
            if isinstance(obj, TypeDecorator) and not _constructible(rendered, autogen_context.imports):
                # Alembic renders a TypeDecorator with its impl's arguments (sqlalchemy-utils'
                # ChoiceType(length=10)), which its own __init__ may refuse: the DDL type will do.
                rendered = _prefixed(render._repr_type(obj.impl_instance, autogen_context))
        finally:
            rendering = False
        return rendered

    return render_item
