"""`migrate:dump --prune` (Laravel's schema:dump --prune, Django's squashmigrations): which migration
files a dump covers, the squash migration that keeps the head's revision id, and the rules that
keep every database working afterwards (no rollback past the squash, no stale dump loaded)."""

from __future__ import annotations

import json
import os
import textwrap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from manage_migrations import schema_dump
from manage_migrations.errors import ConfigError, HistoryError, OperationFailed
from manage_migrations.integrity import REVISION_VALUE
from manage_migrations.program import command_prefix

if TYPE_CHECKING:
    from manage_migrations.core.graph import RevisionGraph as RevisionIndex
    from manage_migrations.core.graph import RevisionHeader
    from manage_migrations.integrity import EditedMigration
    from manage_migrations.schema_dump import DumpInfo

SQUASHED_GLOB = "*-squashed-*.sql"
LINE_WIDTH = 72  # the squash migration's prose, within any team's line length


@dataclass(frozen=True)
class PrunePlan:
    """What a prune changes; `head` keeps its revision id and becomes the squash migration."""

    head: RevisionHeader
    dialect: str
    deleted: tuple[Path, ...]
    replaces: tuple[str, ...]
    dialects: tuple[str, ...]
    written: tuple[Path, ...]
    obsolete: tuple[Path, ...]
    pretend: bool = False

    @property
    def nothing_to_prune(self) -> bool:
        return not self.deleted


@dataclass(frozen=True)
class Pruned:
    plan: PrunePlan
    dump: DumpInfo | None
    warning: str | None = None  # why ruff could not tidy the squash migration


def plan_prune(
    index: RevisionIndex,
    version_heads: tuple[str, ...],
    edited: tuple[EditedMigration, ...],
    migrations_dir: Path,
    dialect: str,
    *,
    pretend: bool = False,
) -> PrunePlan:
    """Check that the dump about to be taken covers every file, then say what would change."""
    head = _single_head(index)
    _refuse_unless_at(head, index, version_heads)
    if edited:
        raise OperationFailed(
            f"{len(edited)} applied migration(s) were edited after they ran "
            f"({', '.join(item.name for item in edited)}); the dump would not match their files",
            hint=f"review them and accept them with `{command_prefix()} migrate:rehash`, {_prune_again()}",
        )
    older = [header for header in index.ordered() if header.revision != head.revision]
    if not older:
        return PrunePlan(head, dialect, (), (), (dialect,), (), (), pretend)
    dialects = _dialects_at(head, migrations_dir, dialect)
    written = tuple(schema_dump.squashed_path(migrations_dir, name, head.revision) for name in dialects)
    existing = sorted((migrations_dir / schema_dump.DUMP_DIRECTORY).glob(SQUASHED_GLOB))
    obsolete = tuple(path for path in existing if path not in written)
    _refuse_losing_dialects(obsolete, dialects)
    replaces = [pruned for header in older for pruned in header.replaces]
    replaces += [header.revision for header in older]
    return PrunePlan(
        head,
        dialect,
        tuple(header.path for header in older),
        tuple(dict.fromkeys(replaces)),
        dialects,
        written,
        obsolete,
        pretend,
    )


def _prune_again() -> str:
    return f"then run `{command_prefix()} migrate:dump --prune` again"


def _single_head(index: RevisionIndex) -> RevisionHeader:
    heads = index.heads()
    if len(heads) > 1:
        names = ", ".join(index.revisions[head].name for head in heads)
        raise HistoryError(
            f"the migration history has {len(heads)} heads ({names}); one dump cannot cover them",
            hint=f"write the merge migration with `make:migration --merge`, migrate, {_prune_again()}",
        )
    if not heads:
        raise OperationFailed("there are no migration files to prune")
    head = index.revisions[heads[0]]
    if not REVISION_VALUE.fullmatch(head.revision):
        raise ConfigError(f"cannot prune into revision {head.revision!r}: not a plain revision id")
    return head


def _refuse_unless_at(head: RevisionHeader, index: RevisionIndex, version_heads: tuple[str, ...]) -> None:
    """Only a database at head gives a dump that covers every file."""
    if version_heads == (head.revision,):
        return
    pending = len(index.revisions) - len(index.ancestors(version_heads))
    raise OperationFailed(
        f"the database is not at the newest migration ({head.name}): {pending} migration(s) are "
        "pending, and a dump of it would not cover them, so their files cannot be pruned",
        hint=f"run `{command_prefix()} migrate` first, {_prune_again()}",
    )


def _dialects_at(head: RevisionHeader, migrations_dir: Path, dialect: str) -> tuple[str, ...]:
    """Every dialect whose dump will be at head; a dump of another dialect at an older revision
    would need the pruned files to catch up, so it stops the prune."""
    directory = migrations_dir / schema_dump.DUMP_DIRECTORY
    found = [dialect]
    for path in sorted(directory.glob("*-schema.sql")):
        other = path.name.removesuffix("-schema.sql")
        if other == dialect:
            continue
        revisions = schema_dump.dump_revisions(path)
        if revisions != (head.revision,) or not schema_dump.has_sections(path.read_text(encoding="utf-8")):
            taken = f"at {', '.join(revisions)}" if revisions else "by an older version of manage.py"
            raise OperationFailed(
                f"{directory.name}/{path.name} was dumped {taken}, not at {head.name}: after the "
                f"prune, {other} databases loaded from it could not catch up",
                hint=f"dump a {other} database at head too (`{command_prefix()} migrate:dump "
                f"--database-url ...`) or delete {path.name}, {_prune_again()}",
            )
        found.append(other)
    return tuple(found)


def _refuse_losing_dialects(obsolete: tuple[Path, ...], dialects: tuple[str, ...]) -> None:
    """An earlier squash that builds new databases of some dialect must not lose that ability."""
    for path in obsolete:
        other = path.name.split("-squashed-")[0]
        if other not in dialects:
            raise OperationFailed(
                f"{path.name} builds new {other} databases today, and this prune would leave none",
                hint=f"dump a {other} database at head too (`{command_prefix()} migrate:dump "
                f"--database-url ...`), {_prune_again()}",
            )


def verify_dump(plan: PrunePlan, dump: DumpInfo) -> None:
    """Nothing is deleted unless the dump just written is at the head it is meant to cover."""
    if dump.revisions != (plan.head.revision,):
        raise OperationFailed(
            f"the dump was taken at {', '.join(dump.revisions) or 'no revision'}, not at "
            f"{plan.head.revision} (did another process migrate meanwhile?); nothing was pruned",
            hint=_prune_again().removeprefix("then "),
        )


def apply(plan: PrunePlan, original_checksum: str, root: Path) -> str | None:
    """New files first, each written beside its place and renamed over it, deletions last: the
    squash migration replaces the pruned revisions the moment it is in place (the graph ignores
    their files), so an interruption at any point leaves a usable history. The squash migration
    is tidied by the project's ruff first, like every generated file; ruff's warning is returned."""
    from manage_migrations.generated import tidied

    for dialect, target in zip(plan.dialects, plan.written, strict=True):
        source = schema_dump.dump_path(plan.head.path.parent, dialect)
        _replace(target, source.read_text(encoding="utf-8"))
    squash = tidied(render_squash_migration(plan, original_checksum), plan.head.path, root)
    _replace(plan.head.path, squash.text)
    for path in (*plan.deleted, *plan.obsolete):
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise OperationFailed(
                f"{plan.head.name} is now the squash migration, but {path.name} could not be "
                f"deleted: {exc.strerror}",
                hint="delete the remaining pruned files by hand; until then they are ignored",
            ) from None
    return squash.warning


def _replace(path: Path, text: str) -> None:
    """Write a temporary file beside `path` (not *.py: Alembic skips it), then rename it over."""
    staged = path.with_name(path.name + ".squash")
    staged.write_text(text, encoding="utf-8")
    os.replace(staged, path)


def render_squash_migration(plan: PrunePlan, original_checksum: str) -> str:
    """The head's file, rewritten: same revision id, no parent, and the revisions it replaces."""
    head = plan.head
    created = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    replaced = "".join(f"    {json.dumps(revision)},\n" for revision in plan.replaces)
    schema = f"{schema_dump.DUMP_DIRECTORY}/<dialect>-squashed-{head.revision}.sql"
    about = textwrap.fill(
        "Written by `migrate:dump --prune`. The migrations before this revision were deleted and "
        "this file was rewritten with the same revision id: it builds the schema they built by "
        f"loading {schema} (written for {', '.join(plan.dialects)}). Databases that had already run "
        "them keep working. It cannot be rolled back.",
        width=LINE_WIDTH,
    )
    # Lines stay within a team's ruff line length (88 by default, 79 in strict projects).
    return f'''"""Squash migration: the schema of {len(plan.replaces)} pruned migrations and of
{_safe(head.name)}.

{about}

Revision ID: {head.revision}
Revises:
Create Date: {created}
"""

from __future__ import annotations

from pathlib import Path

from manage_migrations import squashed_schema

revision: str = "{head.revision}"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None
# The pruned revisions: their ledger rows count as history, not as
# missing files.
replaces: tuple[str, ...] = (
{replaced})
# The checksum this revision's file had when databases ran it, before
# the prune rewrote it.
original_checksum: str = (
    "{original_checksum}"
)


def upgrade() -> None:
    squashed_schema.upgrade(Path(__file__).parent, revision)


def downgrade() -> None:
    squashed_schema.downgrade(revision, len(replaces))
'''


def _safe(name: str) -> str:
    """A file name inside the docstring: nothing that could end it."""
    return "".join(char if char.isalnum() or char in "_-." else "_" for char in name)


def refuse_rolling_back(index: RevisionIndex, chosen: list[str]) -> None:
    """A rollback (or reset, refresh) that would undo a squash migration stops before it starts:
    the downgrades of the pruned migrations went with their files. `chosen` is oldest first."""
    for position, revision in enumerate(chosen):
        header = index.revisions.get(revision)
        if header is None or not header.is_squash:
            continue
        after = len(chosen) - position - 1
        only_later = f"roll back only the migrations after it (--step {after}), or " if after else ""
        raise HistoryError(
            f"cannot roll back {header.name}: it squashes {len(header.replaces)} pruned migrations, "
            "whose downgrades were deleted with their files",
            hint=f"{only_later}rebuild the database from scratch with `{command_prefix()} migrate:fresh`",
        )


def refuse_stale_dump(path: Path, index: RevisionIndex) -> None:
    """A dump taken at a revision without a file (pruned since, or from another branch) would
    leave the new database at a revision no migration can move on from."""
    revisions = schema_dump.dump_revisions(path) or ()
    unknown = [revision for revision in revisions if revision not in index.revisions]
    if not unknown:
        return
    squash = index.replaced_by.get(unknown[0])
    why = f"was pruned into {squash.name}" if squash else "has no migration file"
    raise HistoryError(
        f"{path.parent.name}/{path.name} was dumped at revision {unknown[0]}, which {why}; "
        "loading it would leave the new database stuck there",
        hint=f"dump a database at head again (`{command_prefix()} migrate:dump`) or delete the file; "
        "`migrate --no-dump` skips it",
    )
