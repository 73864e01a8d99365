"""SIGINT and SIGTERM while migrations run: let them through only where cutting in is safe.

A signal that lands while migration code runs interrupts it (the step is rolled back); one that
lands during bookkeeping, RELEASE SAVEPOINT or COMMIT waits until that has finished, so the
database is always either before or after a whole step, and the report says which.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM)


class SignalGate:
    def __init__(self) -> None:
        self.pending: int | None = None
        self.signalled = False
        self._open = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalGate:
        if threading.current_thread() is threading.main_thread():
            for number in HANDLED:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, number: int, _frame: FrameType | None) -> None:
        self.signalled = True
        if self._open:
            raise KeyboardInterrupt
        self.pending = number

    @contextmanager
    def opened(self) -> Iterator[None]:
        """Migration code runs here: a signal interrupts it at once."""
        self.check()
        self._open = True
        try:
            yield
        finally:
            self._open = False

    def check(self) -> None:
        """Deliver a signal that arrived while the gate was closed."""
        if self.pending is not None:
            self.pending = None
            raise KeyboardInterrupt
