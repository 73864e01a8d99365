"""The built-in migration tests (`pytest --migrations`), each on a throwaway database of its own.

They drive the tool's own verbs (migrate with a target, migrate:rollback --step 1), so what is
tested is what `manage.py` does; a failure names the migration that broke."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from manage_migrations.core import planner, preflight, session
from manage_migrations.errors import ManageError
from manage_migrations.program import command_prefix
from manage_migrations.testing import schema

if TYPE_CHECKING:
    from manage_migrations.core.events import RunResult
    from manage_migrations.core.graph import RevisionGraph
    from manage_migrations.settings import Settings
    from manage_migrations.testing.databases import Throwaway


class MigrationTestFailed(Exception):
    """A built-in migration test failed; the message says which migration and why."""


class MigrationTestSkipped(Exception):
    """A built-in migration test cannot judge this history (another test reports why)."""


@dataclass(frozen=True)
class MigrationTest:
    name: str
    doc: str
    run: Callable[[Throwaway], None]


@contextmanager
def _fresh(databases: Throwaway) -> Iterator[tuple[Settings, RevisionGraph]]:
    url = databases.create()
    try:
        settings = databases.settings(url)
        yield settings, preflight.load_graph(settings)
    finally:
        databases.drop(url)


def _outcome(doing: str, call: Callable[[], RunResult]) -> None:
    try:
        result = call()
    except ManageError as exc:
        hint = f" (hint: {exc.hint})" if exc.hint else ""
        raise MigrationTestFailed(f"{doing}: {exc.message}{hint}") from exc
    if result.failed is not None:
        raise MigrationTestFailed(f"{doing}: {result.failed.name} failed: {result.failed.error}")


def _upgrade(settings: Settings, target: str, doing: str) -> None:
    from manage_migrations.verbs.migrate import MigrateOptions, migrate

    # No schema dump: the migrations themselves are under test.
    _outcome(doing, lambda: migrate(settings, MigrateOptions(target=target, use_dump=False)))


def _downgrade(settings: Settings, doing: str, selection: planner.Selection) -> None:
    from manage_migrations.verbs.rollback import rollback

    _outcome(doing, lambda: rollback(settings, selection))


def _schema(settings: Settings) -> schema.Schema:
    with session.reading(settings) as current:
        try:
            return schema.snapshot(current.connection)
        finally:
            current.connection.rollback()


def _version_heads(settings: Settings) -> tuple[str, ...]:
    from manage_migrations.core import store

    with session.reading(settings) as current:
        try:
            return store.read(current.connection).version_heads
        finally:
            current.connection.rollback()


def _listing(lines: list[str]) -> str:
    return "".join(f"\n    {line}" for line in lines)


def single_head(databases: Throwaway) -> None:
    graph = preflight.load_graph(databases.settings())
    heads = graph.heads()
    if len(heads) > 1:
        raise MigrationTestFailed(
            f"the migration history has {len(heads)} heads: {', '.join(graph.names(heads))}; "
            f"write the merge migration with `{command_prefix()} make:migration --merge`"
        )


def upgrade(databases: Throwaway) -> None:
    with _fresh(databases) as (settings, graph):
        for head in graph.heads():
            _upgrade(settings, head, f"upgrading an empty database to {graph.name(head)}")
        applied = _version_heads(settings)
        if set(applied) != set(graph.heads()):
            shown = ", ".join(graph.names(applied)) or "no revision"
            raise MigrationTestFailed(f"after upgrading to head the database is at {shown}")


def models_match(databases: Throwaway) -> None:
    from manage_migrations.verbs.inspect import check

    with _fresh(databases) as (settings, graph):
        heads = graph.heads()
        if len(heads) > 1:
            raise MigrationTestSkipped("models are compared with a single head only (see test_single_head)")
        for head in heads:
            _upgrade(settings, head, f"upgrading to {graph.name(head)}")
        try:
            result = check(settings)
        except ManageError as exc:
            raise MigrationTestFailed(exc.message + (f" (hint: {exc.hint})" if exc.hint else "")) from exc
        if result.problems:
            head = graph.name(heads[0]) if heads else "no migration"
            raise MigrationTestFailed(
                f"the models do not match what the migrations build (head: {head}); "
                f"run `{command_prefix()} make:migration`:"
                + _listing(
                    [line for problem in result.problems for line in problem.details or (problem.message,)]
                )
            )


def stairway(databases: Throwaway) -> None:
    """Upgrade, downgrade, upgrade each migration in order; the downgrade must restore the schema
    from before the upgrade, and the second upgrade must build what the first one built."""
    with _fresh(databases) as (settings, graph):
        for header in graph.ordered():
            before = _schema(settings)
            _upgrade(settings, header.revision, f"upgrading {header.name}")
            after = _schema(settings)
            if header.is_squash:
                continue  # a squash migration is never rolled back
            _downgrade(settings, f"downgrading {header.name}", planner.Selection(step=1))
            left = schema.difference(before, _schema(settings))
            if left:
                raise MigrationTestFailed(
                    f"{header.name}: its downgrade does not undo its upgrade:" + _listing(left)
                )
            _upgrade(settings, header.revision, f"upgrading {header.name} again after its downgrade")
            changed = schema.difference(after, _schema(settings))
            if changed:
                raise MigrationTestFailed(
                    f"{header.name}: upgrading again after its downgrade builds another schema:"
                    + _listing(changed)
                )


def downgrade_to_base(databases: Throwaway) -> None:
    """From head, roll back one migration at a time down to base (or to the newest squash
    migration, which is never rolled back): each step must restore the schema from before that
    migration, so nothing of ours is left; the tool's history tables stay, empty."""
    with _fresh(databases) as (settings, graph):
        schemas: dict[str, schema.Schema] = {}
        for header in graph.ordered():
            schemas[header.revision] = _schema(settings)
            _upgrade(settings, header.revision, f"upgrading {header.name}")
        squashes = [header.revision for header in graph.ordered() if header.is_squash]
        floor = graph.ancestors(squashes[-1:])
        for revision in reversed(graph.order):
            if revision in floor:
                break
            name = graph.name(revision)
            _downgrade(settings, f"downgrading {name}", planner.Selection(step=1))
            left = schema.difference(schemas[revision], _schema(settings))
            if left:
                raise MigrationTestFailed(
                    f"{name}: rolled back on the way from head to base, it does not restore the schema "
                    "from before it:" + _listing(left)
                )
        remaining = _version_heads(settings)
        if set(remaining) != set(graph.version_heads(floor)):
            shown = ", ".join(graph.names(remaining)) or "nothing"
            raise MigrationTestFailed(f"after downgrading to base, alembic_version still holds {shown}")


TESTS = (
    MigrationTest("test_single_head", "the history has one head", single_head),
    MigrationTest("test_upgrade", "an empty database upgrades to head", upgrade),
    MigrationTest("test_models_match_migrations", "no drift between models and migrations", models_match),
    MigrationTest("test_stairway", "each migration: upgrade, downgrade, upgrade", stairway),
    MigrationTest("test_downgrade_to_base", "head down to base leaves nothing behind", downgrade_to_base),
)
