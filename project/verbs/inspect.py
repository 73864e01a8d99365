"""Read-only verbs: migrate:check, migrate:history, migrate:sql, checksum mismatches."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from manage_migrations import checks
from manage_migrations.core import planner, preflight, pretend, session

if TYPE_CHECKING:
    from manage_migrations.integrity import EditedMigration
    from manage_migrations.settings import Settings


# Why the models were not compared, per problem kind: any problem stops the comparison, and the
# user must not read "needs a database at head" when the database is at head.
SKIPPED_BECAUSE = {
    "multiple_heads": "the history has several heads",
    "pending": "the database is not at head",
    "missing_file": "applied migrations have no file",
    "edited_file": "applied migrations were edited since they ran",
}


@dataclass(frozen=True)
class CheckResult:
    """migrate:check: every problem found; `drift_checked` is false when another problem stopped
    the comparison of models and migrations, and `drift_skipped` says which."""

    database: str
    problems: tuple[checks.Problem, ...]
    drift_checked: bool
    drift_skipped: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def check(settings: Settings) -> CheckResult:
    """The CI gate: one head, nothing pending, no applied file missing, models match migrations."""
    from manage_migrations import history
    from manage_migrations.discovery import database_models
    from manage_migrations.verbs.make import autogenerate

    graph = preflight.load_graph(settings)
    graph.load_all(settings.root)
    with session.reading(settings) as current:
        state = preflight.read_state(current, graph, strict=False)
        rows_by_state = history.rows_for(graph, state)
        problems = [
            *checks.multiple_heads(graph.names(graph.heads())),
            *checks.pending(row.name for row in rows_by_state if row.state == "Pending"),
            *checks.missing_files(row.name for row in rows_by_state if row.state == "Missing"),
            *checks.edited_files(row.name for row in rows_by_state if row.edited),
        ]
        if problems:
            reasons = "; ".join(dict.fromkeys(SKIPPED_BECAUSE[problem.kind] for problem in problems))
            return CheckResult(current.shown_url, tuple(problems), False, reasons)
        from manage_migrations.alembic_env.autogen import AutogenOutcome, AutogenRequest

        models = database_models(settings)
        outcome = AutogenOutcome()
        autogenerate(current, models, "check", AutogenRequest(drop_empty=True, dry_run=True), outcome)
        return CheckResult(current.shown_url, tuple(checks.drift(outcome.changes)), True)


@dataclass(frozen=True)
class HistoryEntry:
    """One revision as Alembic users know it: id, parents, message, and where it sits."""

    revision: str
    parents: tuple[str, ...]
    name: str
    message: str
    is_head: bool
    is_merge: bool


def history(settings: Settings) -> tuple[HistoryEntry, ...]:
    """The revision graph, newest first; reads files only, never the database."""
    graph = preflight.load_graph(settings)
    heads = set(graph.heads())
    return tuple(
        HistoryEntry(
            header.revision,
            header.down_revisions,
            header.name,
            _message(header.path),
            header.revision in heads,
            len(header.down_revisions) > 1,
        )
        for header in reversed(graph.ordered())
    )


def _message(path: Path) -> str:
    """The file's docstring, as Alembic shows it (its first line is the migration's message)."""
    try:
        return (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "").strip()
    except (SyntaxError, ValueError):
        return ""


@dataclass(frozen=True)
class SqlResult:
    name: str
    upgrade: bool
    statements: tuple[str, ...]


def sql(settings: Settings, target: str, *, upgrade: bool = True) -> SqlResult:
    """The SQL of one migration in Alembic's offline mode: no connection is opened."""
    from manage_migrations import database

    graph = preflight.load_graph(settings)
    revision = graph.resolve(target)
    header = graph.revisions[revision]
    heads = (revision,) if upgrade else graph.version_heads(graph.ancestors(graph.parents(revision)))
    step = planner.Step(revision, header.name, header.path, upgrade, heads)
    dialect = database.parse_url(settings.database_url, settings.root).backend
    return SqlResult(header.name, upgrade, pretend.render(dialect, step, settings.root))


def checksum_mismatches(settings: Settings) -> tuple[EditedMigration, ...]:
    """Applied migrations whose file changed since it ran (for migrate:check); reads only."""
    graph = preflight.load_graph(settings)
    with session.reading(settings) as current:
        return preflight.read_state(current, graph).edited
