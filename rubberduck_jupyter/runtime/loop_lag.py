"""Measures how late the event loop wakes up: the symptom of anything blocking it.

A task sleeps `interval` seconds and records how much later than asked it woke. Every
sample goes into a cumulative histogram (fixed buckets, like a Prometheus histogram), so a
reader can subtract two snapshots and get the percentiles of the lag in between: the load
benchmark does that per phase. `lag_ms` is the latest sample, `max_lag_ms` the worst since
start.

The interval is 0.1 s: ten wake-ups a second cost nothing measurable, and a stall shorter
than the interval still shows in the sample that spans it.

With `RUBBERDUCK_LOOP_STALL_MS` set (say 200), a watchdog thread also logs the loop
thread's stack whenever the loop has not woken for that long: the stall names its own
culprit in the server log (at most `MAX_STALL_REPORTS` times, so a sick server cannot
flood it). Off by default: a thread waking 20 times a second costs a little GIL.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

# Upper bounds in ms. Below 1 ms is timer noise; 20 ms is the goal of the load benchmark;
# the seconds-long buckets are for the stalls this monitor exists to catch.
BUCKETS_MS: tuple[float, ...] = (
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1000,
    2000,
    5000,
    math.inf,
)
DEFAULT_INTERVAL_S = 0.1
STALL_ENV = "RUBBERDUCK_LOOP_STALL_MS"
MAX_STALL_REPORTS = 50
# The watchdog's own tick: fine enough to catch the stall while it lasts.
WATCHDOG_TICK_S = 0.05


class LoopLagMonitor:
    def __init__(
        self, interval: float = DEFAULT_INTERVAL_S, *, stall_ms: float | None = None
    ) -> None:
        self.interval = interval
        self.last_ms = 0.0
        self.max_ms = 0.0
        self.counts = [0] * len(BUCKETS_MS)
        self.samples = 0
        self.sum_ms = 0.0  # with counts, a Prometheus histogram (runtime/metrics.py)
        if stall_ms is None:
            try:
                stall_ms = float(os.environ.get(STALL_ENV, "0") or 0)
            except ValueError:
                stall_ms = 0.0
        self.stall_ms = stall_ms
        self.stall_reports = 0
        self._task: asyncio.Future[None] | None = None
        self._beat = time.monotonic()
        self._watchdog: threading.Thread | None = None
        self._stop_watchdog = threading.Event()

    def start(
        self,
        spawn: Callable[[str, Callable[[], Coroutine[Any, Any, None]]], asyncio.Future[None]]
        | None = None,
    ) -> None:
        """Starts sampling; `spawn(name, factory)` runs the sampler elsewhere (app.py: as a
        permanent child of the supervisor) and returns its task."""
        if self._task is None:
            self._beat = time.monotonic()
            if spawn is None:
                self._task = asyncio.get_running_loop().create_task(self._run())
            else:
                self._task = spawn("event_loop_lag", self._run)
            if self.stall_ms > 0:
                self._stop_watchdog.clear()
                self._watchdog = threading.Thread(
                    target=self._watch,
                    args=(threading.get_ident(),),
                    name="rubberduck-loop-watchdog",
                    daemon=True,
                )
                self._watchdog.start()

    def record(self, lag_ms: float) -> None:
        self.last_ms = lag_ms
        self.max_ms = max(self.max_ms, lag_ms)
        self.counts[bisect.bisect_left(BUCKETS_MS, lag_ms)] += 1
        self.samples += 1
        self.sum_ms += lag_ms

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self._beat = time.monotonic()
            self.record(max(0.0, (loop.time() - expected) * 1000))

    def _watch(self, loop_thread: int) -> None:
        """Logs the loop thread's stack once per stall longer than `stall_ms`."""
        reported_beat = -1.0
        while not self._stop_watchdog.wait(WATCHDOG_TICK_S):
            beat = self._beat
            late_ms = (time.monotonic() - beat) * 1000 - self.interval * 1000
            if late_ms < self.stall_ms or beat == reported_beat:
                continue
            reported_beat = beat
            if self.stall_reports >= MAX_STALL_REPORTS:
                return
            self.stall_reports += 1
            frame = sys._current_frames().get(loop_thread)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else "?"
            log.warning(
                "RubberDuck: the event loop has been blocked for %.0f ms, in:\n%s",
                late_ms,
                stack,
            )

    async def stop(self) -> None:
        self._stop_watchdog.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=1)
            self._watchdog = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def snapshot(self) -> dict[str, object]:
        state = "ok" if self.last_ms < 100 else "lagging"
        return {
            "state": state if self._task else "stopped",
            "lag_ms": round(self.last_ms, 2),
            "max_lag_ms": round(self.max_ms, 2),
            "p50_ms": percentile_bound(self.counts, 0.50),
            "p99_ms": percentile_bound(self.counts, 0.99),
            "samples": self.samples,
            "sum_ms": round(self.sum_ms, 3),
            "interval_s": self.interval,
            # "inf" rather than Infinity: JSON has no infinity.
            "buckets_ms": [b if math.isfinite(b) else "inf" for b in BUCKETS_MS],
            "counts": list(self.counts),
        }


def percentile_bound(counts: list[int], q: float) -> float | str | None:
    """The upper bound of the bucket holding the q-th sample (None without samples)."""
    total = sum(counts)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bound, count in zip(BUCKETS_MS, counts, strict=True):
        seen += count
        if seen >= rank:
            return bound if math.isfinite(bound) else "inf"
    return "inf"
