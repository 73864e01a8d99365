"""The planner without a database: which migrations an upgrade or a rollback runs, in which order,
and which alembic_version rows each step leaves (the same rows Alembic itself would write)."""

from __future__ import annotations

from pathlib import Path

import pytest

from manage_migrations.core.graph import RevisionGraph, RevisionHeader, _topological
from manage_migrations.core.planner import Applied, Selection, rollback_plan, upgrade_plan
from manage_migrations.errors import HistoryError, OperationFailed, UsageError
from manage_migrations.squash import refuse_rolling_back


def graph_of(
    *specs: tuple[str, tuple[str, ...]] | tuple[str, tuple[str, ...], tuple[str, ...]],
) -> RevisionGraph:
    """(revision, down revisions[, depends_on]) in creation order; file names keep that order."""
    revisions = {}
    for index, spec in enumerate(specs):
        revision, down = spec[0], spec[1]
        depends = spec[2] if len(spec) > 2 else ()  # type: ignore[misc]
        path = Path(f"2026_01_01_{index:06d}_{revision}.py")
        revisions[revision] = RevisionHeader(revision, down, depends, path)
    return RevisionGraph(revisions, _topological(revisions))


def squash_graph() -> RevisionGraph:
    """`s` replaces the pruned `p1`, `p2`; `t` came after the prune."""
    revisions = {
        "s": RevisionHeader("s", (), (), Path("2026_01_01_000002_s.py"), replaces=("p1", "p2")),
        "t": RevisionHeader("t", ("s",), (), Path("2026_01_01_000003_t.py")),
    }
    return RevisionGraph(revisions, _topological(revisions))


LINEAR = graph_of(("a", ()), ("b", ("a",)), ("c", ("b",)), ("d", ("c",)))


def steps(plan) -> list[tuple[str, tuple[str, ...]]]:
    return [(step.revision, step.heads_after) for step in plan.steps]


def test_upgrade_from_empty_applies_everything_in_order_moving_one_head() -> None:
    plan = upgrade_plan(LINEAR, ())
    assert steps(plan) == [("a", ("a",)), ("b", ("b",)), ("c", ("c",)), ("d", ("d",))]


def test_upgrade_to_a_target_stops_there() -> None:
    assert [step.revision for step in upgrade_plan(LINEAR, ("a",), "c").steps] == ["b", "c"]


def test_upgrade_with_nothing_pending_is_empty() -> None:
    assert upgrade_plan(LINEAR, ("d",)).steps == ()


def test_a_dependency_is_applied_first_and_absorbed_into_the_head() -> None:
    """History a; b on its own branch; c revises a and depends on b (issue 11, defect 1)."""
    graph = graph_of(("a", ()), ("b", ()), ("c", ("a",), ("b",)))
    plan = upgrade_plan(graph, (), "c")
    assert steps(plan) == [("a", ("a",)), ("b", ("a", "b")), ("c", ("c",))]
    assert graph.applied(("c",)) == {"a", "b", "c"}


def test_reset_undoes_a_dependency_too_and_ends_empty() -> None:
    graph = graph_of(("a", ()), ("b", ()), ("c", ("a",), ("b",)))
    applied = Applied(("c",), {"a": 1, "b": 1, "c": 1}, ("a", "b", "c"))
    plan = rollback_plan(graph, applied, Selection(everything=True))
    assert steps(plan) == [("c", ("a", "b")), ("b", ("a",)), ("a", ())]


def test_rollback_of_the_last_batch_newest_first() -> None:
    applied = Applied(("d",), {"a": 1, "b": 1, "c": 2, "d": 2}, ("a", "b", "c", "d"))
    plan = rollback_plan(LINEAR, applied, Selection())
    assert steps(plan) == [("d", ("c",)), ("c", ("b",))]
    assert plan.batch == 2


def test_rollback_step_n_takes_the_last_n_across_batches() -> None:
    applied = Applied(("d",), {"a": 1, "b": 1, "c": 2, "d": 2}, ("a", "b", "c", "d"))
    assert [step.revision for step in rollback_plan(LINEAR, applied, Selection(step=3)).steps] == [
        "d",
        "c",
        "b",
    ]


def test_rollback_of_an_older_batch_is_refused() -> None:
    applied = Applied(("d",), {"a": 1, "b": 1, "c": 2, "d": 2}, ("a", "b", "c", "d"))
    with pytest.raises(UsageError, match="not the newest batch"):
        rollback_plan(LINEAR, applied, Selection(batch=1))


def test_rollback_to_a_migration_undoes_everything_after_it() -> None:
    applied = Applied(("d",), {"a": 1, "b": 1, "c": 2, "d": 2}, ("a", "b", "c", "d"))
    plan = rollback_plan(LINEAR, applied, Selection(to="b"))
    assert steps(plan) == [("d", ("c",)), ("c", ("b",))]
    assert plan.batch is None


def test_rollback_to_an_unapplied_migration_is_refused() -> None:
    with pytest.raises(UsageError, match="not applied"):
        rollback_plan(LINEAR, Applied(("b",), {"a": 1, "b": 1}, ("a", "b")), Selection(to="c"))


def test_rolling_back_a_merge_restores_both_branch_heads() -> None:
    graph = graph_of(("a", ()), ("b", ("a",)), ("c", ("a",)), ("m", ("b", "c")))
    applied = Applied(("m",), {"a": 1, "b": 1, "c": 1, "m": 2}, ("a", "b", "c", "m"))
    assert steps(rollback_plan(graph, applied, Selection())) == [("m", ("b", "c"))]
    plan = rollback_plan(graph, applied, Selection(step=2))
    assert plan.steps[0].heads_after == ("b", "c")
    assert len(plan.steps[1].heads_after) == 1  # the newer branch went, the other head stays


def test_unknown_batches_are_never_the_last_batch() -> None:
    """Applied by plain Alembic (no ledger rows): rollback asks how far instead of guessing."""
    applied = Applied(("d",), {"a": None, "b": None, "c": None, "d": None}, ())
    with pytest.raises(UsageError, match="no batch is recorded"):
        rollback_plan(LINEAR, applied, Selection())
    assert [step.revision for step in rollback_plan(LINEAR, applied, Selection(step=1)).steps] == ["d"]


def test_a_newer_migration_without_a_batch_blocks_undoing_the_batch_it_needs() -> None:
    applied = Applied(("d",), {"a": 1, "b": 1, "c": 2, "d": None}, ("a", "b", "c"))
    with pytest.raises(UsageError, match="no recorded batch"):
        rollback_plan(LINEAR, applied, Selection())


def test_rollback_order_follows_the_ledger_between_branches() -> None:
    """Two independent branches: the one applied last is undone first."""
    graph = graph_of(("a", ()), ("x", ()))
    applied = Applied(("a", "x"), {"a": 2, "x": 1}, ("x", "a"))
    assert [step.revision for step in rollback_plan(graph, applied, Selection(step=1)).steps] == ["a"]


def test_rollback_past_a_squash_migration_is_refused() -> None:
    graph = squash_graph()
    plan = rollback_plan(graph, Applied(("t",), {"s": 1, "t": 1}, ("s", "t")), Selection(everything=True))
    with pytest.raises((OperationFailed, HistoryError, UsageError)):
        refuse_rolling_back(graph, [step.revision for step in reversed(plan.steps)])
    short = rollback_plan(graph, Applied(("t",), {"s": 1, "t": 2}, ("s", "t")), Selection())
    refuse_rolling_back(graph, [step.revision for step in reversed(short.steps)])


def test_a_cycle_is_a_history_error_naming_the_revisions() -> None:
    revisions = {
        "a": RevisionHeader("a", ("b",), (), Path("2026_01_01_000001_a.py")),
        "b": RevisionHeader("b", ("a",), (), Path("2026_01_01_000002_b.py")),
    }
    with pytest.raises(
        HistoryError, match=r"cycle: 2026_01_01_000001_a \(a\) -> 2026_01_01_000002_b \(b\) -> "
    ):
        _topological(revisions)
