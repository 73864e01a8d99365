"""Maintenance verbs: migrate:rehash, migrate:resolve, migrate:dump (and --prune)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from manage_migrations import guard, ledger
from manage_migrations.core import preflight, session
from manage_migrations.core.events import ProgressCallback, ignore
from manage_migrations.errors import OperationFailed, UsageError

if TYPE_CHECKING:
    from manage_migrations.guard import Confirm
    from manage_migrations.integrity import EditedMigration
    from manage_migrations.schema_dump import DumpInfo
    from manage_migrations.settings import Settings
    from manage_migrations.squash import Pruned, PrunePlan


@dataclass(frozen=True)
class Accepted:
    database: str
    migrations: tuple[EditedMigration, ...]


def accept_checksums(
    settings: Settings, wanted: tuple[str, ...] = (), on_progress: ProgressCallback = ignore
) -> Accepted:
    """Store the current checksum of edited migrations (all, or the named ones) after review."""
    graph = preflight.load_graph(settings)
    with session.writing(settings, on_progress) as current:
        edited = preflight.read_state(current, graph, on_progress).edited
        if wanted:
            by_key = {key: item for item in edited for key in (item.revision, item.name)}
            unknown = [name for name in wanted if name not in by_key]
            if unknown:
                raise UsageError(
                    f"{unknown[0]} is not an applied migration whose file was edited",
                    hint="migrate:status marks edited migrations; give a revision id or a file name",
                )
            edited = tuple(dict.fromkeys(by_key[name] for name in wanted))
        with current.connection.begin():
            for item in edited:
                ledger.update_checksum(current.connection, item.revision, item.current)
        return Accepted(current.shown_url, edited)


@dataclass(frozen=True)
class Resolved:
    database: str
    name: str
    revision: str


def resolve_failure(settings: Settings, wanted: str, on_progress: ProgressCallback = ignore) -> Resolved:
    """Forget a failure recorded outside a transaction, after a person has repaired the database."""
    with session.writing(settings, on_progress) as current:
        try:
            failures = ledger.read_failures(current.connection)
        finally:
            current.connection.rollback()
        match = next((f for f in failures if wanted in (f.revision, f.name)), None)
        if match is None:
            recorded = ", ".join(f.revision for f in failures) or "none"
            raise UsageError(
                f"no failed migration {wanted} is recorded (recorded: {recorded})",
                hint="migrate:status marks failed migrations as Failed",
            )
        with current.connection.begin():
            ledger.clear_failure(current.connection, match.revision)
        return Resolved(current.shown_url, match.name, match.revision)


def dump_schema(settings: Settings) -> DumpInfo:
    """Write the schema and history of the migrated database as SQL under migrations/schema/."""
    from manage_migrations import schema_dump

    graph = preflight.load_graph(settings)
    with session.reading(settings) as current:
        _refuse_empty_dump(preflight.read_state(current, graph).version_heads)
        info = schema_dump.write_dump(
            current.connection, current.url, settings.migrations_dir, settings.schema
        )
        current.connection.rollback()
        return info


def _refuse_empty_dump(version_heads: tuple[str, ...]) -> None:
    if not version_heads:
        raise OperationFailed(
            "nothing to dump: no migration has been applied to this database",
            hint="run migrate first",
        )


def dump_and_prune(
    settings: Settings,
    *,
    confirm: Confirm,
    pretend: bool = False,
    on_plan: Callable[[PrunePlan], None] | None = None,
    on_progress: ProgressCallback = ignore,
) -> Pruned:
    """migrate:dump --prune: dump a database at head, then replace the files the dump covers by
    one squash migration (squash.py). Nothing is written or deleted without consent."""
    from manage_migrations import schema_dump, squash
    from manage_migrations.checksums import checksum

    graph = preflight.load_graph(settings)
    with session.writing(settings, on_progress) as current:
        state = preflight.read_state(current, graph, on_progress)
        _refuse_empty_dump(state.version_heads)
        preflight.refuse_unresolved_failures(current, state)
        dialect = schema_dump.dialect_of(current.url)
        plan = squash.plan_prune(
            graph, state.version_heads, state.edited, settings.migrations_dir, dialect, pretend=pretend
        )
        if on_plan is not None:
            on_plan(plan)
        if pretend:
            return squash.Pruned(plan, None)
        if not plan.nothing_to_prune:
            count = len(plan.deleted)
            guard.require_confirmation(
                f"Delete {count} migration file{'s' if count > 1 else ''}?",
                confirm,
                "refused to prune without confirmation; nothing was written or deleted",
            )
        dump = schema_dump.write_dump(current.connection, current.url, settings.migrations_dir)
        current.connection.rollback()
        if not plan.nothing_to_prune:
            squash.verify_dump(plan, dump)
            warning = squash.apply(plan, checksum(plan.head.path), settings.root)
            return squash.Pruned(plan, dump, warning)
        return squash.Pruned(plan, dump)
