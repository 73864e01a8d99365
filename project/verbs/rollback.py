"""migrate:rollback, migrate:reset and migrate:refresh: undo applied migrations chosen by the planner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from manage_migrations import guard
from manage_migrations.core import executor, interrupts, planner, preflight, session
from manage_migrations.core.events import PhaseDone, ProgressCallback, RunResult, RunStarted, ignore
from manage_migrations.verbs.migrate import MigrateOptions, _execute, run_migrate

if TYPE_CHECKING:
    from manage_migrations.core.graph import RevisionGraph
    from manage_migrations.core.session import Session
    from manage_migrations.guard import Confirm
    from manage_migrations.settings import Settings


def rollback(
    settings: Settings,
    selection: planner.Selection,
    *,
    fake: bool = False,
    confirm: Confirm | None = None,
    on_progress: ProgressCallback = ignore,
    action: str = "migrate:rollback",
) -> RunResult:
    """Undo the last batch, the last `step` migrations, batch `batch` if it is the newest,
    everything applied after `to`, or everything."""
    guard.refuse_if_prohibited(settings, action)
    graph = preflight.load_graph(settings)
    with session.writing(settings, on_progress) as current:
        return run_rollback(current, graph, selection, fake=fake, confirm=confirm, on_progress=on_progress)


def run_rollback(
    current: Session,
    graph: RevisionGraph,
    selection: planner.Selection,
    *,
    fake: bool,
    confirm: Confirm | None,
    on_progress: ProgressCallback,
) -> RunResult:
    from manage_migrations.squash import refuse_rolling_back

    state = preflight.read_state(current, graph, on_progress, repair=True)
    preflight.refuse_unresolved_failures(current, state)
    plan = planner.rollback_plan(graph, state.applied(), selection)
    refuse_rolling_back(graph, [step.revision for step in reversed(plan.steps)])
    if not plan.steps:
        return RunResult(current.shown_url, None, ())
    if confirm is not None and not fake:
        _consent_to_rollback(current, plan, state.reconciled.unrecorded, confirm)
    interrupts.defer()
    on_progress(RunStarted(current.shown_url, plan.batch, len(plan.steps), False, fake=fake))
    outcome = _execute(current, graph, plan, executor.RunOptions(None, fake=fake), on_progress)
    return RunResult(current.shown_url, plan.batch, outcome.done, outcome.failed, fake=fake)


def _consent_to_rollback(
    current: Session, plan: planner.Plan, unrecorded: tuple[str, ...], confirm: Confirm
) -> None:
    """Production asks before any rollback; anywhere, undoing migrations manage.py did not apply
    (taken over from plain Alembic: no ledger row, batch unknown) asks too, as nobody chose them
    as a batch."""
    count = len(plan.steps)
    action = f"roll back {count} migration{'s' if count > 1 else ''}"
    foreign = [step.name for step in plan.steps if step.revision in unrecorded]
    if foreign:
        which = "that" if len(foreign) == count else f"including {len(foreign)} that"
        action += f" {which} manage.py did not apply (batch unknown: {', '.join(foreign)})"
    if preflight.guarded(current):
        preflight.consent(current, action, confirm)
    elif foreign:
        guard.require_confirmation(
            f"{action}: are you sure?",
            confirm,
            f"refused to {action} without confirmation; the database was not touched",
        )


def refresh(
    settings: Settings,
    *,
    step: int | None = None,
    confirm: Confirm | None = None,
    on_progress: ProgressCallback = ignore,
) -> tuple[RunResult, RunResult | None]:
    """Roll back everything (or the last `step` migrations), then migrate; no migrate after a failure.
    The rollback's summary is reported (PhaseDone) before the migrate run starts."""
    guard.refuse_if_prohibited(settings, "migrate:refresh")
    graph = preflight.load_graph(settings)
    with session.writing(settings, on_progress) as current:
        selection = planner.Selection(step=step, everything=step is None)
        undone = run_rollback(current, graph, selection, fake=False, confirm=confirm, on_progress=on_progress)
        if undone.failed is not None:
            return undone, None
        on_progress(PhaseDone(undone))
        return undone, run_migrate(current, graph, MigrateOptions(), None, on_progress)
