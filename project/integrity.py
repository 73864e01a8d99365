"""History integrity: does the database's record (version table, ledger) fit the revision files?"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from manage_migrations import ledger
from manage_migrations.checksums import Checksums
from manage_migrations.errors import HistoryError
from manage_migrations.program import command_prefix

if TYPE_CHECKING:
    from manage_migrations.core.graph import RevisionGraph
    from manage_migrations.ledger import LedgerRow

REVISION_VALUE = re.compile(r"[0-9A-Za-z_]{1,64}")
SHOWN_VALUE_LENGTH = 40
VERSION_HINT = (
    f"{ledger.VERSION_TABLE} must hold the newest applied revision of each branch; "
    "repair it by hand or with `alembic stamp REVISION` once you know where the schema stands"
)


@dataclass(frozen=True)
class EditedMigration:
    """An applied migration whose file no longer has the checksum stored when it ran."""

    revision: str
    name: str
    stored: str
    current: str


def edited_migrations(graph: RevisionGraph, rows: list[LedgerRow]) -> tuple[EditedMigration, ...]:
    """Formatting, comments and docstrings are not edits (see project.checksums). A squash
    migration also matches the checksum its revision's file had before the prune, which every
    database that ran the original recorded."""
    edited = []
    checksums: Checksums | None = None
    for row in rows:
        file = graph.revisions.get(row.revision)
        if file is None or row.checksum is None or row.checksum == file.original_checksum:
            continue
        checksums = checksums or Checksums(file.path.parent)
        current = checksums.if_edited(file.path, row.checksum)
        if current is not None:
            edited.append(EditedMigration(row.revision, file.name, row.checksum, current))
    if checksums is not None:
        checksums.save()
    return tuple(edited)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_VALUE_LENGTH else text[: SHOWN_VALUE_LENGTH - 3] + "..."


def history_problem(
    graph: RevisionGraph, version_heads: tuple[str, ...], names: Mapping[str, str] | None = None
) -> HistoryError | None:
    """The first way alembic_version contradicts the files, as one sentence; None if it fits.
    (The ledger cannot contradict anything: it is reconciled with alembic_version, see core.store.)"""
    for value in version_heads:
        if not isinstance(value, str) or not REVISION_VALUE.fullmatch(value):
            return HistoryError(
                f"{ledger.VERSION_TABLE} holds {_shown(value)}, which is not a revision id", hint=VERSION_HINT
            )
    for value, count in Counter(version_heads).items():
        if count > 1:
            return HistoryError(
                f"{ledger.VERSION_TABLE} holds revision {value} {count} times", hint=VERSION_HINT
            )
    pruned = [value for value in version_heads if value in graph.replaced_by]
    if pruned:
        return behind_the_squash(graph, pruned[0], (names or {}).get(pruned[0]))
    missing = [value for value in version_heads if value not in graph.revisions]
    if missing:
        name = (names or {}).get(missing[0])
        also = f" (ledger name {name})" if name else ""
        return HistoryError(
            f"the database is at revision {missing[0]}{also}, which has no migration file",
            hint="restore the missing file (or run the newer release that created it)",
        )
    for value in version_heads:
        below = graph.ancestors(graph.parents(value))
        older = [other for other in version_heads if other in below]
        if older:
            return HistoryError(
                f"{ledger.VERSION_TABLE} holds {value} and {older[0]}, but {older[0]} is an ancestor "
                f"of {value}",
                hint=VERSION_HINT,
            )
    return None


def squashed_revisions(graph: RevisionGraph, version_heads: tuple[str, ...]) -> set[str]:
    """Pruned revisions this database ran before reaching the squash migration that replaces them:
    their ledger rows are history, not missing files. (A database still behind the squash needs
    the pruned files, so for it they stay missing.)"""
    if not graph.replaced_by:
        return set()
    applied = graph.ancestors(head for head in version_heads if head in graph.revisions)
    return {pruned for pruned, squash in graph.replaced_by.items() if squash.revision in applied}


def behind_the_squash(graph: RevisionGraph, revision: str, name: str | None) -> HistoryError:
    """A database that was behind the dump when its migrations were pruned cannot be migrated."""
    squash = graph.replaced_by[revision]
    shown = f"{revision} ({name})" if name else revision
    return HistoryError(
        f"the database is at revision {shown}, whose file was pruned into the squashed migration "
        f"{squash.name}: this database was behind the schema dump when the migrations were pruned, "
        "so the migrations that would bring it up to date are gone",
        hint=f"check out the migrations from before the prune (git log -- {squash.path.parent.name}), "
        f"run `{command_prefix()} migrate` there to bring this database to {squash.revision}, then come "
        f"back; or, if its data is expendable, rebuild it with `{command_prefix()} migrate:fresh`",
    )
