"""make:migration (autogenerate, --empty, --merge) and the drift comparison migrate:check uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from project import alembic_bridge as bridge
from project.core import planner, preflight, session
from project.errors import OperationFailed, UsageError

if TYPE_CHECKING:
    from project.alembic_env.autogen import AutogenOutcome, AutogenRequest, Change
    from project.alembic_env.renames import Decide, RenameCandidate
    from project.core.session import Session
    from project.discovery import DiscoveredModels
    from project.settings import Settings


@dataclass(frozen=True)
class MakeResult:
    """What make:migration found and did; `refused_drops` (table -> rows) means nothing was written."""

    path: Path | None
    changes: tuple[Change, ...]
    models: DiscoveredModels | None
    unconfirmed_renames: tuple[RenameCandidate, ...] = ()
    refused_drops: tuple[tuple[str, int], ...] = ()
    dry_run: bool = False


def make_migration(
    settings: Settings,
    name: str | None,
    *,
    empty: bool = False,
    merge: bool = False,
    dry_run: bool = False,
    allow_drops: bool = False,
    renames: Mapping[str, str] | None = None,
    ask: Decide | None = None,
) -> MakeResult:
    """Autogenerate one revision file from the models; write nothing when nothing changed.

    Probable renames are confirmed by `renames` (old -> new) or by `ask`; without either they
    stay drop + add and come back in `unconfirmed_renames`.
    """
    from project import collector
    from project.alembic_env.autogen import AutogenOutcome, AutogenRequest
    from project.discovery import discover_models
    from project.naming import migration_message

    message = migration_message(name) if name is not None else "auto"
    bridge.ensure_migrations_dir(settings)
    if merge:
        return _merge(settings, name)
    if empty:
        preflight.refuse_several_heads(preflight.load_graph(settings))
        config = bridge.make_config(settings)
        script = bridge.load_script(config)
        created = bridge.generate_revision(config, script, message, autogenerate=False)
        return MakeResult(_checked_path(created), (), None)

    request = AutogenRequest(
        drop_empty=True,
        derive_name=name is None,
        dry_run=dry_run,
        allow_drops=allow_drops,
        renames=dict(renames or {}),
        ask=ask,
    )
    outcome = AutogenOutcome()
    with collector.paused():
        models = discover_models(settings.root, settings.model_packages)
        with session.reading(settings) as current:
            created = autogenerate(current, models, message, request, outcome)
    unmatched = sorted(set(request.renames) - outcome.used_answers)
    if unmatched:
        _remove_created(created)
        raise UsageError(
            f"--rename {unmatched[0]}:{request.renames[unmatched[0]]} matches no table or column "
            "that disappears while one of the same shape appears",
            hint="the old name is `table` or `table.column` as in the database, the new one as in the models",
        )
    return MakeResult(
        _checked_path(created),
        tuple(outcome.changes),
        models,
        tuple(outcome.unconfirmed),
        tuple(sorted(outcome.refused_drops.items())),
        dry_run,
    )


def _created_script(created: Any) -> Any:
    if isinstance(created, list):
        return created[0] if created else None
    return created


def _remove_created(created: Any) -> None:
    script = _created_script(created)
    if script is not None:
        Path(script.path).unlink(missing_ok=True)


def autogenerate(
    current: Session,
    models: DiscoveredModels,
    message: str,
    request: AutogenRequest,
    outcome: AutogenOutcome,
) -> Any:
    """Compare the models with a fully migrated database; a dry run only fills `outcome`."""
    graph = preflight.load_graph(current.settings)
    preflight.refuse_several_heads(graph)
    state = preflight.read_state(current, graph)
    pending = planner.upgrade_plan(graph, state.version_heads).steps
    if pending:
        count = len(pending)
        raise OperationFailed(
            f"{count} migration{'s are' if count > 1 else ' is'} pending; run migrate first",
            hint="make:migration compares the models with a database that is fully migrated",
        )
    from project.alembic_env.request import EnvRequest

    handoff = EnvRequest(current.settings, current.connection, tuple(models.metadata), request, outcome)
    config = bridge.make_config(current.settings, handoff)
    script = bridge.load_script(config)
    from project import collector

    try:
        with collector.paused():
            return bridge.generate_revision(config, script, message, autogenerate=True)
    finally:
        if current.connection.in_transaction():
            current.connection.rollback()


def _merge(settings: Settings, name: str | None) -> MakeResult:
    """Write the migration that joins every head (after a git merge brought in two branches)."""
    from project.naming import migration_message

    with session.writing(settings):
        config = bridge.make_config(settings)
        if len(preflight.load_graph(settings).heads()) < 2:
            raise UsageError(
                "nothing to merge: the migration history has a single head",
                hint="--merge is for when two branches both added a migration",
            )
        message = migration_message(name) if name is not None else "merge heads"
        created = bridge.merge_heads(config, message)
    return MakeResult(_checked_path(created), (), None)


def _checked_path(created: Any) -> Path | None:
    """The written file, compiled and imported before it is reported: a broken one is removed."""
    from project.generated import check_generated

    script = _created_script(created)
    if script is None:
        return None
    path = Path(script.path)
    check_generated(path, getattr(script, "module", None))
    return _sorted_last(path)


STAMP_FORMAT = "%Y_%m_%d_%H%M%S"
STAMP_LENGTH = len("2026_01_01_000000")


def _stamp_of(path: Path) -> datetime | None:
    try:
        return datetime.strptime(path.name[:STAMP_LENGTH], STAMP_FORMAT)
    except ValueError:
        return None


def _sorted_last(path: Path) -> Path:
    """Two migrations made within one second must still sort in creation order."""
    own = _stamp_of(path)
    others = [stamp for other in path.parent.glob("*.py") if other != path and (stamp := _stamp_of(other))]
    if own is None or not others or own > max(others):
        return path
    stamp = (max(others) + timedelta(seconds=1)).strftime(STAMP_FORMAT)
    renamed = path.with_name(stamp + path.name[STAMP_LENGTH:])
    path.rename(renamed)
    return renamed
