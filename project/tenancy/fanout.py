"""One job per tenant, N at once: in this process when one at a time, otherwise in forked
worker processes that take tenants from a shared counter and keep one connection per server.

Signals: Ctrl-C reaches every worker (they share our process group); a SIGTERM sent to us alone
is passed on. A worker answers either by rolling back the tenant it is on (the executor's own
interrupt handling) and taking no new one; this process stops waiting once they are gone."""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import monotonic, perf_counter
from typing import TYPE_CHECKING, Any

from manage_migrations import program
from manage_migrations.core import interrupts
from manage_migrations.core.session import Pool
from manage_migrations.core.url import without_secrets
from manage_migrations.errors import ManageError
from manage_migrations.tenancy import provision

if TYPE_CHECKING:
    from manage_migrations.settings import Settings

Job = Callable[["TenantTask", Pool], Any]
POLL_SECONDS = 0.1
INTERRUPTED = 130
# How long the workers get to roll back and report after they were told to stop.
WORKERS_GRACE_SECONDS = 60.0


class TenantFailed(ManageError):
    """A tenant's job failed with a result to show all the same (the migrations it committed)."""

    def __init__(self, message: str, hint: str | None, value: Any) -> None:
        super().__init__(message, hint)
        self.value = value


@dataclass(frozen=True)
class TenantTask:
    tenant: str
    settings: Settings


@dataclass(frozen=True)
class Failure:
    message: str
    hint: str | None
    exit_code: int
    traceback: str | None = None  # an unexpected error's, shown with --traceback


@dataclass(frozen=True)
class TenantStarted:
    tenant: str
    started: float  # time.monotonic(): one clock for every process on the machine


@dataclass(frozen=True)
class TenantDone:
    tenant: str
    seconds: float
    value: Any = None
    failure: Failure | None = None

    @property
    def interrupted(self) -> bool:
        return self.failure is not None and self.failure.exit_code == INTERRUPTED

    @property
    def failed(self) -> bool:
        return self.failure is not None and not self.interrupted


FanOutEvent = TenantStarted | TenantDone


@dataclass(frozen=True)
class FanOutResult:
    done: tuple[TenantDone, ...]  # in the order the tenants were given
    not_started: tuple[str, ...]
    interrupted: bool
    seconds: float
    jobs: int

    @property
    def failed(self) -> tuple[TenantDone, ...]:
        return tuple(done for done in self.done if done.failed)


def run_one(job: Job, task: TenantTask, pool: Pool) -> TenantDone:
    """One tenant; whatever goes wrong is that tenant's failure, never the run's."""
    started = perf_counter()
    value = None
    program.select_tenant(task.tenant)  # hints name the tenant's commands
    try:
        value = job(task, pool)
    except ManageError as exc:
        value = exc.value if isinstance(exc, TenantFailed) else None
        failure = Failure(
            without_secrets(exc.message, [task.settings.database_url]),
            provision.hint_for(task.tenant, task.settings, exc),
            exc.exit_code,
        )
    except KeyboardInterrupt:
        failure = Failure("interrupted before it changed anything", None, INTERRUPTED)
    except Exception as exc:
        import traceback

        failure = Failure(
            without_secrets(f"unexpected {type(exc).__name__}: {exc}", [task.settings.database_url]),
            "run again with --traceback to see where, and report it if it looks like a bug",
            1,
            without_secrets("".join(traceback.format_exception(exc)), [task.settings.database_url]),
        )
    else:
        return TenantDone(task.tenant, perf_counter() - started, value)
    finally:
        program.select_tenant(None)
    return TenantDone(task.tenant, perf_counter() - started, value, failure)


def fan_out(
    tasks: Sequence[TenantTask],
    job: Job,
    jobs: int,
    on_event: Callable[[FanOutEvent], None],
    *,
    fail_fast: bool = False,
) -> FanOutResult:
    started = perf_counter()
    interrupts.defer()  # a signal is answered between tenants, or by the tenant's own rollback
    workers = max(1, min(jobs, len(tasks)))
    run = _in_process if workers == 1 else _forked
    finished = run(tasks, job, workers, on_event, fail_fast)
    done = tuple(finished[index] for index in range(len(tasks)) if index in finished)
    not_started = tuple(task.tenant for index, task in enumerate(tasks) if index not in finished)
    signalled = interrupts.signalled() is not None or any(item.interrupted for item in done)
    return FanOutResult(done, not_started, signalled, perf_counter() - started, workers)


def _work(
    job: Job,
    tasks: Sequence[TenantTask],
    take: Callable[[], int],
    emit: Callable[[int, FanOutEvent], None],
    stopped: Callable[[], bool],
) -> None:
    """The loop of a worker (or of this process alone): take the next tenant until none is left,
    a signal came, or the run is stopped; one connection per server for all of them."""
    pool = Pool()
    try:
        while interrupts.signalled() is None and not stopped():
            index = take()
            if index >= len(tasks):
                break
            emit(index, TenantStarted(tasks[index].tenant, monotonic()))
            done = run_one(job, tasks[index], pool)
            emit(index, done)
            if done.interrupted:
                break
    finally:
        pool.close()


def _in_process(
    tasks: Sequence[TenantTask],
    job: Job,
    _workers: int,
    on_event: Callable[[FanOutEvent], None],
    fail_fast: bool,
) -> dict[int, TenantDone]:
    finished: dict[int, TenantDone] = {}
    failed: list[TenantDone] = []

    def emit(index: int, event: FanOutEvent) -> None:
        if isinstance(event, TenantDone):
            finished[index] = event
            if event.failed:
                failed.append(event)
        on_event(event)

    _work(job, tasks, itertools.count().__next__, emit, lambda: fail_fast and bool(failed))
    return finished


def _worker(job: Job, tasks: Sequence[TenantTask], counter: Any, stop: Any, results: Any) -> None:
    interrupts.after_fork()

    def take() -> int:
        with counter.get_lock():
            index = int(counter.value)
            counter.value += 1
        return index

    _work(job, tasks, take, lambda index, event: results.put((index, event)), stop.is_set)


def _forked(
    tasks: Sequence[TenantTask],
    job: Job,
    workers: int,
    on_event: Callable[[FanOutEvent], None],
    fail_fast: bool,
) -> dict[int, TenantDone]:
    import multiprocessing

    context = multiprocessing.get_context("fork")
    counter = context.Value("q", 0)
    stop = context.Event()
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(job, tasks, counter, stop, results), daemon=True)
        for _ in range(workers)
    ]
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() beside the interrupts watcher thread; the worker
        # starts a watcher of its own and takes no lock the old one could have held.
        warnings.simplefilter("ignore", DeprecationWarning)
        for process in processes:
            process.start()
    finished: dict[int, TenantDone] = {}
    running: dict[int, TenantStarted] = {}
    forwarded = False
    deadline: float | None = None
    try:
        while len(finished) < len(tasks):
            signal_number = interrupts.signalled()
            if signal_number is not None and not forwarded:
                forwarded = True
                deadline = monotonic() + WORKERS_GRACE_SECONDS
                for process in processes:
                    if process.pid is not None:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(process.pid, signal_number)
            try:
                index, event = results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not any(process.is_alive() for process in processes):
                    _drain(results, finished, running, on_event)
                    break
                if deadline is not None and monotonic() > deadline:
                    break
                continue
            _received(index, event, finished, running, on_event)
            if fail_fast and isinstance(event, TenantDone) and event.failed:
                stop.set()
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=0 if deadline is not None and monotonic() > deadline else 5)
            if process.is_alive():
                process.kill()
                process.join()
        results.close()
    for index, lost in running.items():
        failure = Failure("the worker process running this tenant died before it reported", None, 1)
        finished[index] = TenantDone(lost.tenant, monotonic() - lost.started, None, failure)
        on_event(finished[index])
    return finished


def _received(
    index: int,
    event: FanOutEvent,
    finished: dict[int, TenantDone],
    running: dict[int, TenantStarted],
    on_event: Callable[[FanOutEvent], None],
) -> None:
    if isinstance(event, TenantStarted):
        running[index] = event
    else:
        running.pop(index, None)
        finished[index] = event
    on_event(event)


def _drain(
    results: Any,
    finished: dict[int, TenantDone],
    running: dict[int, TenantStarted],
    on_event: Callable[[FanOutEvent], None],
) -> None:
    """What the last workers sent before they exited."""
    while True:
        try:
            index, event = results.get(timeout=POLL_SECONDS)
        except queue.Empty:
            return
        _received(index, event, finished, running, on_event)
