"""Side-by-side benchmark of `python manage.py ...` against plain `alembic ...` (issue 5).

Generates synthetic projects under benchmarks/.work/, runs every operation with our command and the
equivalent Alembic command as whole processes (a warm-up, then A B A B ...), and prints medians,
min-max, the ratio ours/alembic and peak RSS, plus the raw-driver floor for applying migrations.

    .venv/bin/python benchmarks/run.py [--quick] [--backend sqlite|postgresql|all] [--runs K]
    .venv/bin/python benchmarks/run.py --only tenants --runs 3      # the tenant rows (PostgreSQL)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import synthetic

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / ".work"
PYTHON = sys.executable
ALEMBIC = str(Path(sys.executable).with_name("alembic"))
PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
HEAVY_MODULES = ("sqlalchemy", "alembic", "mako", "rich", "typer", "click")
FLOOR = "apply floor (raw driver)"

# ---------------------------------------------------------------------------------------------
# Databases: a fresh one per run, cloned from a migrated template where a run needs one
# ---------------------------------------------------------------------------------------------


class Databases(Protocol):
    name: str

    def create(self, template: str | None = None) -> str: ...

    def drop(self, url: str) -> None: ...

    def drop_all(self) -> None: ...


@dataclass
class SqliteDatabases:
    """Database files in one directory; cloning a template copies its file."""

    directory: Path
    name: str = "sqlite"
    counter: int = 0
    created: set[str] = field(default_factory=set)

    def create(self, template: str | None = None) -> str:
        self.counter += 1
        path = self.directory / f"db_{self.counter:04d}.sqlite3"
        path.unlink(missing_ok=True)
        if template is not None:
            shutil.copyfile(sqlite_path(template), path)
        url = f"sqlite:///{path}"
        self.created.add(url)
        return url

    def drop(self, url: str) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{sqlite_path(url)}{suffix}").unlink(missing_ok=True)
        self.created.discard(url)

    def drop_all(self) -> None:
        for url in list(self.created):
            self.drop(url)


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


@dataclass
class PostgresDatabases:
    """Databases named bench_<pid>_<n> on the server of PG_ADMIN_URL; cloning uses TEMPLATE."""

    admin_url: str
    name: str = "postgresql"
    counter: int = 0
    created: set[str] = field(default_factory=set)
    connection: Any = None

    def connect(self) -> Any:
        if self.connection is None:
            import psycopg2

            self.connection = psycopg2.connect(self.admin_url)
            self.connection.autocommit = True
        return self.connection

    def create(self, template: str | None = None) -> str:
        self.counter += 1
        database = f"bench_{os.getpid()}_{self.counter}"
        clause = f" TEMPLATE {pg_database(template)}" if template else ""
        with self.connect().cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {database}{clause}")
        url = urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{database}"))
        self.created.add(url)
        return url

    def drop(self, url: str) -> None:
        with self.connect().cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {pg_database(url)} WITH (FORCE)")
            # Untimed: the next run starts on a server that is not still writing out the last one
            # (a run that is mostly server work, like loading a dump, suffered most from that).
            cursor.execute("CHECKPOINT")
        self.created.discard(url)

    def drop_all(self) -> None:
        for url in list(self.created):
            self.drop(url)
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def execute(self, url: str, *statements: str) -> None:
        """Run SQL in the database of `url` (autocommit; each item may hold several statements)."""
        import psycopg2

        connection = psycopg2.connect(url)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        finally:
            connection.close()

    def checkpoint(self) -> None:
        with self.connect().cursor() as cursor:
            cursor.execute("CHECKPOINT")


def pg_database(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def backends(choice: str) -> list[Databases]:
    """The chosen backends; with `all`, an unreachable PostgreSQL is skipped with a note."""
    chosen: list[Databases] = []
    if choice in ("sqlite", "all"):
        directory = WORK_DIR / "db"
        directory.mkdir(parents=True, exist_ok=True)
        chosen.append(SqliteDatabases(directory))
    if choice in ("postgresql", "all"):
        postgres = PostgresDatabases(PG_ADMIN_URL)
        try:
            postgres.connect()
        except Exception as exc:
            if choice == "postgresql":
                raise SystemExit(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}") from exc
            log(f"skipping PostgreSQL ({PG_ADMIN_URL} is not reachable: {exc})")
        else:
            chosen.append(postgres)
    return chosen


def wanted(operation: str, only: str | None) -> bool:
    return only is None or only in operation


# ---------------------------------------------------------------------------------------------
# Running one whole process and measuring it
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    wall_s: float
    cpu_s: float
    rss_mb: float
    # The largest sum of RSS over the process and its descendants, sampled from /proc while it ran
    # (only where asked for: the tenant memory rows).
    tree_rss_mb: float | None = None


class CommandFailed(RuntimeError):
    pass


def child_env(database_url: str | None) -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("PYTHONPATH", None)
    # Both sides run as users run them: with __pycache__, which the warm-up run fills.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


def measure(argv: list[str], cwd: Path, database_url: str | None, tree: bool = False) -> Sample:
    """Wall time, CPU time and peak RSS of one child, read with os.wait4 (per child, not cumulative).

    Linux folds the child's own reaped children into what wait4 returns: CPU is their sum, peak RSS
    the largest single process. With `tree`, a thread also sums the RSS of the whole process tree
    every 20 ms (workers running side by side add up; shared pages count once per process)."""
    log_path = WORK_DIR / "last-command.log"
    with log_path.open("wb") as out:
        start = time.perf_counter()
        process = subprocess.Popen(
            argv, cwd=cwd, env=child_env(database_url), stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        sampler = TreeSampler(process.pid) if tree else None
        if sampler is not None:
            sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        if sampler is not None:
            sampler.stop()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise CommandFailed(f"`{' '.join(argv[1:])}` in {cwd.name} exited {process.returncode}:\n{tail}")
    tree_rss = sampler.peak_mb if sampler is not None else None
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, tree_rss)


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def tree_rss_mb(pid: int) -> float:
    """RSS of `pid` plus all its descendants now, from /proc (<pid>/statm, task/*/children)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * PAGE_SIZE
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(child) for child in (task / "children").read_text().split())
    return total / 2**20


class TreeSampler(threading.Thread):
    """The largest tree_rss_mb of a process while it runs."""

    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval_s, self.peak_mb = pid, interval_s, 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak_mb = max(self.peak_mb, tree_rss_mb(self.pid))
            self.done.wait(self.interval_s)

    def stop(self) -> None:
        self.done.set()
        self.join()


@dataclass(frozen=True)
class Loop:
    """The plain side for many tenants as teams run it: a shell loop, one process per tenant, one
    after another. `argvs` are the processes actually run; with fewer than `total`, the loop's wall
    and CPU time are multiplied by total / len(argvs). The processes are independent and alike (each
    one tenant, the same work), so the loop's cost is linear in the number of tenants."""

    argvs: list[list[str]]
    total: int

    @property
    def scale(self) -> float:
        return self.total / len(self.argvs)

    @property
    def sampled(self) -> bool:
        return len(self.argvs) < self.total


def measure_loop(loop: Loop, cwd: Path, database_url: str | None, warm_up: bool = False) -> Sample:
    """The loop as one sample: wall time around the whole loop, CPU summed, the largest peak RSS.
    A warm-up runs only the first process (it only has to fill __pycache__)."""
    argvs = loop.argvs[:1] if warm_up else loop.argvs
    start = time.perf_counter()
    samples = [measure(argv, cwd, database_url) for argv in argvs]
    wall = time.perf_counter() - start
    cpu = sum(sample.cpu_s for sample in samples)
    return Sample(wall * loop.scale, cpu * loop.scale, max(sample.rss_mb for sample in samples))


NO_SUCH_COMMAND = re.compile(r"No such command '([^']+)'")


def not_available(exc: CommandFailed) -> str | None:
    """'not available: ...' when our CLI has no such command (a feature not merged yet), else None."""
    match = NO_SUCH_COMMAND.search(str(exc))
    return f"not available: manage.py has no {match.group(1)} command yet" if match else None


def run_checked(argv: list[str], cwd: Path, database_url: str | None) -> str:
    """Run a setup step and return its stdout; a failure stops the benchmark."""
    done = subprocess.run(argv, cwd=cwd, env=child_env(database_url), capture_output=True, text=True)
    if done.returncode != 0:
        raise CommandFailed(f"`{' '.join(argv[1:])}` in {cwd.name} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def ours(*args: str) -> list[str]:
    return [PYTHON, "manage.py", *args]


def theirs(*args: str) -> list[str]:
    return [ALEMBIC, "-c", "plain_alembic.ini", *args]


# ---------------------------------------------------------------------------------------------
# Cases: one operation at one size on one backend, timed A B A B
# ---------------------------------------------------------------------------------------------

After = Callable[[str | None], None]


def nothing(_url: str | None) -> None:
    return None


@dataclass
class Fixture:
    """What one timed run needs: a database URL before it, cleaning up after it."""

    before: Callable[[], str | None]
    after: After = nothing


def fixed(url: str | None, after: After = nothing) -> Fixture:
    return Fixture(lambda: url, after)


def fresh(dbs: Databases, template: str | None = None, after: After = nothing) -> Fixture:
    """A new database per run (a clone of `template` if given), dropped after the run."""

    def drop(url: str | None) -> None:
        if url is not None:
            dbs.drop(url)
        after(url)

    return Fixture(lambda: dbs.create(template), drop)


def removing_new_files(directory: Path) -> After:
    """An `after` hook deleting the revision files a run wrote (make:migration, alembic revision)."""
    existing = set(directory.iterdir())

    def after(_url: str | None) -> None:
        for path in set(directory.iterdir()) - existing:
            if path.is_file():
                path.unlink()

    return after


@dataclass
class Case:
    operation: str
    size: str
    backend: str
    target: float
    cwd: Path
    ours: list[str]
    theirs: list[str]
    fixture: Fixture
    setup_error: str | None = None
    # Tenant rows: plain Alembic runs a loop of processes (instead of `theirs`) on a database of its
    # own (`theirs_fixture`, else `fixture`); `ours_error` (our command missing) still times the
    # plain side; `limit_s` is an absolute target for our median on top of the ratio.
    theirs_loop: Loop | None = None
    theirs_fixture: Fixture | None = None
    ours_error: str | None = None
    limit_s: float | None = None


@dataclass
class Result:
    case: Case
    ours: list[Sample] = field(default_factory=list)
    theirs: list[Sample] = field(default_factory=list)
    error: str | None = None
    ours_error: str | None = None


def run_in(fixture: Fixture, run: Callable[[str | None], Sample]) -> Sample:
    url = fixture.before()
    try:
        return run(url)
    finally:
        fixture.after(url)


def time_case(case: Case, runs: int) -> Result:
    """A warm-up of each side, then `runs` rounds of ours, alembic; a fresh fixture per run. When
    our command does not exist yet, the row says so and the plain side is still timed."""
    result = Result(case, error=case.setup_error, ours_error=case.ours_error)
    if case.setup_error is not None:
        return result
    theirs_fixture = case.theirs_fixture or case.fixture

    def theirs(url: str | None, warm_up: bool) -> Sample:
        if case.theirs_loop is None:
            return measure(case.theirs, case.cwd, url)
        return measure_loop(case.theirs_loop, case.cwd, url, warm_up)

    try:
        for round_ in range(runs + 1):
            warm_up = round_ == 0  # round 0 is the warm-up
            if result.ours_error is None:
                try:
                    sample = run_in(case.fixture, lambda url: measure(case.ours, case.cwd, url))
                except CommandFailed as exc:
                    result.ours_error = not_available(exc)
                    if result.ours_error is None:
                        raise
                    log(result.ours_error)
                else:
                    if not warm_up:
                        result.ours.append(sample)
            sample = run_in(theirs_fixture, lambda url, warm_up=warm_up: theirs(url, warm_up))
            if not warm_up:
                result.theirs.append(sample)
    except CommandFailed as exc:
        log(f"FAILED: {exc}")
        result.error = str(exc).splitlines()[0]
    return result


# ---------------------------------------------------------------------------------------------
# The plan: which projects and databases each operation needs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    status: tuple[int, ...] = (10, 1000)
    apply: tuple[int, ...] = (200, 1000)
    rollback: tuple[int, ...] = (1000,)
    models: tuple[int, ...] = (300, 1000)
    empty_models: tuple[int, ...] = (1000,)
    dump: tuple[int, ...] = (1000,)
    # Tenants (PostgreSQL): schemas migrated from empty, schemas up to date, the memory pair, the
    # tenant migrations each schema gets, and how many tenants the plain loop times in the up-to-date
    # rows (None: all of them).
    tenants_apply: int = 200
    tenants_current: int = 1000
    tenants_memory: tuple[int, ...] = (100, 1000)
    tenant_migrations: int = 10
    tenant_sample: int | None = 40


QUICK_SIZES = Sizes(
    status=(10,),
    apply=(200,),
    rollback=(200,),
    models=(300,),
    empty_models=(300,),
    dump=(200,),
    tenants_apply=20,
    tenants_current=100,
    tenants_memory=(10, 100),
)


@dataclass
class Workspace:
    """Generated projects (shared by the backends) and migrated template databases (per backend)."""

    root: Path
    projects: dict[str, Path] = field(default_factory=dict)
    templates: dict[tuple[str, str], str] = field(default_factory=dict)
    failures: dict[tuple[str, str], CommandFailed] = field(default_factory=dict)

    def history_project(self, count: int, suffix: str = "") -> Path:
        """N migrations, with models matching the schema they end with."""
        key = f"history-{count}{suffix}"
        if key not in self.projects:
            log(f"generating {key}")
            models, revisions = synthetic.history_models(count), synthetic.history(count)
            self.projects[key] = synthetic.write_project(self.root / key, models, revisions)
        return self.projects[key]

    def models_project(self, count: int, migrated: bool) -> Path:
        """T model tables; if `migrated`, plus one migration creating them all (make:migration init)."""
        key = f"models-{count}" if migrated else f"models-{count}-empty"
        if key not in self.projects:
            log(f"generating {key}")
            path = synthetic.write_project(self.root / key, synthetic.model_modules(count), [])
            if migrated:
                scratch = self.root / f"{key}.sqlite3"
                run_checked(ours("make:migration", "init"), path, f"sqlite:///{scratch}")
                scratch.unlink(missing_ok=True)
            self.projects[key] = path
        return self.projects[key]

    def migrated(self, dbs: Databases, project: Path) -> str:
        """A database migrated to head by `manage.py migrate` (ledger included), kept as a template."""
        key = (dbs.name, project.name)
        if key not in self.templates:
            log(f"migrating a {dbs.name} template database for {project.name}")
            url = dbs.create()
            run_checked(ours("migrate"), project, url)
            self.templates[key] = url
        return self.templates[key]

    def dumped(self, dbs: Databases, project: Path) -> None:
        """`manage.py migrate:dump` of a migrated database: migrations/schema/<dialect>-schema.sql."""
        log(f"dumping the {dbs.name} schema of {project.name}")
        run_checked(ours("migrate:dump"), project, self.migrated(dbs, project))

    def tenants_project(self, tenants: int, migrations: int) -> Path:
        """`tenants` tenants listed in [tool.manage.tenants], `migrations` tenant migrations."""
        key = f"tenants-{tenants}x{migrations}"
        if key not in self.projects:
            log(f"generating {key}")
            names = synthetic.tenant_names(tenants)
            self.projects[key] = synthetic.write_tenants_project(self.root / key, names, migrations)
        return self.projects[key]

    def tenants_ours(self, dbs: PostgresDatabases, project: Path, tenants: int) -> str:
        """A database whose `tenants` schemas are brought up to date by `manage.py tenants:migrate`
        (untimed; ledger and version table in each schema). Raises CommandFailed."""
        key = (dbs.name, f"{project.name}/ours")
        if key in self.failures:  # not tried twice (the memory rows reuse this database)
            raise self.failures[key]
        if key not in self.templates:
            log(f"{project.name}: {tenants} schemas, migrated by manage.py tenants:migrate (untimed)")
            url = dbs.create()
            create_schemas(dbs, url, tenants)
            try:
                run_checked(ours("tenants:migrate"), project, url)
            except CommandFailed as exc:
                self.failures[key] = exc
                dbs.drop(url)
                raise
            dbs.checkpoint()
            self.templates[key] = url
        return self.templates[key]

    def tenants_plain(self, dbs: PostgresDatabases, project: Path, tenants: int, migrations: int) -> str:
        """A database whose `tenants` schemas hold what `alembic -x tenant=T upgrade head` leaves:
        Alembic's own offline SQL (`upgrade head --sql`, unqualified) run in each schema through its
        search_path (untimed; a 1000-process loop would take ~10 minutes). Checked with
        `alembic -x tenant=T current` on the first and last tenant."""
        key = (dbs.name, f"{project.name}/plain")
        if key not in self.templates:
            log(f"{project.name}: {tenants} schemas, migrated with plain Alembic's offline SQL (untimed)")
            url = dbs.create()
            create_schemas(dbs, url, tenants)
            sql = run_checked(theirs("upgrade", "head", "--sql"), project, url)
            dbs.execute(
                url, *(f'SET search_path TO "{name}";\n{sql}' for name in synthetic.tenant_names(tenants))
            )
            dbs.checkpoint()
            head = synthetic.tenant_revision_id(migrations - 1)
            for name in {synthetic.tenant_names(tenants)[0], synthetic.tenant_names(tenants)[-1]}:
                out = run_checked(theirs("-x", f"tenant={name}", "current"), project, url)
                if head not in out:
                    raise CommandFailed(f"plain setup: tenant {name} is not at {head}: {out!r}")
            self.templates[key] = url
        return self.templates[key]


def create_schemas(dbs: PostgresDatabases, url: str, tenants: int) -> None:
    """The tenants' empty schemas (untimed, on both sides: the tenant list does not create them)."""
    dbs.execute(url, "".join(f'CREATE SCHEMA "{name}";' for name in synthetic.tenant_names(tenants)))


def with_schemas(dbs: PostgresDatabases, tenants: int) -> Fixture:
    """A new database per run holding `tenants` empty schemas, dropped after the run."""

    def before() -> str:
        url = dbs.create()
        create_schemas(dbs, url, tenants)
        return url

    def drop(url: str | None) -> None:
        if url is not None:
            dbs.drop(url)

    return Fixture(before, drop)


HELP = "--help"
STATUS = "migrate:status"
APPLY = "migrate (empty db)"
APPLY_DUMP = "migrate (empty db, with dump)"
APPLY_SAME_ENV = "migrate (empty db, same env as alembic)"
ROLLBACK = "migrate:rollback --step N"
MAKE_SAME = "make:migration (no changes)"
MAKE_EMPTY = "make:migration (empty db)"
TENANTS_APPLY = "tenants:migrate (empty schemas)"
TENANTS_STATUS = "tenants:status (up to date)"
TENANTS_CURRENT = "tenants:migrate (up to date)"
TENANTS_MEMORY = "tenants:migrate peak RSS (up to date)"
AUTOGENERATE = ours("make:migration", "x"), theirs("revision", "--autogenerate", "-m", "x")


def help_case(ws: Workspace) -> Case:
    project = ws.history_project(10)
    return Case(HELP, "-", "-", 0.5, project, ours("--help"), theirs("--help"), fixed(None))


def status_cases(ws: Workspace, dbs: Databases, sizes: Sizes) -> Iterator[Case]:
    for count in sizes.status:
        project = ws.history_project(count)
        fixture = fixed(ws.migrated(dbs, project))
        argv = ours("migrate:status"), theirs("current")
        yield Case(STATUS, f"N={count}", dbs.name, 1.0, project, *argv, fixture)


def apply_cases(ws: Workspace, dbs: Databases, sizes: Sizes) -> Iterator[Case]:
    for count in sizes.apply:
        project = ws.history_project(count)
        argv = ours("migrate"), theirs("upgrade", "head")
        yield Case(APPLY, f"N={count}", dbs.name, 1.0, project, *argv, fresh(dbs))


def apply_same_env_cases(ws: Workspace, dbs: Databases, sizes: Sizes) -> Iterator[Case]:
    """Plain `alembic upgrade head` through the project's own environment ([tool.alembic]): both
    sides run the same env.py and import no models, so only the apply machinery differs."""
    for count in sizes.apply:
        project = ws.history_project(count)
        argv = ours("migrate"), [ALEMBIC, "upgrade", "head"]
        yield Case(APPLY_SAME_ENV, f"N={count}", dbs.name, 0.35, project, *argv, fresh(dbs))


def dump_cases(ws: Workspace, dbs: Databases, sizes: Sizes) -> Iterator[Case]:
    """`migrate` loads the schema dump, then applies nothing; plain Alembic runs every migration."""
    for count in sizes.dump:
        project = ws.history_project(count, suffix="-dump")
        error = None
        try:
            ws.dumped(dbs, project)
        except CommandFailed as exc:
            log(f"FAILED: {exc}")
            error = str(exc).splitlines()[0]
        argv = ours("migrate"), theirs("upgrade", "head")
        yield Case(APPLY_DUMP, f"N={count}", dbs.name, 0.2, project, *argv, fresh(dbs), error)


def rollback_cases(ws: Workspace, dbs: Databases, sizes: Sizes) -> Iterator[Case]:
    for count in sizes.rollback:
        project = ws.history_project(count)
        fixture = fresh(dbs, template=ws.migrated(dbs, project))
        argv = ours("migrate:rollback", "--step", str(count)), theirs("downgrade", "base")
        yield Case(ROLLBACK, f"N={count}", dbs.name, 1.0, project, *argv, fixture)


def make_same_cases(ws: Workspace, dbs: Databases, sizes: Sizes) -> Iterator[Case]:
    for count in sizes.models:
        project = ws.models_project(count, migrated=True)
        fixture = fixed(ws.migrated(dbs, project), removing_new_files(project / "migrations"))
        yield Case(MAKE_SAME, f"T={count}", dbs.name, 1.0, project, *AUTOGENERATE, fixture)


def make_empty_cases(ws: Workspace, dbs: Databases, sizes: Sizes) -> Iterator[Case]:
    for count in sizes.empty_models:
        project = ws.models_project(count, migrated=False)
        fixture = fresh(dbs, after=removing_new_files(project / "migrations"))
        yield Case(MAKE_EMPTY, f"T={count}", dbs.name, 1.0, project, *AUTOGENERATE, fixture)


def tenant_loop(tenants: int, sample: int | None, *command: str) -> Loop:
    """`alembic -x tenant=T <command>` for every tenant, or for `sample` of them spread evenly."""
    names = synthetic.tenant_names(tenants)
    if sample is not None and sample < tenants:
        names = [names[index * tenants // sample] for index in range(sample)]
    return Loop([theirs("-x", f"tenant={name}", *command) for name in names], tenants)


def tenant_size(tenants: int, loop: Loop) -> str:
    if not loop.sampled:
        return f"{tenants} tenants"
    return f"{tenants} tenants (alembic: {len(loop.argvs)} timed, x{loop.scale:g})"


def tenants_apply_cases(ws: Workspace, dbs: Databases, sizes: Sizes) -> Iterator[Case]:
    """Issue 14: every tenant's schema migrated from empty, ours in one command, plain Alembic by a
    loop of one `upgrade head` per tenant (the whole loop); each side on a fresh database."""
    if not isinstance(dbs, PostgresDatabases):
        return
    tenants, migrations = sizes.tenants_apply, sizes.tenant_migrations
    project = ws.tenants_project(tenants, migrations)
    loop = tenant_loop(tenants, None, "upgrade", "head")
    size = f"{tenants} tenants x {migrations} migrations"
    fixture = with_schemas(dbs, tenants)
    argv = ours("tenants:migrate"), []
    yield Case(TENANTS_APPLY, size, dbs.name, 0.15, project, *argv, fixture, theirs_loop=loop)


def tenants_current_cases(ws: Workspace, dbs: Databases, sizes: Sizes) -> Iterator[Case]:
    """Issue 14: every schema up to date; `tenants:status` / `tenants:migrate` against a loop of
    `current` / `upgrade head`, timed on a sample of the tenants and scaled (`tenant_sample`)."""
    if not isinstance(dbs, PostgresDatabases):
        return
    tenants, migrations = sizes.tenants_current, sizes.tenant_migrations
    project = ws.tenants_project(tenants, migrations)
    setup_error = ours_error = None
    ours_url = None
    try:
        plain_url = ws.tenants_plain(dbs, project, tenants, migrations)
    except CommandFailed as exc:
        log(f"FAILED: {exc}")
        plain_url, setup_error = None, str(exc).splitlines()[0]
    if setup_error is None:
        try:
            ours_url = ws.tenants_ours(dbs, project, tenants)
        except CommandFailed as exc:
            ours_error = not_available(exc)
            if ours_error is None:
                log(f"FAILED: {exc}")
                setup_error = str(exc).splitlines()[0]
    for operation, command, plain in (
        (TENANTS_STATUS, "tenants:status", ("current",)),
        (TENANTS_CURRENT, "tenants:migrate", ("upgrade", "head")),
    ):
        loop = tenant_loop(tenants, sizes.tenant_sample, *plain)
        yield Case(
            operation,
            tenant_size(tenants, loop),
            dbs.name,
            0.05,
            project,
            ours(command),
            [],
            fixed(ours_url),
            setup_error,
            theirs_loop=loop,
            theirs_fixture=fixed(plain_url),
            ours_error=ours_error,
            limit_s=5.0,
        )


CaseFamily = Callable[[Workspace, Databases, Sizes], Iterator[Case]]
FAMILIES: dict[str, CaseFamily] = {
    STATUS: status_cases,
    APPLY: apply_cases,
    APPLY_DUMP: dump_cases,
    ROLLBACK: rollback_cases,
    APPLY_SAME_ENV: apply_same_env_cases,
    MAKE_SAME: make_same_cases,
    MAKE_EMPTY: make_empty_cases,
    TENANTS_APPLY: tenants_apply_cases,
}


def backend_cases(ws: Workspace, dbs: Databases, sizes: Sizes, only: str | None) -> Iterator[Case]:
    """Lazily, so each project and template is made just before its first (selected) case."""
    for operation, family in FAMILIES.items():
        if wanted(operation, only):
            yield from family(ws, dbs, sizes)
    if wanted(TENANTS_STATUS, only) or wanted(TENANTS_CURRENT, only):
        yield from tenants_current_cases(ws, dbs, sizes)


# ---------------------------------------------------------------------------------------------
# Tenants: peak memory of `tenants:migrate` against the number of (up-to-date) tenants
# ---------------------------------------------------------------------------------------------


@dataclass
class Memory:
    tenants: int
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None


def time_memory(ws: Workspace, dbs: PostgresDatabases, sizes: Sizes, runs: int) -> list[Memory]:
    """`manage.py tenants:migrate` with every schema up to date, at each of sizes.tenants_memory:
    a warm-up, then `runs` runs, each with wait4's peak RSS and the sampled process-tree RSS."""
    memories = []
    for tenants in sizes.tenants_memory:
        log(f"{TENANTS_MEMORY}, {dbs.name}, {tenants} tenants")
        memory = Memory(tenants)
        memories.append(memory)
        project = ws.tenants_project(tenants, sizes.tenant_migrations)
        try:
            url = ws.tenants_ours(dbs, project, tenants)
            for round_ in range(runs + 1):
                sample = measure(ours("tenants:migrate"), project, url, tree=True)
                if round_:
                    memory.samples.append(sample)
        except CommandFailed as exc:
            memory.error = not_available(exc)
            if memory.error is None:
                log(f"FAILED: {exc}")
                memory.error = "failed: " + str(exc).splitlines()[0]
    return memories


# ---------------------------------------------------------------------------------------------
# The floor for apply: Alembic's offline SQL replayed by the raw driver, one commit per migration
# ---------------------------------------------------------------------------------------------

MIGRATION_MARKER = re.compile(r"^-- Running upgrade.*$", re.MULTILINE)
TRANSACTION_CONTROL = re.compile(r"^(BEGIN|COMMIT)( TRANSACTION)?$", re.IGNORECASE)


def offline_sql(project: Path, dbs: Databases) -> Path:
    """`alembic upgrade head --sql` in the backend's dialect, saved in the project directory."""
    url = dbs.create()
    try:
        text = run_checked(theirs("upgrade", "head", "--sql"), project, url)
    finally:
        dbs.drop(url)
    path = project / f"upgrade-{dbs.name}.sql"
    path.write_text(text, encoding="utf-8")
    return path


def transactions(sql: str) -> list[list[str]]:
    """The script cut into one statement list per migration (the version table's DDL first)."""
    groups: list[list[str]] = []
    for chunk in MIGRATION_MARKER.split(sql):
        statements = []
        for raw in re.split(r";\s*$", chunk, flags=re.MULTILINE):
            lines = [line for line in raw.splitlines() if line.strip() and not line.startswith("--")]
            statement = "\n".join(lines).strip()
            if statement and not TRANSACTION_CONTROL.match(statement):
                statements.append(statement)
        if statements:
            groups.append(statements)
    return groups


def apply_sql(path: Path, url: str) -> None:
    """Replay the script with the bare driver, one transaction (and commit) per migration."""
    if url.startswith("sqlite:"):
        import sqlite3

        connection: Any = sqlite3.connect(sqlite_path(url), isolation_level=None)
    else:
        import psycopg2

        connection = psycopg2.connect(url)
        connection.autocommit = True
    cursor = connection.cursor()
    for statements in transactions(path.read_text(encoding="utf-8")):
        cursor.execute("BEGIN")
        for statement in statements:
            cursor.execute(statement)
        cursor.execute("COMMIT")
    connection.close()


@dataclass
class Floor:
    backend: str
    size: str
    samples: list[Sample]


def time_floor(ws: Workspace, dbs: Databases, count: int, runs: int) -> Floor:
    """This script's hidden --apply-sql mode as a whole process, on a fresh database per run."""
    project = ws.history_project(count)
    argv = [PYTHON, str(Path(__file__).resolve()), "--apply-sql", str(offline_sql(project, dbs))]
    samples = []
    for round_ in range(runs + 1):
        url = dbs.create()
        try:
            sample = measure([*argv, "--url", url], project, None)
        finally:
            dbs.drop(url)
        if round_:
            samples.append(sample)
    return Floor(dbs.name, f"N={count}", samples)


# ---------------------------------------------------------------------------------------------
# Which heavy packages does `manage.py --help` import?
# ---------------------------------------------------------------------------------------------

HELP_PROBE = """
import sys
sys.argv = ["manage.py", "--help"]
from manage_migrations.cli import main
try:
    main()
except SystemExit:
    pass
print("IMPORTED:" + ",".join(sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY))))
"""


def help_imports(project: Path) -> list[str]:
    out = run_checked([PYTHON, "-c", HELP_PROBE.replace("HEAVY", repr(HEAVY_MODULES))], project, None)
    line = next(line for line in out.splitlines() if line.startswith("IMPORTED:"))
    return [name for name in line.removeprefix("IMPORTED:").split(",") if name]


# ---------------------------------------------------------------------------------------------
# Profiling our side (--profile): cProfile of one run, top 25 by cumulative time
# ---------------------------------------------------------------------------------------------


def profile_case(case: Case, top: int = 25) -> str:
    """Top functions by cumulative time, then by own time; the .prof file stays in .work/ (--keep)."""
    import io
    import pstats

    slug = re.sub(r"[^a-z0-9]+", "-", f"{case.operation}-{case.backend}-{case.size}".lower()).strip("-")
    output = WORK_DIR / f"{slug}.prof"
    url = case.fixture.before()
    try:
        measure([PYTHON, "-m", "cProfile", "-o", str(output), *case.ours[1:]], case.cwd, url)
    finally:
        case.fixture.after(url)
    buffer = io.StringIO()
    stats = pstats.Stats(str(output), stream=buffer)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top // 2)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

RESULT_HEADER = [
    "operation",
    "backend",
    "size",
    "ours s, median (min-max)",
    "alembic s, median (min-max)",
    "ratio",
    "target",
    "cpu ratio",
    "peak RSS MB ours / alembic",
    "RSS ratio",
]
FLOOR_HEADER = ["backend", "size", "raw driver s, median (min-max)", "ours / floor", "alembic / floor"]


def median(samples: list[Sample], attribute: str = "wall_s") -> float:
    return statistics.median(getattr(sample, attribute) for sample in samples)


def spread(samples: list[Sample]) -> str:
    walls = [sample.wall_s for sample in samples]
    return f"{median(samples):.2f} ({min(walls):.2f}-{max(walls):.2f})"


def target_text(case: Case) -> str:
    text = f"<= {case.target}x"
    return text if case.limit_s is None else f"{text}, ours < {case.limit_s:g} s"


def result_row(result: Result) -> list[str]:
    case = result.case
    if result.error is not None:
        return [case.operation, case.backend, case.size, f"failed: {result.error}", "", "", "", "", "", ""]
    if result.ours_error is not None:
        rss_theirs = f"- / {max(s.rss_mb for s in result.theirs):.0f}" if result.theirs else ""
        theirs = spread(result.theirs) if result.theirs else ""
        row = [case.operation, case.backend, case.size, result.ours_error, theirs, "-"]
        return [*row, target_text(case), "-", rss_theirs, "-"]
    ratio = median(result.ours) / median(result.theirs)
    cpu_ratio = median(result.ours, "cpu_s") / median(result.theirs, "cpu_s")
    rss_ours, rss_theirs = max(s.rss_mb for s in result.ours), max(s.rss_mb for s in result.theirs)
    met = ratio <= case.target and (case.limit_s is None or median(result.ours) < case.limit_s)
    return [
        case.operation,
        case.backend,
        case.size,
        spread(result.ours),
        spread(result.theirs),
        f"{ratio:.2f}x",
        f"{target_text(case)} ({'met' if met else 'missed'})",
        f"{cpu_ratio:.2f}x",
        f"{rss_ours:.0f} / {rss_theirs:.0f}",
        f"{rss_ours / rss_theirs:.2f}x",
    ]


MEMORY_HEADER = [
    "tenants",
    "tenants:migrate s, median (min-max)",
    "peak RSS MB, largest process (wait4)",
    "peak RSS MB, process tree (sampled)",
]


def memory_rows(memories: list[Memory]) -> Iterator[list[str]]:
    for memory in memories:
        if memory.error is not None:
            yield [str(memory.tenants), memory.error, "", ""]
            continue
        largest = max(sample.rss_mb for sample in memory.samples)
        tree = max(sample.tree_rss_mb or 0.0 for sample in memory.samples)
        yield [str(memory.tenants), spread(memory.samples), f"{largest:.0f}", f"{tree:.0f}"]


def memory_verdict(memories: list[Memory]) -> str:
    measured = [memory for memory in memories if memory.error is None and memory.samples]
    if len(measured) < 2:
        return "Peak RSS ratio: not available (needs `tenants:migrate` at two tenant counts)."
    small, large = measured[0], measured[-1]

    def peak(memory: Memory, attribute: str) -> float:
        return max(getattr(sample, attribute) or 0.0 for sample in memory.samples)

    ratios = [peak(large, name) / peak(small, name) for name in ("rss_mb", "tree_rss_mb")]
    return (
        f"Peak RSS at {large.tenants} / {small.tenants} tenants: largest process {ratios[0]:.2f}x, "
        f"process tree {ratios[1]:.2f}x (target ~1.0x: no growth per tenant)."
    )


def loop_note(results: list[Result]) -> str | None:
    """How the plain side's tenant rows were measured, if any were."""
    loops = [r.case.theirs_loop for r in results if r.case.theirs_loop is not None and r.theirs]
    if not loops:
        return None
    note = (
        "Tenant rows: plain Alembic is the cookbook's schema-per-tenant env.py, run as a loop of one "
        "`alembic -x tenant=T ...` process per tenant; its time is the whole loop."
    )
    per_process = "; ".join(
        f"{r.case.operation}: {median(r.theirs) / r.case.theirs_loop.total:.2f} s per tenant process"
        for r in results
        if r.case.theirs_loop is not None and r.theirs
    )
    note += f" Per process: {per_process}."
    if any(loop.sampled for loop in loops):
        note += (
            " Rows marked 'alembic: K timed, xF' ran the loop on K of the tenants (spread evenly) and "
            "multiplied its wall and CPU time by F = tenants / K: the processes are independent and "
            "do the same work, so the loop is linear. `--full-loop` runs every tenant's process."
        )
    return note


def floor_row(floor: Floor, results: list[Result]) -> list[str]:
    floor_s = median(floor.samples)
    ratios = ["-", "-"]
    for result in results:
        case = result.case
        same = (case.backend, case.size) == (floor.backend, floor.size)
        if same and case.operation == APPLY and result.error is None:
            ratios = [f"{median(result.ours) / floor_s:.1f}x", f"{median(result.theirs) / floor_s:.1f}x"]
    return [floor.backend, floor.size, spread(floor.samples), *ratios]


def markdown_table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line() -> str:
    import platform
    from importlib.metadata import version

    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    python = platform.python_version()
    return (
        f"{time.strftime('%Y-%m-%d')}; nproc {os.cpu_count()}; CPU {cpu}; Python {python}; "
        f"Alembic {version('alembic')}; SQLAlchemy {version('SQLAlchemy')}"
    )


@dataclass
class Report:
    runs: int
    results: list[Result] = field(default_factory=list)
    floors: list[Floor] = field(default_factory=list)
    memories: list[Memory] = field(default_factory=list)
    help_imports: list[str] | None = None
    profiles: list[tuple[Case, str]] = field(default_factory=list)

    def render(self) -> str:
        parts = [f"Machine: {machine_line()}; {self.runs} timed runs per side after a warm-up."]
        for case, text in self.profiles:
            parts.append(f"### Profile of ours: {case.operation}, {case.backend}, {case.size}\n\n{text}")
        if self.results:
            parts.append(markdown_table(RESULT_HEADER, map(result_row, self.results)))
            note = loop_note(self.results)
            if note is not None:
                parts.append(note)
        if self.memories:
            parts.append("`tenants:migrate` with every schema up to date, peak memory by number of tenants:")
            parts.append(markdown_table(MEMORY_HEADER, memory_rows(self.memories)))
            parts.append(memory_verdict(self.memories))
        if self.floors:
            parts.append("Floor for apply: offline SQL replayed by the raw driver, one commit per migration.")
            parts.append(markdown_table(FLOOR_HEADER, (floor_row(f, self.results) for f in self.floors)))
        if self.help_imports is not None:
            verdict = "imports" if "sqlalchemy" in self.help_imports else "does not import"
            loaded = ", ".join(self.help_imports) or "none"
            parts.append(f"`manage.py --help` {verdict} sqlalchemy (loaded of {HEAVY_MODULES}: {loaded}).")
        return "\n\n".join(parts)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 runs, small sizes only")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "all"), default="all")
    parser.add_argument("--runs", type=int, help="timed runs per side (default 5; 2 with --quick)")
    parser.add_argument("--only", help="run only the operations whose name contains this text")
    parser.add_argument("--profile", action="store_true", help="cProfile our side once per case instead")
    parser.add_argument("--keep", action="store_true", help="keep benchmarks/.work/ afterwards")
    parser.add_argument(
        "--tenant-sample",
        type=int,
        default=40,
        metavar="K",
        help="up-to-date tenant rows: time plain Alembic's loop on K tenants, scaled (default 40)",
    )
    parser.add_argument(
        "--full-loop", action="store_true", help="up-to-date tenant rows: time plain Alembic on every tenant"
    )
    parser.add_argument("--apply-sql", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    return parser.parse_args()


def run_cases(cases: Iterable[Case], args: argparse.Namespace, runs: int, report: Report) -> None:
    for case in cases:
        if not wanted(case.operation, args.only):
            continue
        log(f"{case.operation}, {case.backend}, {case.size}")
        if args.profile:
            if case.setup_error is not None or case.ours_error is not None:
                log(f"not profiled: {case.setup_error or case.ours_error}")
                continue
            report.profiles.append((case, profile_case(case)))
        else:
            report.results.append(time_case(case, runs))


def run_benchmark(args: argparse.Namespace) -> Report:
    runs = args.runs or (2 if args.quick else 5)
    sizes = QUICK_SIZES if args.quick else Sizes()
    if args.tenant_sample < 1:
        raise SystemExit("--tenant-sample must be at least 1")
    sizes = dataclasses.replace(sizes, tenant_sample=None if args.full_loop else args.tenant_sample)
    ws = Workspace(WORK_DIR / "projects")
    report = Report(runs)
    chosen = backends(args.backend)
    try:
        per_backend = [backend_cases(ws, dbs, sizes, args.only) for dbs in chosen]
        help_cases = [help_case(ws)] if wanted(HELP, args.only) else []
        run_cases(itertools.chain(help_cases, *per_backend), args, runs, report)
        if args.profile:
            return report
        if wanted(HELP, args.only):
            report.help_imports = help_imports(ws.history_project(10))
        if wanted(FLOOR, args.only):
            for dbs, count in itertools.product(chosen, sizes.apply):
                log(f"{FLOOR}, {dbs.name}, N={count}")
                report.floors.append(time_floor(ws, dbs, count, runs))
        if wanted(TENANTS_MEMORY, args.only):
            for dbs in chosen:
                if isinstance(dbs, PostgresDatabases):
                    report.memories += time_memory(ws, dbs, sizes, runs)
    finally:
        for dbs in chosen:
            dbs.drop_all()
    return report


def main() -> None:
    args = parse_args()
    if args.apply_sql is not None:
        apply_sql(args.apply_sql, args.url)
        return
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    try:
        print(run_benchmark(args).render())
    finally:
        if not args.keep:
            shutil.rmtree(WORK_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
