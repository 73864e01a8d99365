"""Pure planning: (graph, applied state, options) -> the steps of an upgrade or a rollback.

No database and no Alembic: every rule about what runs, in which order, and which alembic_version
rows each step leaves behind lives here, so it is unit-tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from manage_migrations.core.graph import RevisionGraph, ordered_by
from manage_migrations.errors import UsageError


@dataclass(frozen=True)
class Step:
    """One migration to run, and the alembic_version rows once it has run."""

    revision: str
    name: str
    path: Path
    upgrade: bool
    heads_after: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    upgrade: bool
    start: tuple[str, ...]
    steps: tuple[Step, ...]
    batch: int | None = None

    @property
    def end(self) -> tuple[str, ...]:
        return self.steps[-1].heads_after if self.steps else self.start


@dataclass(frozen=True)
class Applied:
    """What the database has applied: alembic_version's rows (the truth) and the ledger's batches,
    `None` for an applied revision the ledger has no row for (applied by plain Alembic, say)."""

    version_heads: tuple[str, ...]
    batches: Mapping[str, int | None]
    ledger_order: Sequence[str] = ()


@dataclass(frozen=True)
class Selection:
    """Which applied migrations a rollback undoes; all of them when `everything` is set."""

    step: int | None = None
    batch: int | None = None
    to: str | None = None
    everything: bool = False


def upgrade_plan(graph: RevisionGraph, version_heads: tuple[str, ...], target: str | None = None) -> Plan:
    """Everything not applied that the target (default: every head) needs, parents first."""
    applied = set(graph.applied(version_heads))
    wanted = graph.ancestors([target] if target is not None else graph.heads())
    heads = set(graph.version_heads(applied))
    steps = []
    for revision in graph.in_order(wanted - applied):
        heads -= set(graph.parents(revision))
        heads.add(revision)
        header = graph.revisions[revision]
        steps.append(Step(revision, header.name, header.path, True, tuple(sorted(heads))))
    return Plan(True, tuple(sorted(version_heads)), tuple(steps))


def rollback_plan(graph: RevisionGraph, applied: Applied, selection: Selection) -> Plan:
    """The applied migrations the selection names, newest first, each undone only after
    everything applied that depends on it."""
    members = graph.applied(applied.version_heads)
    order = application_order(graph, members, applied.ledger_order)
    chosen = _select(graph, order, members, applied, selection)
    remaining = set(members)
    heads = set(graph.version_heads(members))
    steps = []
    for revision in reversed(order):
        if revision not in chosen:
            continue
        remaining.discard(revision)
        heads = _heads_without(graph, heads, revision, remaining)
        header = graph.revisions[revision]
        steps.append(Step(revision, header.name, header.path, False, tuple(sorted(heads))))
    shown = applied.batches.get(steps[0].revision) if steps and _by_batch(selection) else None
    return Plan(False, tuple(sorted(applied.version_heads)), tuple(steps), shown)


def _heads_without(graph: RevisionGraph, heads: set[str], revision: str, remaining: set[str]) -> set[str]:
    """The alembic_version rows once `revision` (a head) is undone: its parents become heads
    unless another head still needs them. Incremental, so undoing a long history stays linear."""
    others = heads - {revision}
    parents = {parent for parent in graph.parents(revision) if parent in remaining}
    if len(parents) > 1:  # a merge: a parent another parent needs is no head
        parents = set(graph.version_heads(parents))
    if not others:
        return parents
    covered = graph.ancestors(others)
    return others | {parent for parent in parents if parent not in covered}


def application_order(
    graph: RevisionGraph, members: frozenset[str], ledger_order: Sequence[str]
) -> list[str]:
    """The applied revisions oldest first: parents before children, otherwise in the order the
    ledger recorded them, revisions without a ledger row (applied before the tool) first."""
    position = {revision: index for index, revision in enumerate(ledger_order) if revision in members}
    graph_position = {revision: index for index, revision in enumerate(graph.order)}

    def key(revision: str) -> tuple[int, int]:
        return (position.get(revision, -1), graph_position[revision])

    parents = {revision: {p for p in graph.parents(revision) if p in members} for revision in members}
    return ordered_by(parents, key)


def _by_batch(selection: Selection) -> bool:
    return selection.step is None and selection.to is None and not selection.everything


def _select(
    graph: RevisionGraph,
    order: list[str],
    members: frozenset[str],
    applied: Applied,
    selection: Selection,
) -> set[str]:
    if selection.everything:
        return set(order)
    if selection.to is not None:
        revision = graph.resolve(selection.to)
        if revision not in members:
            raise UsageError(
                f"{graph.name(revision)} is not applied, so there is nothing to roll back to",
                hint="see migrate:status for the applied migrations",
            )
        return set(members) - graph.ancestors([revision])
    if selection.step is not None:
        return set(order[len(order) - selection.step :]) if selection.step else set()
    if not order:
        return set()
    known = {revision: batch for revision in order if (batch := applied.batches.get(revision)) is not None}
    if not known:
        raise UsageError(
            "no batch is recorded for the applied migrations (they were applied without manage.py)",
            hint="say how far to go back: --step N, or --to MIGRATION",
        )
    newest = max(known.values())
    wanted = newest if selection.batch is None else selection.batch
    if wanted != newest:
        raise UsageError(
            f"batch {wanted} is not the newest batch still applied (that is {newest})",
            hint="roll back the newer batches first, or use --step N",
        )
    chosen = {revision for revision, batch in known.items() if batch == wanted}
    _refuse_unknown_descendants(graph, order, chosen, applied)
    return chosen


def _refuse_unknown_descendants(
    graph: RevisionGraph, order: list[str], chosen: set[str], applied: Applied
) -> None:
    """Undoing a batch must not strand a newer migration that needs it: unknown-batch revisions
    are never 'the last batch', so say how to include them."""
    for revision in order:
        if revision in chosen:
            continue
        needs = set(graph.parents(revision)) & chosen
        if needs:
            if applied.batches.get(revision) is None:
                raise UsageError(
                    f"{graph.name(revision)} has no recorded batch but depends on the last batch "
                    f"({graph.name(sorted(needs)[0])})",
                    hint="say how far to go back: --step N, or --to MIGRATION",
                )
            chosen.add(revision)
