"""make:migration (autogenerate, --empty, --merge) and the drift comparison migrate:check uses."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from manage_migrations import alembic_bridge as bridge
from manage_migrations.core import planner, preflight, session
from manage_migrations.errors import OperationFailed, UsageError

if TYPE_CHECKING:
    from alembic.script import Script, ScriptDirectory

    from manage_migrations.alembic_env.autogen import AutogenOutcome, AutogenRequest, Change
    from manage_migrations.alembic_env.backfill import AskDefault, RequiredColumn
    from manage_migrations.alembic_env.renames import Decide, RenameCandidate
    from manage_migrations.core.session import Session
    from manage_migrations.discovery import DiscoveredModels
    from manage_migrations.settings import Settings


@dataclass(frozen=True)
class MakeResult:
    """What make:migration found and did. `refused_drops` (table -> rows), `missing_defaults` and,
    without --allow-drops, `unconfirmed_renames` mean nothing was written."""

    path: Path | None
    changes: tuple[Change, ...]
    models: DiscoveredModels | None
    unconfirmed_renames: tuple[RenameCandidate, ...] = ()
    refused_drops: tuple[tuple[str, int], ...] = ()
    dry_run: bool = False
    missing_defaults: tuple[RequiredColumn, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Published:
    """A migration file in the migrations directory, and why ruff could not tidy it, if it could not."""

    path: Path
    warning: str | None = None

    def result(self) -> MakeResult:
        return MakeResult(self.path, (), None, warnings=_warnings(self))


def _warnings(published: Published | None) -> tuple[str, ...]:
    return (published.warning,) if published is not None and published.warning else ()


@dataclass(frozen=True)
class Answers:
    """How probable renames and the rows of new NOT NULL columns are settled: given on the command
    line (`renames` old -> new, `defaults` table.column -> SQL) or asked on a terminal."""

    renames: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)
    ask_rename: Decide | None = None
    ask_default: AskDefault | None = None


def make_migration(
    settings: Settings,
    name: str | None,
    *,
    empty: bool = False,
    merge: bool = False,
    dry_run: bool = False,
    allow_drops: bool = False,
    answers: Answers | None = None,
) -> MakeResult:
    """Autogenerate one revision file from the models; write nothing when nothing changed.

    Probable renames are confirmed by `answers`; without an answer (no terminal) nothing is
    written unless `allow_drops` lets them be drop + add. A name without ASCII letters (`日本語`)
    is replaced by one derived from the operations."""
    from manage_migrations import collector
    from manage_migrations.alembic_env.autogen import AutogenOutcome, AutogenRequest
    from manage_migrations.alembic_env.backfill import RequiredPolicy
    from manage_migrations.discovery import database_models
    from manage_migrations.naming import migration_message

    answers = answers or Answers()
    message = migration_message(name) if name is not None else None
    bridge.ensure_migrations_dir(settings)
    if merge:
        return _merge(settings, message)
    if empty:
        preflight.refuse_several_heads(preflight.load_graph(settings))
        config = bridge.make_config(settings)
        script = bridge.load_script(config)
        with _staging(script, settings.migrations_dir):
            created = bridge.generate_revision(
                config, script, message or "empty migration", autogenerate=False
            )
            published = _published(created, settings)
            return published.result() if published else MakeResult(None, (), None)

    request = AutogenRequest(
        drop_empty=True,
        derive_name=message is None,
        dry_run=dry_run,
        allow_drops=allow_drops,
        renames=dict(answers.renames),
        ask=answers.ask_rename,
        required=RequiredPolicy(dict(answers.defaults), answers.ask_default),
    )
    outcome = AutogenOutcome()
    with collector.paused():
        models = database_models(settings)
        with session.reading(settings) as current:
            published = autogenerate(current, models, message or "auto", request, outcome)
    changes = [
        *outcome.changes,
        *(_filled_change(column, value) for column, value in outcome.required.filled),
    ]
    return MakeResult(
        published.path if published else None,
        tuple(changes),
        models,
        tuple(outcome.unconfirmed),
        tuple(sorted(outcome.refused_drops.items())),
        dry_run,
        tuple(outcome.required.missing),
        _warnings(published),
    )


def _refuse_unused(given: Mapping[str, str], used: set[str], flag: str, separator: str) -> None:
    """An answer that matched nothing is a typo, not something to ignore silently."""
    unmatched = sorted(set(given) - used)
    if not unmatched:
        return
    shown = f"{flag} {unmatched[0]}{separator}{given[unmatched[0]]}"
    if flag == "--rename":
        raise UsageError(
            f"{shown} matches no table or column that disappears while one of the same shape appears",
            hint="the old name is `table` or `table.column` as in the database, the new one as in the models",
        )
    raise UsageError(
        f"{shown} matches no NOT NULL column that is added, or made NOT NULL, without a server default",
        hint="name it `table.column` as in the models (`schema.table.column` outside the default schema)",
    )


def _filled_change(column: RequiredColumn, value: str) -> Change:
    from manage_migrations.alembic_env.autogen import Change

    rows = f"{column.rows} existing row{'' if column.rows == 1 else 's'}"
    return Change("~", f"column {column.key}  {rows} set to {value} (one-off), then NOT NULL")


def autogenerate(
    current: Session,
    models: DiscoveredModels,
    message: str,
    request: AutogenRequest,
    outcome: AutogenOutcome,
) -> Published | None:
    """Compare the models with a fully migrated database; a dry run only fills `outcome`."""
    from manage_migrations import collector

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
    from manage_migrations.alembic_env.request import EnvRequest

    handoff = EnvRequest(current.settings, current.connection, tuple(models.metadata), request, outcome)
    config = bridge.make_config(current.settings, handoff)
    script = bridge.load_script(config)
    try:
        with collector.paused(), _staging(script, current.settings.migrations_dir):
            created = bridge.generate_revision(config, script, message, autogenerate=True)
            _refuse_unused(request.renames, outcome.used_answers, "--rename", ":")
            if request.required is not None:
                _refuse_unused(request.required.values, outcome.required.used, "--default", "=")
            return _published(created, current.settings)
    finally:
        if current.connection.in_transaction():
            current.connection.rollback()


def _merge(settings: Settings, message: str | None) -> MakeResult:
    """Write the migration that joins every head (after a git merge brought in two branches)."""
    with session.writing(settings):
        config = bridge.make_config(settings)
        if len(preflight.load_graph(settings).heads()) < 2:
            raise UsageError(
                "nothing to merge: the migration history has a single head",
                hint="--merge is for when two branches both added a migration",
            )
        script = bridge.load_script(config)
        with _staging(script, settings.migrations_dir):
            created = bridge.merge_heads(config, script, message or "merge heads")
            published = _published(created, settings)
            return published.result() if published else MakeResult(None, (), None)


@contextmanager
def _staging(script: ScriptDirectory, migrations_dir: Path) -> Iterator[None]:
    """Alembic writes new revision files into a private hidden directory, which neither Alembic
    nor migrate:status reads: a concurrent run never sees a half-written file (removed at the end)."""
    from manage_migrations import compat

    directory = Path(tempfile.mkdtemp(prefix=".make-", dir=migrations_dir))
    try:
        compat.write_revisions_into(script, directory)
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


STAMP_FORMAT = "%Y_%m_%d_%H%M%S"
STAMP_LENGTH = len("2026_01_01_000000")
PUBLISH_TRIES = 100


def _published(created: Script | list[Script | None] | None, settings: Settings) -> Published | None:
    """The written file, tidied by the project's ruff, compiled and imported (a broken one is
    removed), then linked into the migrations directory under a name that sorts after every other."""
    from manage_migrations.generated import check_generated, tidy_file

    script = (
        next((item for item in created if item is not None), None) if isinstance(created, list) else created
    )
    if script is None:
        return None
    path = Path(script.path)
    changed, warning = tidy_file(path, settings.root)
    # Unchanged, the module Alembic loaded right after writing it is this file: not run again.
    check_generated(path, None if changed else getattr(script, "module", None))
    return Published(_link_exclusively(path, settings.migrations_dir), warning)


def _stamp_of(path: Path) -> datetime | None:
    try:
        return datetime.strptime(path.name[:STAMP_LENGTH], STAMP_FORMAT)
    except ValueError:
        return None


def _link_exclusively(path: Path, directory: Path) -> Path:
    """Two runs within one second (even with the same name) get two files, in creation order: the
    name is chosen under a lock on the directory and created with link(), which, like O_EXCL,
    fails rather than replace a file (one another tool wrote meanwhile), and is never half written."""
    import fcntl

    descriptor = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        others = [stamp for other in directory.glob("*.py") if (stamp := _stamp_of(other))]
        stamp = _stamp_of(path) or datetime.now()
        if others and max(others) >= stamp:
            stamp = max(others) + timedelta(seconds=1)
        for _ in range(PUBLISH_TRIES):
            target = directory / (stamp.strftime(STAMP_FORMAT) + path.name[STAMP_LENGTH:])
            try:
                os.link(path, target)
                return target
            except FileExistsError:
                stamp += timedelta(seconds=1)
        raise OperationFailed(
            f"no free file name for {path.name} in {directory.name}/ after {PUBLISH_TRIES} tries",
            hint="another process keeps creating migrations; try again",
        )
    finally:
        os.close(descriptor)
