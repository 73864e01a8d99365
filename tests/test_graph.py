"""The header-reading revision index gives the same graph as Alembic's own loader."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from helpers import write_revision

from manage_migrations import alembic_bridge
from manage_migrations.core.graph import RevisionGraph
from manage_migrations.errors import HistoryError
from manage_migrations.settings import resolve_settings


def _branched_history(migrations: Path) -> None:
    """a -> (b1, b2) -> merge m -> c, plus d branching off a (a second head)."""
    write_revision(migrations, "2026_01_01_000001", "a", "aaaa", None, "pass")
    write_revision(migrations, "2026_01_01_000002", "b1", "bbb1", "aaaa", "pass")
    write_revision(migrations, "2026_01_01_000003", "b2", "bbb2", "aaaa", "pass")
    write_revision(migrations, "2026_01_01_000004", "merge", "mmmm", ("bbb1", "bbb2"), "pass")
    write_revision(migrations, "2026_01_01_000005", "c", "cccc", "mmmm", "pass")
    path = migrations / "2026_01_01_000006_d.py"
    path.write_text(
        '"""d"""\nPARENT = "aaaa"\nrevision: str = "dddd"\n'
        "down_revision = PARENT if True else None  # not a literal: needs executing\n"
        "branch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n    pass\n\n\n"
        "def downgrade():\n    pass\n"
    )
    multi_line = migrations / "2026_01_01_000007_e.py"
    multi_line.write_text(
        'revision = "eeee"\ndown_revision = (\n    "cccc",\n)\n\n\ndef upgrade():\n    pass\n'
    )


def _alembic_script(root: Path) -> ScriptDirectory:
    settings = resolve_settings(root=root, environ={})
    return alembic_bridge.load_script(alembic_bridge.make_config(settings))


def _alembic_ancestors(script: ScriptDirectory, heads: tuple[str, ...]) -> set[str]:
    if not heads:
        return set()
    return {rev.revision for rev in script.iterate_revisions(heads, "base")}


@pytest.mark.parametrize(
    "heads",
    [
        (),
        ("aaaa",),
        ("bbb1",),
        ("bbb1", "bbb2"),
        ("mmmm",),
        ("cccc", "dddd"),
        ("eeee", "dddd"),
        ("bbb2", "dddd"),
    ],
)
def test_same_heads_order_and_applied_sets_as_alembic(tmp_path: Path, heads: tuple[str, ...]) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    _branched_history(migrations)
    script = _alembic_script(tmp_path)

    index = RevisionGraph.load(migrations, tmp_path)

    assert set(index.heads()) == set(script.get_heads())
    assert {rev: h.down_revisions for rev, h in index.revisions.items()} == {
        rev.revision: tuple(rev._normalized_down_revisions) for rev in script.walk_revisions()
    }
    assert index.ancestors(heads) == _alembic_ancestors(script, heads)
    order = [header.revision for header in index.ordered()]
    assert all(
        order.index(parent) < order.index(h.revision) for h in index.ordered() for parent in h.down_revisions
    )


def test_unknown_revision_is_a_history_error(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    _branched_history(migrations)
    index = RevisionGraph.load(migrations, tmp_path)
    with pytest.raises(HistoryError, match="revision ffff, which has no migration file"):
        index.ancestors(("ffff",))
