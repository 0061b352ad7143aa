"""The REST chat turns running now, per user, so a Stop from elsewhere can end one.

A `%%duck` answer streams over its own HTTP request (handlers/chat_rest.py), but the Stop
button under that answer lives in the browser, which holds no handle on that request: it
names the turn by id (`POST /rubberduck/api/chat/cancel`). Keys are (user, turn id), so a
user can stop only their own turns; an id another user also used is simply not found.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class RunningTurns:
    def __init__(self) -> None:
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._stopped: set[tuple[str, str]] = set()

    @contextmanager
    def running(self, user: str, turn_id: str, task: asyncio.Task[None]) -> Iterator[None]:
        key = (user, turn_id)
        self._tasks[key] = task
        try:
            yield
        finally:
            if self._tasks.get(key) is task:
                del self._tasks[key]
            self._stopped.discard(key)

    def cancel(self, user: str, turn_id: str) -> bool:
        """Cancels `user`'s running turn `turn_id`; False when there is none."""
        task = self._tasks.get((user, turn_id))
        if task is None or task.done():
            return False
        self._stopped.add((user, turn_id))
        task.cancel()
        return True

    def stopped_by_user(self, user: str, turn_id: str) -> bool:
        """Whether the turn's cancellation came from `cancel` (not its client leaving)."""
        return (user, turn_id) in self._stopped

    def __len__(self) -> int:
        return len(self._tasks)
