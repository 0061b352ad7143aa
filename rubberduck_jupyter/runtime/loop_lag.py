"""Measures how late the event loop wakes up: the symptom of anything blocking it."""

from __future__ import annotations

import asyncio
import contextlib


class LoopLagMonitor:
    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.last_ms = 0.0
        self.max_ms = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.last_ms = max(0.0, (loop.time() - expected) * 1000)
            self.max_ms = max(self.max_ms, self.last_ms)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def snapshot(self) -> dict[str, float | str]:
        state = "ok" if self.last_ms < 100 else "lagging"
        return {
            "state": state if self._task else "stopped",
            "lag_ms": round(self.last_ms, 2),
            "max_lag_ms": round(self.max_ms, 2),
        }
