"""Client-side limiter for Pipedrive's rolling-window burst limits."""

from __future__ import annotations

import threading
import time
from collections import deque


class SlidingWindowLimiter:
    """Allows at most ``limit`` acquisitions in any rolling ``window`` seconds; thread-safe.

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
        self._stamps: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until a slot is free; return the seconds spent waiting."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._stamps and now - self._stamps[0] >= self.window:
                    self._stamps.popleft()
                if now < self._paused_until:
                    delay = self._paused_until - now
                elif len(self._stamps) < self.limit:
                    self._stamps.append(now)
                    return waited
                else:
                    delay = self.window - (now - self._stamps[0])
            delay = max(delay, 0.001)
            self._sleep(delay)
            waited += delay

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
