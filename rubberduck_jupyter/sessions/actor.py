"""One actor per conversation: an asyncio task draining a bounded mailbox, so one
conversation's messages are handled in order while other conversations (and other
users) go on in parallel. An idle actor stops itself; the registry starts a new one on
the next message.

The drain loop runs under the server's supervisor (runtime/supervisor.py) as a transient
child of the group `session_actors`: a crash of the loop itself (a bug outside one turn's
own error handling) ends the turn that was running with `ActorCrashed` (its question is
already stored, and the turn records its answer so far), and the loop restarts after a
short backoff with its mailbox as it was, so the messages waiting behind it are answered.
An actor that keeps crashing is marked failed; what waits in its mailbox then ends with
`ActorCrashed` too, and the next message starts a fresh actor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..runtime.supervisor import Child, ChildState, Restart, Supervisor

log = logging.getLogger(__name__)

# How long a stopping actor lets its running turn finish cancelling (persist what it said).
STOP_GRACE_S = 5.0
# The supervisor group of every conversation actor (health and /metrics show its counts).
ACTOR_GROUP = "session_actors"


class MailboxFull(Exception):
    """The conversation already has as many messages waiting as it may queue."""


class ActorCrashed(Exception):
    """The conversation's actor crashed while this turn ran or waited (a bug; the server
    log has it). The user's message is stored; sending it again works."""


@dataclass
class Job:
    turn_id: str
    work: Callable[[], Awaitable[Any]]
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    cancelled: bool = False
    started: bool = False  # the work's coroutine began running
    # Set by the work once it is sure to record its own answer (even when cancelled); a
    # turn ended by a crash before that is recorded by its caller.
    recording: bool = False
    crashed: bool = False  # the actor crashed under it: the work was cancelled for that


class ConversationActor:
    def __init__(
        self,
        key: tuple[str, str],
        *,
        mailbox_size: int,
        idle_timeout: float,
        on_exit: Callable[[ConversationActor], None],
        supervisor: Supervisor,
    ) -> None:
        self.key = key
        self.idle_timeout = idle_timeout
        self._mailbox: asyncio.Queue[Job] = asyncio.Queue(maxsize=mailbox_size)
        self._on_exit = on_exit
        self._current: Job | None = None
        self._current_task: asyncio.Task[Any] | None = None
        self._stopping = False
        self.processed = 0
        self._supervisor = supervisor
        self._child = supervisor.start_child(
            f"{key[0]}/{key[1]}",
            self._drain,
            restart=Restart.TRANSIENT,
            group=ACTOR_GROUP,
            on_exit=self._ended,
        )

    @property
    def waiting(self) -> int:
        return self._mailbox.qsize()

    @property
    def alive(self) -> bool:
        return self._child.alive

    @property
    def restarts(self) -> int:
        return self._child.restarts

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

    async def _drain(self) -> None:
        """The supervised child: runs jobs in order until idle. The mailbox lives on the
        actor, not in this coroutine, so a restart after a crash keeps it."""
        try:
            while not self._stopping:
                job = await self._next_job()
                if job is None:
                    return
                if job.cancelled:
                    continue
                await self._run_job(job)
                # Waiting for the next message must not keep this one alive: a
                # 100k-character request stayed in memory until the next turn.
                del job
        except Exception:
            await self._abandon_current()
            raise  # the supervisor logs it and restarts the loop

    async def _run_job(self, job: Job) -> None:
        self._current = job
        task = self._current_task = asyncio.get_running_loop().create_task(self._work(job))
        try:
            await self._wait_turn(task)
        except asyncio.CancelledError:
            if not task.done():  # the actor itself is stopping
                task.cancel()
                await asyncio.wait({task}, timeout=STOP_GRACE_S)
            if not job.done.done():
                job.done.cancel()
            raise
        if task.cancelled():
            if not job.done.done():
                job.done.cancel()
        elif task.exception() is not None:  # the work reports its own errors; a bug
            exc = task.exception()
            log.error(
                "RubberDuck conversation %s: a turn failed",
                self.key[1],
                exc_info=(type(exc), exc, exc.__traceback__),
            )
            if not job.done.done():
                job.done.set_exception(exc)
        elif not job.done.done():
            job.done.set_result(task.result())
        self.processed += 1
        self._current = None
        self._current_task = None

    @staticmethod
    async def _work(job: Job) -> Any:
        job.started = True  # not before: a task cancelled before its first step never ran
        return await job.work()

    async def _wait_turn(self, task: asyncio.Task[Any]) -> None:
        """Until the turn's task ends. asyncio.wait neither raises the task's error nor
        cancels it when this actor is cancelled (the caller decides)."""
        await asyncio.wait({task})

    async def _abandon_current(self) -> None:
        """After a crash of the loop: the running turn ends (cancelled, so it records its
        answer so far) and its caller gets ActorCrashed."""
        job, task = self._current, self._current_task
        self._current = self._current_task = None
        if job is None:
            return
        job.crashed = True
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_GRACE_S)
        if not job.done.done():
            job.done.set_exception(ActorCrashed())

    def _ended(self, child: Child) -> None:
        """The supervisor's exit handler: this actor is gone for good."""
        failed = child.state is ChildState.FAILED
        for job in list(self._mailbox._queue):  # type: ignore[attr-defined]
            if not job.done.done():
                if failed:
                    job.done.set_exception(ActorCrashed())
                else:
                    job.done.cancel()
        self._on_exit(self)

    async def stop(self) -> None:
        """Ends the actor (and a turn it runs); bounded, so a server stop never hangs."""
        self._stopping = True
        if not await self._supervisor.stop_child(self._child, grace_s=2 * STOP_GRACE_S):
            log.warning("RubberDuck conversation %s did not stop in time", self.key[1])


class ActorRegistry:
    """The live actors, by (user, conversation)."""

    def __init__(
        self,
        *,
        mailbox_size: int = 8,
        idle_timeout: float = 300.0,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.mailbox_size = mailbox_size
        self.idle_timeout = idle_timeout
        # The server's (app.py); a registry made alone (tests, benchmarks) has its own.
        self.supervisor = supervisor if supervisor is not None else Supervisor()
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
                supervisor=self.supervisor,
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
        depths = [a.waiting for a in self._actors.values()]
        return {
            "actors": len(self._actors),
            "waiting": sum(depths),
            "deepest_mailbox": max(depths, default=0),
            "mailbox_size": self.mailbox_size,
        }

    async def stop(self) -> None:
        await asyncio.gather(*(a.stop() for a in list(self._actors.values())))
