"""When to retry a failed model call, and how long to wait first."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Retries happen only before the first token; after that a retry would repeat text."""

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when the provider asks
        for a longer wait than we are willing to give (then fail over instead)."""
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return retry_after
        # Full jitter keeps many clients that failed together from retrying together.
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


class RetryBudget:
    """Caps retries at a fraction of recent requests, so an outage is not multiplied by
    every client retrying at once. Counts decay over a sliding window."""

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        min_per_window: int = 10,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = ratio
        self.min_per_window = min_per_window
        self.window_s = window_s
        self._clock = clock
        self._requests: list[float] = []
        self._retries: list[float] = []

    def _trim(self) -> None:
        cutoff = self._clock() - self.window_s
        self._requests = [t for t in self._requests if t > cutoff]
        self._retries = [t for t in self._retries if t > cutoff]

    def record_request(self) -> None:
        self._requests.append(self._clock())

    def try_spend(self) -> bool:
        self._trim()
        allowed = self.min_per_window + self.ratio * len(self._requests)
        if len(self._retries) >= allowed:
            return False
        self._retries.append(self._clock())
        return True
