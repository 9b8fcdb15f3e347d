"""Clocks for the emulator: the wall clock, or a manual one that tests and demos advance."""

import threading
import time


class WallClock:
    kind = "wall"

    def now_ns(self) -> int:
        return time.time_ns()

    def now_ms(self) -> float:
        return time.time_ns() / 1_000_000


class ManualClock:
    """Starts at the wall clock's time and moves only when advanced."""

    kind = "manual"

    def __init__(self, start_ns: int | None = None):
        self._ns = time.time_ns() if start_ns is None else start_ns
        self._lock = threading.Lock()
        self._listeners = []

    def now_ns(self) -> int:
        return self._ns

    def now_ms(self) -> float:
        return self._ns / 1_000_000

    def advance(self, ms: float) -> int:
        with self._lock:
            self._ns += int(ms * 1_000_000)
            now = self._ns
        for listener in list(self._listeners):
            listener(now)
        return now

    def on_advance(self, listener) -> None:
        """`listener(now_ns)` runs after each advance (the scheduler wakes up on it)."""
        self._listeners.append(listener)
