"""migrate, migrate:fresh and migrate:refresh: read state once, plan, consent, execute."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from manage_migrations import guard
from manage_migrations.core import executor, interrupts, planner, preflight, pretend, session, store
from manage_migrations.core.events import (
    Dropping,
    DumpLoaded,
    ProgressCallback,
    RunResult,
    RunStarted,
    StepDone,
    ignore,
)

if TYPE_CHECKING:
    from manage_migrations.core.graph import RevisionGraph
    from manage_migrations.core.session import Session
    from manage_migrations.guard import Confirm
    from manage_migrations.settings import Settings
    from manage_migrations.wipe import Dropped


@dataclass(frozen=True)
class MigrateOptions:
    target: str | None = None
    fake: bool = False
    batch_per_step: bool = False
    pretend: bool = False
    use_dump: bool = True


@dataclass(frozen=True)
class FreshResult:
    """migrate:fresh: what was dropped, then the migrate run."""

    dropped: Dropped
    run: RunResult


def migrate(
    settings: Settings,
    options: MigrateOptions = MigrateOptions(),
    confirm: Confirm | None = None,
    on_progress: ProgressCallback = ignore,
) -> RunResult:
    """Apply pending migrations (up to a target) as one batch.

    An empty database first gets the newest schema dump, if there is one (unless `use_dump` is off).
    """
    graph = preflight.load_graph(settings)
    with session.writing(settings, on_progress) as current:
        return run_migrate(current, graph, options, confirm, on_progress)


def run_migrate(
    current: Session,
    graph: RevisionGraph,
    options: MigrateOptions,
    confirm: Confirm | None,
    on_progress: ProgressCallback,
) -> RunResult:
    state = preflight.read_state(current, graph, on_progress, repair=not options.pretend)
    preflight.refuse_unresolved_failures(current, state)
    if options.target is None:
        preflight.refuse_several_heads(graph)
    target = graph.resolve(options.target) if options.target is not None else None
    # Decided before a dump is loaded: its history rows join this run's batch, as if it had run them.
    batch = store.next_batch(state.reconciled.rows)
    fresh_database = options.use_dump and not options.pretend and not options.fake and not state.version_heads
    if fresh_database and _load_dump(current, graph, batch, on_progress):
        state = preflight.read_state(current, graph, on_progress, repair=True)
    plan = planner.upgrade_plan(graph, state.version_heads, target)
    if not plan.steps:
        return RunResult(current.shown_url, None, (), edited=state.edited)
    if confirm is not None and not options.pretend and not options.fake and preflight.guarded(current):
        _consent_to_drops(current, plan, confirm)
    if not options.pretend:
        interrupts.defer()  # from here on, a signal is answered with where the database stands
    on_progress(
        RunStarted(
            current.shown_url, batch, len(plan.steps), True, pretend=options.pretend, fake=options.fake
        )
    )
    if options.pretend:
        steps: list[StepDone] = []

        def shown(done: StepDone) -> None:
            steps.append(done)
            on_progress(done)

        pretend.online(current.connection, plan, current.settings.root, shown)
        return RunResult(current.shown_url, batch, tuple(steps), pretend=True, edited=state.edited)
    outcome = _execute(
        current, graph, plan, executor.RunOptions(batch, options.batch_per_step, options.fake), on_progress
    )
    if outcome.done:
        preflight.record_environment(current)
    return RunResult(
        current.shown_url, batch, outcome.done, outcome.failed, edited=state.edited, fake=options.fake
    )


def _execute(
    current: Session,
    graph: RevisionGraph,
    plan: planner.Plan,
    options: executor.RunOptions,
    on_progress: ProgressCallback,
) -> executor.Outcome:
    runner = executor.Executor(
        current.connection,
        current.settings.root,
        current.scrub,
        on_progress,
        current.verify_lock,
        graph.names,
        current.shown_url,
    )
    return runner.run(plan, options)


def _consent_to_drops(current: Session, plan: planner.Plan, confirm: Confirm) -> None:
    """Destruction is judged from what the migrations would run, rendered offline."""
    judged = (
        (step.name, guard.why_destructive(step, current.backend, current.settings.root))
        for step in plan.steps
    )
    dropping = [f"{name}: {why}" for name, why in judged if why is not None]
    if dropping:
        preflight.consent(current, f"run migrations that may destroy data ({'; '.join(dropping)})", confirm)


def _load_dump(current: Session, graph: RevisionGraph, batch: int, on_progress: ProgressCallback) -> bool:
    """Load the dump for this dialect into a database that has no tables at all; the result
    equals migrating from scratch: one batch, and the environment recorded."""
    from sqlalchemy import inspect

    from manage_migrations import schema_dump, squash

    path = schema_dump.dump_path(current.settings.migrations_dir, schema_dump.dialect_of(current.url))
    if not path.is_file():
        return False
    has_tables = bool(inspect(current.connection).get_table_names())
    current.connection.rollback()
    if has_tables:
        return False
    squash.refuse_stale_dump(path, graph)
    with current.connection.begin():
        statements = schema_dump.load_dump(current.connection, path, batch=batch)
    on_progress(DumpLoaded(path, statements, current.shown_url))
    preflight.record_environment(current)
    return True


def fresh(
    settings: Settings,
    cascade: bool = False,
    confirm: Confirm | None = None,
    on_progress: ProgressCallback = ignore,
) -> FreshResult:
    """Drop every object in the schemas the project owns, then migrate from scratch."""
    from manage_migrations import wipe

    guard.refuse_if_prohibited(settings, "migrate:fresh")
    # Every migration is read before anything is dropped: a broken history stops fresh early.
    graph = preflight.load_graph(settings)
    preflight.refuse_several_heads(graph)
    with session.writing(settings, on_progress) as current:
        if confirm is not None:
            preflight.consent(current, "drop every table", confirm)
        on_progress(Dropping(current.shown_url))
        with current.connection.begin():
            dropped = wipe.drop_owned(current.connection, settings, cascade=cascade)
        on_progress(dropped)
        try:
            run = run_migrate(current, graph, MigrateOptions(), None, on_progress)
        finally:
            wipe.restore_mark(current.connection, dropped)
        return FreshResult(dropped, run)
