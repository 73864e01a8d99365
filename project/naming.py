"""Turn any text a user types into a safe migration name (ASCII words, nothing executable), and
name a migration after what it does when the user gave no usable name."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from manage_migrations.errors import UsageError

# Also Alembic's truncate_slug_length: a message this short is never cut mid-word into `..._ver_`.
MAX_MESSAGE_LENGTH = 60
LISTED_NAMES = 3


def migration_message(name: str) -> str | None:
    """Lowercase ASCII words joined by spaces; Alembic slugs it to `words_like_this`.

    Accented letters are transliterated (`Ünïcode` -> `unicode`). A name whose letters have no
    ASCII form (`日本語`) gives None: the caller names the migration after what it does."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-z0-9]+", folded.lower())
    if not words:
        if any(character.isalnum() for character in name):
            return None
        raise UsageError(
            f"migration name {name!r} has no letters or digits",
            hint='use words that describe the change, e.g. "add email to users"',
        )
    message = " ".join(words)
    if len(message) > MAX_MESSAGE_LENGTH:
        message = message[:MAX_MESSAGE_LENGTH].rsplit(" ", 1)[0] or message[:MAX_MESSAGE_LENGTH]
    return message


REVISION_ARGUMENT = re.compile(r"[0-9A-Za-z_]{1,255}")


def revision_argument(text: str) -> str:
    """A revision id or migration file name from the command line, checked before any lookup."""
    candidate = text.strip().removesuffix(".py")
    if not REVISION_ARGUMENT.fullmatch(candidate):
        raise UsageError(
            f"{text[:80]!r} is not a revision id or migration name",
            hint="use the revision id or file name shown by migrate:status (letters, digits, _)",
        )
    return candidate


def _listed(names: list[str]) -> str:
    """`a`, `a and b`, `a b and c`, `a b c and 2 more`: every name counts, none is dropped."""
    if len(names) > LISTED_NAMES:
        return f"{' '.join(names[:LISTED_NAMES])} and {len(names) - LISTED_NAMES} more"
    return " and ".join(names) if len(names) < LISTED_NAMES else f"{' '.join(names[:-1])} and {names[-1]}"


def _words(operation: Any) -> str:
    """`AlterEnumValuesOp` -> `alter enum values`, with the type it works on when it names one."""
    label = re.sub(r"(?<!^)(?=[A-Z])", " ", type(operation).__name__.removesuffix("Op")).lower()
    type_name = getattr(operation, "type_name", None)
    return f"{label} {type_name}" if type_name else label


def _flatten(operations: Iterable[Any]) -> list[Any]:
    from alembic.operations import ops

    flat: list[Any] = []
    for operation in operations:
        flat.extend(_flatten(operation.ops) if isinstance(operation, ops.ModifyTableOps) else [operation])
    return flat


def _table_of(operation: Any) -> str | None:
    """The table an operation works on; a foreign key names it `source_table`."""
    return getattr(operation, "table_name", None) or getattr(operation, "source_table", None)


def _group_name(table: str | None, group: list[Any]) -> str:
    """What happens to one table: `create users table`, `add email to users`, `alter users`."""
    from alembic.operations import ops

    if table is None:
        return _words(group[0])
    # Indexes come with a new table or column: they only name a migration that does nothing else.
    main = [op for op in group if not isinstance(op, ops.CreateIndexOp)] or group
    kinds = {type(op) for op in main}
    if ops.CreateTableOp in kinds:
        return f"create {table} table"
    if kinds == {ops.DropTableOp}:
        return f"drop {table} table"
    if kinds == {ops.RenameTableOp}:
        return f"rename {table} to {main[0].new_table_name}"
    if kinds == {ops.AddColumnOp} and len(main) <= 2:
        return f"add {_listed([op.column.name for op in main])} to {table}"
    if kinds == {ops.DropColumnOp} and len(main) <= 2:
        return f"remove {_listed([op.column_name for op in main])} from {table}"
    if kinds == {ops.CreateIndexOp}:
        return f"add {'indexes' if len(main) > 1 else 'index'} to {table}"
    return f"alter {table}"


def derived_name(operations: Iterable[Any]) -> str:
    """A Laravel/Django-style name for a migration from what it does: `create_users_table`,
    `create_invoices_and_payments_tables`, `add_email_to_users_and_more`; never a bare `auto`."""
    groups: dict[str | None, list[Any]] = {}
    for operation in _flatten(operations):
        groups.setdefault(_table_of(operation), []).append(operation)
    if not groups:
        return "empty migration"
    names = {table: _group_name(table, group) for table, group in groups.items()}
    tables = [table for table in groups if table is not None]
    for verb in ("create", "drop"):
        if len(tables) > 1 and all(names[table] == f"{verb} {table} table" for table in tables):
            return f"{verb} {_listed(tables)} tables"
    # The most telling change leads: `add email to users and more` rather than `alter invoices ...`.
    first = min(names.values(), key=lambda name: name.startswith("alter "))
    return first if len(names) == 1 else f"{first} and more"
