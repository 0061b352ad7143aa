"""The event bus: ordered per subscriber, bounded (drop-oldest, counted), isolated, non-blocking."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from rubberduck_jupyter.plugins import (
    AnalysisDone,
    AnswerDone,
    EventBus,
    FileChanged,
    IndexUpdated,
    MessageStored,
    PluginStateChanged,
)

pytestmark = pytest.mark.timeout(10)


def changed(i: int) -> FileChanged:
    return FileChanged(root="/r", path=f"f{i}.py", change="modified")


async def test_events_are_frozen_typed_data() -> None:
    ev = AnswerDone(user="u", conversation_id="c", message_id="m", engine="simple")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.engine = "x"  # type: ignore[misc]
    assert ev.at > 0
    for other in (
        MessageStored(user="u", conversation_id="c", message_id="m", role="user"),
        AnalysisDone(path="a.py", findings=2),
        IndexUpdated(root="/r", files=1, chunks=3),
        PluginStateChanged(name="p", state="loaded"),
    ):
        assert dataclasses.is_dataclass(other)
    with pytest.raises(TypeError):
        EventBus().publish("not an event")  # type: ignore[arg-type]


async def test_ordered_per_subscriber_and_a_slow_one_does_not_delay_the_fast_one() -> None:
    bus = EventBus()
    fast: list[str] = []
    slow: list[str] = []
    running = 0
    overlap = False

    async def on_fast(ev: FileChanged) -> None:
        fast.append(ev.path)

    async def on_slow(ev: FileChanged) -> None:
        nonlocal running, overlap
        running += 1
        overlap = overlap or running > 1
        await asyncio.sleep(0.02)
        slow.append(ev.path)
        running -= 1

    bus.subscribe(on_fast, name="fast")
    bus.subscribe(on_slow, name="slow")
    start = time.perf_counter()
    for i in range(10):
        bus.publish(changed(i))
    assert time.perf_counter() - start < 0.01  # publish never waits for subscribers
    await asyncio.sleep(0.01)
    assert fast == [f"f{i}.py" for i in range(10)]  # all delivered while slow is on its 1st
    assert len(slow) < 3
    await bus.join()
    assert slow == [f"f{i}.py" for i in range(10)]
    assert not overlap  # one event at a time per subscriber
    await bus.aclose()


async def test_a_full_queue_drops_the_oldest_and_counts_it() -> None:
    bus = EventBus()
    got: list[str] = []
    gate = asyncio.Event()

    async def on_event(ev: FileChanged) -> None:
        await gate.wait()
        got.append(ev.path)

    bus.subscribe(on_event, name="gated", maxsize=3)
    bus.publish(changed(0))
    await asyncio.sleep(0.01)  # f0 is being handled; the queue is empty again
    for i in range(1, 8):
        bus.publish(changed(i))
    stats = bus.stats()["subscribers"]["gated"]
    assert stats["dropped"] == 4 and stats["queued"] == 3
    gate.set()
    await bus.join()
    assert got == ["f0.py", "f5.py", "f6.py", "f7.py"]  # oldest dropped, order kept
    assert bus.stats()["published"] == 8
    await bus.aclose()


async def test_a_failing_subscriber_is_counted_and_isolated() -> None:
    bus = EventBus()
    good: list[int] = []
    attempts = 0

    async def on_good(ev: IndexUpdated) -> None:
        good.append(ev.files)

    def on_bad(ev: IndexUpdated) -> None:  # a sync handler may raise too
        nonlocal attempts
        attempts += 1
        raise RuntimeError(f"bad {ev.files}")

    bus.subscribe(on_bad, name="bad")
    bus.subscribe(on_good, name="good")
    for i in range(3):
        bus.publish(IndexUpdated(root="/r", files=i, chunks=0))
    await bus.join()
    assert good == [0, 1, 2] and attempts == 3  # the bad one saw every event too
    stats = bus.stats()["subscribers"]
    assert stats["bad"]["failed"] == 3 and stats["bad"]["last_error"] == "RuntimeError: bad 2"
    assert stats["good"]["failed"] == 0 and stats["good"]["delivered"] == 3
    await bus.aclose()


async def test_a_hanging_subscriber_times_out_and_gets_the_next_event() -> None:
    bus = EventBus(handler_timeout_s=0.05)
    got: list[str] = []

    async def on_event(ev: FileChanged) -> None:
        if ev.path == "f0.py":
            await asyncio.sleep(60)
        got.append(ev.path)

    bus.subscribe(on_event, name="hang")
    bus.publish(changed(0))
    bus.publish(changed(1))
    await bus.join(timeout_s=2)
    assert got == ["f1.py"]
    stats = bus.stats()["subscribers"]["hang"]
    assert stats["timeouts"] == 1 and stats["last_error"] == "timed out after 0.05 s"
    await bus.aclose()


async def test_type_filters_and_unsubscribe() -> None:
    bus = EventBus()
    only_files: list[object] = []

    async def on_file(ev: FileChanged) -> None:
        only_files.append(ev)

    sub = bus.subscribe(on_file, types=(FileChanged,), name="files")
    bus.publish(AnalysisDone(path="a.py", findings=1))
    bus.publish(changed(1))
    await bus.join()
    assert [type(e) for e in only_files] == [FileChanged]
    with pytest.raises(ValueError, match="a subscriber named 'files' exists"):
        bus.subscribe(on_file, name="files")
    sub.cancel()
    bus.publish(changed(2))
    await asyncio.sleep(0.01)
    assert len(only_files) == 1 and "files" not in bus.stats()["subscribers"]
    await bus.aclose()


async def test_a_busy_publisher_loop_is_not_blocked_by_a_flood() -> None:
    bus = EventBus()

    async def on_event(ev: FileChanged) -> None:
        await asyncio.sleep(0.001)

    bus.subscribe(on_event, name="slowish", maxsize=10)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    start = time.perf_counter()
    for i in range(10_000):
        bus.publish(changed(i))
        if i % 1000 == 0:
            await asyncio.sleep(0)
    elapsed = time.perf_counter() - start
    task.cancel()
    assert elapsed < 1.0 and ticks >= 5
    assert bus.stats()["subscribers"]["slowish"]["dropped"] >= 9_000
    await bus.aclose()
