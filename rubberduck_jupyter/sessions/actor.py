"""One actor per conversation: an asyncio task draining a bounded mailbox, so one
conversation's messages are handled in order while other conversations (and other
users) go on in parallel. An idle actor stops itself; the registry starts a new one on
the next message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# How long a stopping actor lets its running turn finish cancelling (persist what it said).
STOP_GRACE_S = 5.0


class MailboxFull(Exception):
    """The conversation already has as many messages waiting as it may queue."""


@dataclass
class Job:
    turn_id: str
    work: Callable[[], Awaitable[Any]]
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    cancelled: bool = False


class ConversationActor:
    def __init__(
        self,
        key: tuple[str, str],
        *,
        mailbox_size: int,
        idle_timeout: float,
        on_exit: Callable[[ConversationActor], None],
    ) -> None:
        self.key = key
        self.idle_timeout = idle_timeout
        self._mailbox: asyncio.Queue[Job] = asyncio.Queue(maxsize=mailbox_size)
        self._on_exit = on_exit
        self._current: Job | None = None
        self._current_task: asyncio.Task[Any] | None = None
        self._stopping = False
        self.processed = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def waiting(self) -> int:
        return self._mailbox.qsize()

    @property
    def alive(self) -> bool:
        return not self._task.done()

    def submit(self, job: Job) -> None:
        try:
            self._mailbox.put_nowait(job)
        except asyncio.QueueFull:
            raise MailboxFull() from None

    def cancel(self, turn_id: str) -> bool:
        """Stops the turn if it runs, or drops it from the mailbox if it waits."""
        if self._current is not None and self._current.turn_id == turn_id:
            if self._current_task is not None:
                self._current_task.cancel()
            return True
        for job in list(self._mailbox._queue):  # type: ignore[attr-defined]
            if job.turn_id == turn_id and not job.cancelled:
                job.cancelled = True
                if not job.done.done():
                    job.done.cancel()
                return True
        return False

    async def _next_job(self) -> Job | None:
        """The next job, or None once the actor has been idle for `idle_timeout`.

        asyncio.wait, not wait_for: Python 3.11's wait_for can swallow a cancellation
        that arrives as the queue hands over an item, which left stop() waiting forever.
        """
        while not self._stopping:
            getter = asyncio.ensure_future(self._mailbox.get())
            try:
                done, _ = await asyncio.wait({getter}, timeout=self.idle_timeout)
            finally:
                if not getter.done():
                    getter.cancel()
            if done:
                return getter.result()
            if self._mailbox.empty():
                return None
        return None

    async def _run(self) -> None:
        try:
            while not self._stopping:
                job = await self._next_job()
                if job is None:
                    return
                if job.cancelled:
                    continue
                self._current = job
                self._current_task = asyncio.get_running_loop().create_task(job.work())
                try:
                    result = await asyncio.shield(self._current_task)
                except asyncio.CancelledError:
                    if not self._current_task.done():  # the actor itself is stopping
                        self._current_task.cancel()
                        await asyncio.wait({self._current_task}, timeout=STOP_GRACE_S)
                        if not job.done.done():
                            job.done.cancel()
                        raise
                    if not job.done.done():
                        job.done.cancel()
                except Exception as exc:  # the work reports its own errors; this is a bug
                    log.exception("RubberDuck conversation %s: a turn failed", self.key[1])
                    if not job.done.done():
                        job.done.set_exception(exc)
                else:
                    if not job.done.done():
                        job.done.set_result(result)
                finally:
                    self.processed += 1
                    self._current = None
                    self._current_task = None
                    # Waiting for the next message must not keep this one alive: a
                    # 100k-character request stayed in memory until the next turn.
                    del job
        finally:
            for job in list(self._mailbox._queue):  # type: ignore[attr-defined]
                if not job.done.done():
                    job.done.cancel()
            self._on_exit(self)

    async def stop(self) -> None:
        """Ends the actor (and a turn it runs); bounded, so a server stop never hangs."""
        self._stopping = True
        self._task.cancel()
        await asyncio.wait({self._task}, timeout=2 * STOP_GRACE_S)
        if not self._task.done():
            log.warning("RubberDuck conversation %s did not stop in time", self.key[1])


class ActorRegistry:
    """The live actors, by (user, conversation)."""

    def __init__(self, *, mailbox_size: int = 8, idle_timeout: float = 300.0) -> None:
        self.mailbox_size = mailbox_size
        self.idle_timeout = idle_timeout
        self._actors: dict[tuple[str, str], ConversationActor] = {}

    def get(self, user: str, conversation_id: str) -> ConversationActor:
        key = (user, conversation_id)
        actor = self._actors.get(key)
        if actor is None or not actor.alive:
            actor = ConversationActor(
                key,
                mailbox_size=self.mailbox_size,
                idle_timeout=self.idle_timeout,
                on_exit=self._forget,
            )
            self._actors[key] = actor
        return actor

    def find(self, user: str, conversation_id: str) -> ConversationActor | None:
        return self._actors.get((user, conversation_id))

    def _forget(self, actor: ConversationActor) -> None:
        if self._actors.get(actor.key) is actor:
            del self._actors[actor.key]

    def __len__(self) -> int:
        return len(self._actors)

    def snapshot(self) -> dict[str, int]:
        return {
            "actors": len(self._actors),
            "waiting": sum(a.waiting for a in self._actors.values()),
        }

    async def stop(self) -> None:
        await asyncio.gather(*(a.stop() for a in list(self._actors.values())))
