"""Client-side request limiter: stay under 50 requests/s and 1,500 per 30 s (the contract).

Two sliding windows over the times of recent requests; ``acquire`` sleeps (with an injected
``sleep``) until a slot is free in both. Thread-safe; the sleep happens outside the lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(
        self,
        windows: tuple[tuple[int, float], ...] = ((50, 1.0), (1500, 30.0)),
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._windows = [(limit, span, deque[float]()) for limit, span in windows]
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()

    def _wait_needed(self, now: float) -> float:
        wait = 0.0
        for limit, span, seen in self._windows:
            while seen and seen[0] <= now - span:
                seen.popleft()
            if len(seen) >= limit:
                wait = max(wait, seen[0] + span - now)
        return wait

    def acquire(self) -> float:
        """Block until a request may be sent; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                wait = self._wait_needed(now)
                if wait <= 0:
                    for _, _, seen in self._windows:
                        seen.append(now)
                    return waited
            self._sleep(wait)
            waited += wait
