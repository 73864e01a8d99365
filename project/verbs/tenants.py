"""tenants:migrate, tenants:rollback, tenants:status and tenants:create: the default verbs' own
per-database steps, run for every tenant by the fan-out with the tenant's settings."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manage_migrations.core import planner, preflight, session, store
from manage_migrations.core.events import ProgressCallback, RunResult, ignore
from manage_migrations.core.graph import RevisionGraph
from manage_migrations.errors import ManageError, Refused
from manage_migrations.program import resolve_command
from manage_migrations.tenancy import config, directory, fanout
from manage_migrations.verbs.migrate import MigrateOptions, run_migrate
from manage_migrations.verbs.rollback import run_rollback

if TYPE_CHECKING:
    from manage_migrations.core.session import Pool
    from manage_migrations.guard import Confirm
    from manage_migrations.schema_dump import DumpInfo
    from manage_migrations.settings import Settings
    from manage_migrations.verbs.maintain import Resolved

MAX_DEFAULT_JOBS = 8


def default_jobs() -> int:
    """Tenants at once when --jobs is not given: two per core, as a tenant's time is mostly the
    server's and round trips (200 tenants from empty on 2 cores: 10.1 s with 2 jobs, 8.8 s with
    4), at least two, at most eight (connections and memory grow with it)."""
    return max(2, min(MAX_DEFAULT_JOBS, 2 * (os.cpu_count() or 1)))


@dataclass(frozen=True)
class Selected:
    """The tenants a command runs on, each with its settings, and the tenant revision graph."""

    default: Settings
    tenancy: config.Tenancy
    tasks: tuple[fanout.TenantTask, ...]
    graph: RevisionGraph


def select(default: Settings, wanted: Sequence[str]) -> Selected:
    tenancy = config.read_tenancy(default.root)
    tenants = directory.select(directory.list_tenants(tenancy, default), wanted)
    tasks = tuple(
        fanout.TenantTask(tenant.name, config.tenant_settings(tenancy, default, tenant)) for tenant in tenants
    )
    graph = RevisionGraph.load(tenancy.migrations_dir, default.root)
    return Selected(default, tenancy, tasks, graph)


def _existing(task: fanout.TenantTask) -> Settings:
    """The tenant's settings, once it is known to exist (tenants:create alone makes it exist)."""
    from manage_migrations.tenancy import provision

    provision.require(task.tenant, task.settings)
    return task.settings


@contextmanager
def _never_asked() -> Iterator[None]:
    """A refusal's hint for tenants: there is no question to answer on a terminal."""
    try:
        yield
    except Refused as exc:
        raise Refused(
            exc.message, hint="pass --force: tenants run side by side, so none of them asks"
        ) from None


def reported(result: RunResult) -> RunResult:
    """A migration that failed is the tenant's failure (listed with its error, exit 1); the
    result still says what was committed before it."""
    failed = result.failed
    if failed is None:
        return result
    what = "the COMMIT" if failed.commit_failed else failed.name
    at = ", ".join(failed.at_names) or "no migration (empty history)"
    state = "rolled back" if failed.transactional else "NOT rolled back (DDL commits at once here)"
    hint = failed.hint
    if failed.outside_transaction:
        state = "outside a transaction, so what it did stays and it is recorded as failed"
        hint = f"inspect the tenant, undo or finish its work, then run `{resolve_command(failed.revision)}`"
    raise fanout.TenantFailed(f"{what} failed, {state}: {failed.error}; the tenant is at {at}", hint, result)


@dataclass(frozen=True)
class TenantStatus:
    where: str
    at: tuple[str, ...]  # names of the revisions alembic_version holds
    applied: int
    pending: int
    failed: tuple[str, ...] = ()
    problem: str | None = None


def status(
    selected: Selected, jobs: int, on_event: Callable[[fanout.FanOutEvent], None]
) -> fanout.FanOutResult:
    graph = selected.graph

    def job(task: fanout.TenantTask, pool: Pool) -> TenantStatus:
        with session.reading(_existing(task), pool) as current:
            state = preflight.read_state(current, graph, strict=False)
        heads = state.version_heads
        names = {row.revision: row.name for row in state.reconciled.rows}
        problem = state.problem
        pending = 0 if problem is not None else len(planner.upgrade_plan(graph, heads).steps)
        return TenantStatus(
            current.shown_url,
            tuple(names.get(head) or graph.names((head,))[0] for head in heads),
            len(state.reconciled.applied),
            pending,
            tuple(sorted(graph.names(state.history.failed))),
            problem.message if problem is not None else None,
        )

    return fanout.fan_out(selected.tasks, job, jobs, on_event)


def behind(result: fanout.FanOutResult) -> tuple[str, ...]:
    """The tenants a status run found with pending migrations (a deploy's "all migrated?")."""
    return tuple(
        done.tenant
        for done in result.done
        if done.failure is None and isinstance(done.value, TenantStatus) and done.value.pending
    )


def migrate(
    selected: Selected,
    jobs: int,
    on_event: Callable[[fanout.FanOutEvent], None],
    *,
    fail_fast: bool = False,
    confirm: Confirm | None = None,
) -> fanout.FanOutResult:
    """Every selected tenant to head. A tenant that fails stays at its last good migration; the
    others go on (unless `fail_fast`)."""
    preflight.refuse_several_heads(selected.graph)
    graph = selected.graph
    heads = set(graph.heads())

    def job(task: fanout.TenantTask, pool: Pool) -> RunResult:
        # Most tenants are up to date: one statement, no lock. A tenant behind (or that cannot
        # tell) takes its lock and reads its history again under it.
        settings = _existing(task)
        with session.reading(settings, pool) as current:
            if set(store.version_heads_quickly(current.connection) or ()) == heads:
                return RunResult(current.shown_url, None, ())
        with session.writing(settings, ignore, pool) as current, _never_asked():
            return reported(run_migrate(current, graph, MigrateOptions(use_dump=False), confirm, ignore))

    return fanout.fan_out(selected.tasks, job, jobs, on_event, fail_fast=fail_fast)


def rollback(
    selected: Selected,
    jobs: int,
    on_event: Callable[[fanout.FanOutEvent], None],
    selection: planner.Selection,
    confirm: Confirm | None = None,
) -> fanout.FanOutResult:
    """Each selected tenant's last batch (or --step/--batch/--to) undone, tenants side by side."""
    from manage_migrations import guard

    guard.refuse_if_prohibited(selected.default, "tenants:rollback")
    graph = selected.graph

    def job(task: fanout.TenantTask, pool: Pool) -> RunResult:
        with session.writing(_existing(task), ignore, pool) as current, _never_asked():
            return reported(
                run_rollback(current, graph, selection, fake=False, confirm=confirm, on_progress=ignore)
            )

    return fanout.fan_out(selected.tasks, job, jobs, on_event)


@dataclass(frozen=True)
class Provided:
    """tenants:create's first half: the tenant, whether its schema or database was created, and
    how many statements of the tenant dump built it (None: not built from the dump)."""

    task: fanout.TenantTask
    graph: RevisionGraph
    created: bool
    from_dump: int | None = None
    dump: Path | None = None


def provide(selected: Selected, task: fanout.TenantTask) -> Provided:
    """Create the tenant's schema or database when it is missing; on PostgreSQL in schema mode,
    from the tenant dump when there is one (elsewhere migrate loads it into the empty database)."""
    from manage_migrations import squash
    from manage_migrations.tenancy import provision

    dump = _template_dump(selected.tenancy, task.settings)
    if dump is not None:
        squash.refuse_stale_dump(dump, selected.graph)
        statements = provision.load_template(task.settings, dump)
        if statements is not None:
            return Provided(task, selected.graph, True, statements, dump)
    return Provided(task, selected.graph, provision.ensure(task.settings))


def _template_dump(tenancy: config.Tenancy, settings: Settings) -> Path | None:
    """The dump tenants:create loads by renaming its schema: PostgreSQL in schema mode only."""
    from manage_migrations import schema_dump

    if not _pg_schema_mode(tenancy, settings):
        return None
    path = schema_dump.dump_path(settings.migrations_dir, "postgresql")
    return path if path.is_file() else None


def migrate_provided(
    provided: Provided, on_progress: ProgressCallback = ignore, pool: Pool | None = None
) -> RunResult:
    """tenants:create's second half: migrate the new tenant (what the dump did not cover)."""
    options = MigrateOptions(use_dump=provided.from_dump is None)
    with session.writing(provided.task.settings, on_progress, pool) as current:
        result = run_migrate(current, provided.graph, options, None, on_progress)
        if provided.from_dump is not None and not result.steps:
            preflight.record_environment(current)
        return result


def create(
    selected: Selected, jobs: int, on_event: Callable[[fanout.FanOutEvent], None]
) -> fanout.FanOutResult:
    """tenants:create for several tenants (default: every listed one), side by side."""

    def job(task: fanout.TenantTask, pool: Pool) -> RunResult:
        return reported(migrate_provided(provide(selected, task), ignore, pool))

    return fanout.fan_out(selected.tasks, job, jobs, on_event)


def dump(default: Settings, tenant: str | None) -> DumpInfo:
    """migrate:dump --tenants: the tenant schema at head, for tenants:create. On PostgreSQL in
    schema mode it is taken from a scratch schema migrated for the purpose (loading it recreates
    that schema, renamed to the tenant); elsewhere from one tenant (--tenant, default the first),
    as a database dump names no schema."""
    from manage_migrations.tenancy import provision
    from manage_migrations.verbs.maintain import dump_schema

    settings = make_settings(default, tenant)
    tenancy = config.read_tenancy(default.root)
    if not _pg_schema_mode(tenancy, settings):
        return dump_schema(settings)
    template = replace(settings, schema=provision.TEMPLATE_SCHEMA)
    provision.drop_template(template)
    provision.ensure(template)
    try:
        graph = preflight.load_graph(template)
        with session.writing(template) as current:
            reported(run_migrate(current, graph, MigrateOptions(use_dump=False), None, ignore))
        return dump_schema(template)
    finally:
        provision.drop_template(template)


def _pg_schema_mode(tenancy: config.Tenancy, settings: Settings) -> bool:
    """Where a tenant dump names its schema and is loaded by renaming that schema."""
    from manage_migrations import database

    return (
        tenancy.mode == "schema"
        and database.parse_url(settings.database_url, settings.root).backend == "postgresql"
    )


def make_settings(default: Settings, tenant: str | None) -> Settings:
    """make:migration --tenants: the tenant models diffed against one tenant (the first one)."""
    tenancy = config.read_tenancy(default.root)
    tenants = directory.list_tenants(tenancy, default)
    if not tenants:
        from manage_migrations.errors import ConfigError

        raise ConfigError(
            "make:migration --tenants compares the tenant models with a tenant, and there is none",
            hint="create one first with tenants:create NAME",
        )
    (chosen,) = directory.select(tenants, [tenant]) if tenant is not None else tenants[:1]
    settings = config.tenant_settings(tenancy, default, chosen)
    from manage_migrations.tenancy import provision

    provision.require(chosen.name, settings)  # SQLite would make the file it compares with
    return settings


def changed_anything(done: fanout.TenantDone) -> bool:
    """A migrate or rollback result with steps (a status has none)."""
    return isinstance(done.value, RunResult) and bool(done.value.steps)


def outcome_counts(result: fanout.FanOutResult) -> dict[str, Any]:
    """How many tenants ended which way, for the summary line and --json."""
    changed = sum(1 for done in result.done if done.failure is None and changed_anything(done))
    return {
        "tenants": len(result.done) + len(result.not_started),
        "changed": changed,
        "unchanged": sum(1 for done in result.done if done.failure is None) - changed,
        "failed": len(result.failed),
        "interrupted": sum(1 for done in result.done if done.interrupted),
        "not_started": len(result.not_started),
    }


def resolve(selected: Selected, revision: str) -> list[tuple[str, Resolved | ManageError]]:
    """tenants:resolve: clear a failure mark on each named tenant, after a person repaired it."""
    from manage_migrations.verbs.maintain import resolve_failure

    outcomes: list[tuple[str, Resolved | ManageError]] = []
    for task in selected.tasks:
        try:
            outcomes.append((task.tenant, resolve_failure(_existing(task), revision)))
        except ManageError as exc:
            outcomes.append((task.tenant, exc))
    return outcomes
