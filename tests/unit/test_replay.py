"""ReplayHub alone: numbering, replay-then-attach, the limits, and ids reused after a turn."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from rubberduck_jupyter.sessions.replay import (
    ReplayHub,
    ReplayLimits,
    ResumeRefused,
    TurnRunning,
)


class Socket:
    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.open = True

    def __call__(self, text: str) -> bool:
        if self.open:
            self.frames.append(json.loads(text))
        return self.open


def scripted(count: int, gate: asyncio.Event | None = None) -> Any:
    """A turn emitting `count` chunks then done; waits on `gate` after the first half."""

    async def run(emit: Any) -> None:
        for i in range(count):
            if gate is not None and i == count // 2:
                await gate.wait()
            await emit({"type": "chunk", "id": "t", "seq": i, "text": f"{i} "})
        await emit({"type": "done", "id": "t"})

    return run


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_frames_are_numbered_and_a_resume_continues_exactly_after() -> None:
    hub = ReplayHub()
    gate = asyncio.Event()
    first = Socket()
    hub.start("u", "t", scripted(10, gate), owner=first, sink=first)
    await _settle()
    assert [f["n"] for f in first.frames] == [1, 2, 3, 4, 5]
    first.open = False
    hub.detach(first)
    gate.set()
    await _settle()
    second = Socket()
    hub.resume("u", "t", 3, owner=second, sink=second)
    assert [f["n"] for f in second.frames] == list(range(4, 12))
    assert second.frames[-1]["type"] == "done"


async def test_a_resume_attaches_a_running_turn_after_its_replay() -> None:
    hub = ReplayHub()
    gate = asyncio.Event()
    first, second = Socket(), Socket()
    hub.start("u", "t", scripted(6, gate), owner=first, sink=first)
    await _settle()
    hub.detach(first)
    hub.resume("u", "t", 1, owner=second, sink=second)
    gate.set()
    await _settle()
    assert [f["n"] for f in second.frames] == list(range(2, 8))
    assert hub.attached_running(second) == 0  # done: over


async def test_dropped_frames_make_a_resume_needing_them_refused() -> None:
    hub = ReplayHub(ReplayLimits(max_frames=3))
    sink = Socket()
    hub.start("u", "t", scripted(8), owner=sink, sink=sink)
    await _settle()
    assert hub.snapshot()["frames"] == 3
    with pytest.raises(ResumeRefused):
        hub.resume("u", "t", 5, owner=sink, sink=sink)
    hub.resume("u", "t", 6, owner=sink, sink=sink)  # 7..9 are kept
    with pytest.raises(ValueError):
        hub.resume("u", "t", 10, owner=sink, sink=sink)


async def test_byte_limit_drops_the_oldest_finished_turn_first() -> None:
    hub = ReplayHub(ReplayLimits(max_bytes=1000))
    sink = Socket()
    for turn_id in ("a", "b", "c"):
        hub.start("u", turn_id, scripted(5), owner=sink, sink=sink)
        await _settle()
    assert hub.get("u", "a") is None
    assert hub.get("u", "c") is not None
    assert hub.snapshot()["bytes"] <= 1000


async def test_the_turn_limit_cancels_a_detached_running_turn() -> None:
    hub = ReplayHub(ReplayLimits(max_turns=1))
    gate = asyncio.Event()
    sink = Socket()
    old = hub.start("u", "old", scripted(4, gate), owner=sink, sink=sink)
    await _settle()
    hub.detach(sink)
    hub.start("u", "new", scripted(1), owner=sink, sink=sink)
    await _settle()
    assert old.task is not None and old.task.cancelled()
    assert hub.get("u", "old") is None


async def test_grace_expiry_cancels_and_users_are_apart() -> None:
    hub = ReplayHub(ReplayLimits(grace_s=0.05))
    gate = asyncio.Event()
    sink = Socket()
    turn = hub.start("alice", "t", scripted(4, gate), owner=sink, sink=sink)
    await _settle()
    with pytest.raises(ResumeRefused):
        hub.resume("bob", "t", 0, owner=sink, sink=sink)
    assert not hub.cancel("bob", "t")
    hub.detach(sink)
    await asyncio.sleep(0.2)
    assert turn.task is not None and turn.task.cancelled()


async def test_an_id_is_free_again_once_its_turn_said_done() -> None:
    hub = ReplayHub()
    sink = Socket()
    hub.start("u", "t", scripted(2), owner=sink, sink=sink)
    with pytest.raises(TurnRunning):
        hub.start("u", "t", scripted(2), owner=sink, sink=sink)
    await _settle()
    again = Socket()
    hub.start("u", "t", scripted(1), owner=again, sink=again)
    await _settle()
    # The new turn's frames are kept too (the user's entry survived the old turn's drop).
    assert hub.snapshot()["frames"] == 2
    assert [f["n"] for f in again.frames] == [1, 2]
    await hub.close()
