"""Client-side limiter for Pipedrive's rolling-window burst limits."""

from __future__ import annotations

import threading
import time
from collections import deque


class SlidingWindowLimiter:
    """Allows at most ``limit`` acquisitions in any rolling ``window`` seconds; thread-safe.

    Each caller *reserves* its departure time under the lock (the moment the acquisition ``limit``
    places back leaves the window) and then sleeps exactly until then: waiting callers are served in
    arrival order and are not all woken whenever a slot frees up (no thundering herd of threads
    competing for the GIL, which would delay departures unevenly and let the server see bursts).

    ``pause(seconds)`` blocks every caller for that long, used when the server answers 429 so that all
    threads of a load back off together instead of each discovering the limit on its own.
    """

    def __init__(self, limit: int, window: float = 2.0, clock=time.monotonic, sleep=time.sleep):
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._stamps: deque[list[float]] = deque()  # [departure time] of each acquisition, in order
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until a slot is free; return the seconds spent waiting."""
        with self._lock:
            now = self._clock()
            while self._stamps and now - self._stamps[0][0] >= self.window:
                self._stamps.popleft()
            slot = max(now, self._paused_until)
            if len(self._stamps) >= self.limit:
                slot = max(slot, self._stamps[-self.limit][0] + self.window)
            if self._stamps:
                slot = max(slot, self._stamps[-1][0])  # keep the reservations ordered
            cell = [slot]
            self._stamps.append(cell)
        delay = slot - now
        if delay <= 0:
            return 0.0
        self._sleep(delay)
        # A busy process wakes a thread late: count the request from when it really leaves, so that
        # the ones reserved after it keep their distance from it as the server will see it.
        with self._lock:
            cell[0] = max(cell[0], self._clock())
        return delay

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
