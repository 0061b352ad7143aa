"""Saving an answer while it streams, so a kill -9 loses at most a few seconds of it.

The turn calls `touch()` after each piece of visible text. A save happens when
`every_chunks` pieces have come since the last one, or `interval_s` after the first piece
not yet saved, whichever is first; a stream that pauses is still saved on time (a timer),
and one that stays silent costs nothing. The write is queued on the store's thread and never
awaited here, so the stream does not wait for the disk; at most one save is in flight per
turn (a slow disk coalesces saves instead of queueing them). The final answer is queued
after the last save on the same thread, and `save_partial` never overwrites a final row,
so the order cannot go wrong.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..domain.models import Message
from .store import AsyncConversationStore

log = logging.getLogger(__name__)

# Defaults of RubberDuckApp.partial_save_interval / partial_save_chunks. 2 s bounds what a
# crash loses to what a reader takes in at a glance; 100 pieces (~100 tokens) keeps a fast
# stream from going 2 s unsaved while costing one small SQLite transaction per ~1-2 s of a
# typical 50-100 tokens/s stream (benchmarks/partial_save.py measures the cost).
DEFAULT_INTERVAL_S = 2.0
DEFAULT_EVERY_CHUNKS = 100


class PartialSaver:
    def __init__(
        self,
        store: AsyncConversationStore,
        build: Callable[[], Message],
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        every_chunks: int = DEFAULT_EVERY_CHUNKS,
    ) -> None:
        self._store = store
        self._build = build
        self.interval_s = interval_s
        self.every_chunks = every_chunks
        self._loop = asyncio.get_running_loop()
        self._last_save = self._loop.time()
        self._unsaved = 0  # pieces since the last save was queued
        self._timer: asyncio.TimerHandle | None = None
        self._inflight: asyncio.Future[bool] | None = None
        self._again = False  # a save was due while one was in flight
        self._closed = interval_s <= 0  # 0 turns partial saves off
        self.saves = 0  # saves written, for tests and benchmarks

    def touch(self) -> None:
        if self._closed:
            return
        self._unsaved += 1
        if self.every_chunks > 0 and self._unsaved >= self.every_chunks:
            self._save()
        elif self._timer is None:
            delay = max(0.0, self._last_save + self.interval_s - self._loop.time())
            self._timer = self._loop.call_later(delay, self._save)

    def _save(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._closed or not self._unsaved:
            return
        if self._inflight is not None and not self._inflight.done():
            self._again = True
            return
        self._unsaved = 0
        self._last_save = self._loop.time()
        try:
            message = self._build()
        except Exception:  # a save is a convenience; it must never break the turn
            log.exception("RubberDuck could not build the partial answer of %s", self)
            return
        self._inflight = self._store.submit(self._store.sync.save_partial, message)
        self._inflight.add_done_callback(self._saved)

    def _saved(self, future: asyncio.Future[bool]) -> None:
        if future.cancelled():
            return
        if future.exception() is not None:
            log.warning("RubberDuck could not save a partial answer: %s", future.exception())
        else:
            self.saves += 1
        if self._again and not self._closed:
            self._again = False
            self._save()

    def close(self) -> None:
        """No more saves: the final answer is about to be written (after any in flight)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
