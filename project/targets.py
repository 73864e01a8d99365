"""Resolve what a user typed as a migration (revision id, file name prefix, `head`) to one revision."""

from __future__ import annotations

from typing import TYPE_CHECKING

from project import alembic_bridge as bridge
from project.errors import HistoryError, UsageError

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

HEAD_WORDS = frozenset({"head", "heads"})
SHOWN_CANDIDATES = 10


def _without_stamp(name: str) -> str:
    parts = name.split("_", 4)
    return parts[4] if len(parts) == 5 and all(part.isdigit() for part in parts[:4]) else name


def resolve(script: ScriptDirectory, text: str) -> str:
    """The revision id `text` names: exact id, exact file name, or a unique prefix of either."""
    wanted = text.strip().removesuffix(".py")
    files = bridge.ordered_files(script)
    if wanted in HEAD_WORDS:
        heads = bridge.heads(script)
        if len(heads) != 1:
            raise HistoryError(f"the migration history has {len(heads)} heads; name one of them")
        return heads[0]
    for file in files:
        if wanted in (file.revision, file.name):
            return file.revision
    matches = [
        file
        for file in files
        if file.revision.startswith(wanted)
        or file.name.startswith(wanted)
        or _without_stamp(file.name).startswith(wanted)
    ]
    if len(matches) == 1:
        return matches[0].revision
    shown = matches or files
    listing = ", ".join(file.name for file in shown[:SHOWN_CANDIDATES])
    more = f" (and {len(shown) - SHOWN_CANDIDATES} more)" if len(shown) > SHOWN_CANDIDATES else ""
    if matches:
        raise UsageError(
            f"{text!r} matches {len(matches)} migrations: {listing}{more}",
            hint="give more of the file name, or the revision id",
        )
    raise UsageError(
        f"no migration matches {text!r}",
        hint=f"known migrations: {listing}{more}" if files else "there are no migrations yet",
    )
