"""Pausing Python's cyclic garbage collector around work that only builds long-lived objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """make:migration builds about a million objects that live until it ends (mapped classes,
    reflected tables, operations). The collector rescans them every few thousand allocations,
    a quarter of the CPU time at a thousand tables, and finds next to nothing to free.

    Afterwards they are frozen (moved out of the collector's sight) rather than handed back to it:
    the first collection would otherwise scan them all at once (a second at a thousand tables).
    Objects that become garbage still go by reference counting; only cycles among them wait for
    the end of the process, which for the command line comes moments later."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


@contextmanager
def resumed() -> Iterator[None]:
    """Collect again inside paused(), for work that makes short-lived cycles (rendering copies
    every table it writes): without it a thousand-table file costs 60 MB more at its peak. What
    exists so far is frozen first, so the collections only look at what is new."""
    if gc.isenabled():
        yield
        return
    gc.freeze()
    gc.enable()
    try:
        yield
    finally:
        gc.disable()
