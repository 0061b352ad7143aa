"""Conversation actors under the supervisor: a crash of the drain loop keeps the mailbox;
an actor that keeps crashing fails, ends what waits in it, and is replaced."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from rubberduck_jupyter.runtime.supervisor import Policy, Supervisor
from rubberduck_jupyter.sessions.actor import (
    ACTOR_GROUP,
    ActorCrashed,
    ActorRegistry,
    ConversationActor,
    Job,
)


def registry(max_restarts: int) -> ActorRegistry:
    policy = Policy(base_backoff_s=0.001, max_backoff_s=0.002, max_restarts=max_restarts)
    return ActorRegistry(
        mailbox_size=4, idle_timeout=5, supervisor=Supervisor(policy=policy, rng=random.Random(0))
    )


async def test_a_loop_crash_ends_the_running_turn_and_the_mailbox_is_drained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reg = registry(max_restarts=3)
    original = ConversationActor._wait_turn
    crashed = asyncio.Event()

    async def crash_first(self: ConversationActor, task: asyncio.Task[Any]) -> None:
        if not crashed.is_set():
            crashed.set()
            await asyncio.sleep(0.01)  # the turn's task has begun
            raise RuntimeError("loop bug")
        await original(self, task)

    monkeypatch.setattr(ConversationActor, "_wait_turn", crash_first)
    cancelled_work = asyncio.Event()

    async def slow() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled_work.set()
            raise
        return "never"

    async def quick() -> str:
        return "answered"

    actor = reg.get("alice", "c1")
    first, second = Job("t1", slow), Job("t2", quick)
    actor.submit(first)
    actor.submit(second)
    with pytest.raises(ActorCrashed):
        await asyncio.wait_for(first.done, 2)
    assert first.crashed and first.started and cancelled_work.is_set()  # the turn stopped
    assert await asyncio.wait_for(second.done, 2) == "answered"
    assert actor.restarts == 1 and actor.alive
    assert reg.find("alice", "c1") is actor  # the same actor, its mailbox kept
    assert reg.supervisor.snapshot()["groups"][ACTOR_GROUP]["restarts"] == 1
    await reg.stop()


async def test_an_actor_that_keeps_crashing_fails_ends_its_waiting_turns_and_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reg = registry(max_restarts=1)

    async def always(self: ConversationActor, task: asyncio.Task[Any]) -> None:
        task.cancel()
        raise RuntimeError("loop bug")

    monkeypatch.setattr(ConversationActor, "_wait_turn", always)

    async def quick() -> str:
        return "answered"

    actor = reg.get("alice", "c1")
    jobs = [Job(f"t{i}", quick) for i in range(3)]
    for job in jobs:
        actor.submit(job)
    for job in jobs:
        with pytest.raises(ActorCrashed):
            await asyncio.wait_for(job.done, 2)
    # Cancelled before their first step, the first two never ran; the third only waited.
    assert [j.crashed for j in jobs] == [True, True, False]
    assert not any(j.started for j in jobs)
    assert not actor.alive and reg.find("alice", "c1") is None
    group = reg.supervisor.snapshot()["groups"][ACTOR_GROUP]
    assert group["failed"] == 1 and group["restarts"] == 1 and group["children"] == 0
    monkeypatch.undo()
    fresh = reg.get("alice", "c1")
    assert fresh is not actor
    job = Job("t9", quick)
    fresh.submit(job)
    assert await asyncio.wait_for(job.done, 2) == "answered"
    await reg.stop()


async def test_the_session_manager_keeps_the_registry_it_is_given() -> None:
    from rubberduck_jupyter.domain.models import Project
    from rubberduck_jupyter.sessions.manager import SessionManager

    reg = registry(max_restarts=1)
    manager = SessionManager(
        store=None,  # type: ignore[arg-type]
        model=None,  # type: ignore[arg-type]
        has_model=lambda: False,
        engines={},
        project=Project.for_root("/tmp", "owner", None),
        registry=reg,
    )
    assert manager.registry is reg  # empty, hence falsy: it used to be replaced
