"""A clock for the running migration's line: calls back from a daemon thread, prints nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable

TICK_SECONDS = 0.2


class Ticker:
    """Calls `draw` now and then every TICK_SECONDS from a daemon thread, until stopped."""

    def __init__(self, draw: Callable[[], None]) -> None:
        self._stopped = threading.Event()
        draw()
        self._thread = threading.Thread(target=self._run, args=(draw,), name="manage-progress", daemon=True)
        self._thread.start()

    def _run(self, draw: Callable[[], None]) -> None:
        while not self._stopped.wait(TICK_SECONDS):
            try:
                draw()
            except (OSError, ValueError):  # the terminal went away: the result line says the rest
                return

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
