"""Checks every command runs before it plans: the history fits the files, no unresolved failure,
one head, and consent where the production guard applies. Reads state once and hands it down."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from manage_migrations import guard, ledger
from manage_migrations.core import store
from manage_migrations.core.events import LedgerReconciled, ProgressCallback, ignore
from manage_migrations.core.graph import RevisionGraph
from manage_migrations.errors import HistoryError
from manage_migrations.integrity import EditedMigration, edited_migrations, history_problem
from manage_migrations.program import command_prefix, resolve_command

if TYPE_CHECKING:
    from manage_migrations.core.session import Session
    from manage_migrations.guard import Confirm
    from manage_migrations.settings import Settings


@dataclass(frozen=True)
class State:
    """The graph and the database's history, read once per command and passed down."""

    graph: RevisionGraph
    history: store.History
    reconciled: store.Reconciled
    edited: tuple[EditedMigration, ...]
    problem: HistoryError | None = None  # read with strict=False: what strict would have raised

    @property
    def version_heads(self) -> tuple[str, ...]:
        return self.history.version_heads

    def applied(self) -> store.Applied:
        return self.reconciled.as_applied(self.version_heads)


def load_graph(settings: Settings) -> RevisionGraph:
    return RevisionGraph.load(settings.migrations_dir, settings.root)


def read_state(
    session: Session,
    graph: RevisionGraph,
    on_progress: ProgressCallback = ignore,
    *,
    repair: bool = False,
    strict: bool = True,
) -> State:
    """History checked against the files; a ledger that disagrees with alembic_version is
    reconciled (and, with `repair`, corrected in the database) with a one-line note."""
    history = store.read(session.connection)
    problem = history_problem(graph, history.version_heads, {row.revision: row.name for row in history.rows})
    if problem is not None and strict:
        raise problem
    reconciled = store.reconcile(graph, history)
    if reconciled.note is not None or reconciled.warnings:
        on_progress(LedgerReconciled(reconciled.note, reconciled.warnings))
        if repair and reconciled.stale:
            with session.connection.begin():
                store.forget_stale(session.connection, reconciled)
    return State(graph, history, reconciled, edited_migrations(graph, list(reconciled.rows)), problem)


def refuse_unresolved_failures(session: Session, state: State) -> None:
    """A migration that failed outside a transaction left unknown state: a person must look first."""
    if not state.history.failed:
        return
    try:
        failure = ledger.read_failures(session.connection)[0]
    finally:
        session.connection.rollback()
    raise HistoryError(
        f"{failure.name} failed outside a transaction ({failure.error}); "
        "what it did before the error was not rolled back",
        hint=f"inspect the objects it creates or changes, undo or finish its work by hand, then run "
        f"`{resolve_command(failure.revision)}`",
    )


def refuse_several_heads(graph: RevisionGraph) -> None:
    heads = graph.heads()
    if len(heads) > 1:
        raise HistoryError(
            f"the migration history has {len(heads)} heads: {', '.join(graph.names(heads))}",
            hint=f"write the merge migration with `{command_prefix()} make:migration --merge`",
        )


def recorded_environment(session: Session) -> str | None:
    try:
        return ledger.read_environment(session.connection)
    finally:
        session.connection.rollback()


def guarded(session: Session) -> bool:
    """Whether the production guard applies to this run and database at all."""
    return guard.applies(session.settings, recorded_environment(session))


def consent(session: Session, action: str, confirm: Confirm) -> None:
    guard.require_consent(session.settings, recorded_environment(session), action, confirm)


def record_environment(session: Session) -> None:
    """Remember where the database was migrated; once production, always production."""
    connection = session.connection
    with connection.begin():
        if not guard.is_production(ledger.read_environment(connection)):
            ledger.record_environment(connection, session.settings.environment)
