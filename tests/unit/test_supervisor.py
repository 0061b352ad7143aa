"""The supervisor with real asyncio tasks and tiny backoffs: restarts, intensity, policies,
stop, and one-for-one isolation."""

from __future__ import annotations

import asyncio
import random

import pytest

from rubberduck_jupyter.runtime.supervisor import (
    ChildState,
    Policy,
    Restart,
    Supervisor,
)

FAST = Policy(base_backoff_s=0.001, max_backoff_s=0.005, max_restarts=3, period_s=60)


def supervisor(**kwargs: object) -> Supervisor:
    return Supervisor(policy=FAST, rng=random.Random(1), **kwargs)  # type: ignore[arg-type]


async def until(check: object, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.002)


async def test_a_crash_restarts_the_child_with_its_state_and_error_recorded() -> None:
    sup = supervisor()
    runs = 0
    forever = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise ValueError("boom")
        await forever.wait()

    child = sup.start_child("probe", flaky)
    await until(lambda: runs == 2)
    assert child.state is ChildState.RUNNING
    assert child.restarts == 1
    assert child.last_error == "ValueError: boom"
    snap = sup.snapshot()["children"]["probe"]
    assert snap["state"] == "running" and snap["restarts"] == 1
    assert snap["last_start"] is not None
    await sup.stop()


async def test_past_the_intensity_the_child_fails_and_stays_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sup = supervisor()
    runs = 0

    async def always_crashes() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError(f"crash {runs}")

    child = sup.start_child("bad", always_crashes)
    await until(lambda: child.state is ChildState.FAILED)
    # max_restarts=3: the first run and 3 restarts; the 4th crash within the period fails it.
    assert runs == 4 and child.restarts == 3
    await asyncio.sleep(0.05)
    assert runs == 4, "a failed child must not be restarted"
    snap = sup.snapshot()
    assert snap["state"] == "degraded" and snap["failed"] == ["bad"]
    assert snap["children"]["bad"]["last_error"] == "RuntimeError: crash 4"
    stays_down = [r for r in caplog.records if "stays down" in r.getMessage()]
    assert len(stays_down) == 1 and "crash 4" in stays_down[0].getMessage()


async def test_crashes_spread_beyond_the_period_never_fail_the_child() -> None:
    now = [0.0]
    sup = Supervisor(policy=FAST, clock=lambda: now[0])
    runs = 0
    forever = asyncio.Event()

    async def crashes_now_and_then() -> None:
        nonlocal runs
        runs += 1
        now[0] += 61  # each crash comes a period after the last
        if runs <= 6:
            raise RuntimeError("rare")
        await forever.wait()

    child = sup.start_child("rare", crashes_now_and_then)
    await until(lambda: runs == 7)
    assert child.state is ChildState.RUNNING and child.restarts == 6
    await sup.stop()


async def test_a_transient_child_that_returns_is_done_and_a_permanent_one_restarts() -> None:
    sup = supervisor()
    transient_runs = permanent_runs = 0

    async def probe() -> None:
        nonlocal transient_runs
        transient_runs += 1

    async def loop_that_returns() -> None:
        nonlocal permanent_runs
        permanent_runs += 1
        await asyncio.sleep(0)

    transient = sup.start_child("probe", probe, restart=Restart.TRANSIENT)
    permanent = sup.start_child("loop", loop_that_returns, restart=Restart.PERMANENT)
    await until(lambda: transient.state is ChildState.DONE)
    await until(lambda: permanent.state is ChildState.FAILED)
    assert transient_runs == 1 and transient.restarts == 0
    assert permanent_runs == 4  # restarted after each return, until the intensity
    # A done named child starts again on request and keeps its record.
    again = sup.start_child("probe", probe, restart=Restart.TRANSIENT)
    assert again is transient
    await until(lambda: transient_runs == 2 and transient.state is ChildState.DONE)


async def test_stop_cancels_every_child_and_runs_their_cleanup() -> None:
    sup = supervisor()
    cleaned: list[str] = []
    exited: list[str] = []

    def waiter(name: str) -> object:
        async def run() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                cleaned.append(name)

        return run

    a = sup.start_child("a", waiter("a"), on_exit=lambda c: exited.append(c.name))  # type: ignore[arg-type]
    b = sup.start_child("b", waiter("b"), group="g")  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    await asyncio.wait_for(sup.stop(), 2)
    assert sorted(cleaned) == ["a", "b"]
    assert a.state is ChildState.STOPPED and b.state is ChildState.STOPPED
    assert exited == ["a"]
    assert a.task is not None and a.task.cancelled()
    with pytest.raises(RuntimeError):
        sup.start_child("c", waiter("c"))  # type: ignore[arg-type]


async def test_stop_during_backoff_stops_the_child() -> None:
    sup = Supervisor(policy=Policy(base_backoff_s=10, max_backoff_s=10), rng=random.Random(1))

    async def crashes() -> None:
        raise RuntimeError("x")

    child = sup.start_child("slow", crashes)
    await until(lambda: child.state is ChildState.BACKING_OFF)
    await asyncio.wait_for(sup.stop(), 2)
    assert child.state is ChildState.STOPPED and child.restarts == 0


async def test_one_childs_crashes_never_touch_another() -> None:
    sup = supervisor()
    steady_runs = 0
    ticks = 0

    async def steady() -> None:
        nonlocal steady_runs, ticks
        steady_runs += 1
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    async def crashes() -> None:
        raise RuntimeError("mine only")

    good = sup.start_child("good", steady)
    bad = sup.start_child("bad", crashes)
    await until(lambda: bad.state is ChildState.FAILED)
    seen = ticks
    await asyncio.sleep(0.02)
    assert ticks > seen, "the healthy child kept running"
    assert good.state is ChildState.RUNNING and good.restarts == 0 and steady_runs == 1
    assert good.last_error is None
    await sup.stop()


async def test_a_group_reports_counts_and_types_only() -> None:
    sup = supervisor(scrub=lambda text: text.replace("sk-secret", "[REDACTED]"))
    gate = asyncio.Event()
    crashed = False

    async def member() -> None:
        nonlocal crashed
        if not crashed:
            crashed = True
            raise KeyError("alice's question")
        await gate.wait()

    for i in range(3):
        sup.start_child(f"alice/conv-{i}", member, restart=Restart.TRANSIENT, group="actors")

    def restarted() -> bool:
        group = sup.snapshot()["groups"]["actors"]
        return group["restarts"] == 1 and group["states"]["running"] == 3

    await until(restarted)
    group = sup.snapshot()["groups"]["actors"]
    assert group["children"] == 3 and group["restarts"] == 1 and group["failed"] == 0
    assert group["last_error_type"] == "KeyError"
    assert "alice" not in repr(sup.snapshot())  # neither names nor messages of members
    gate.set()
    await until(lambda: sup.snapshot()["groups"]["actors"]["children"] == 0)
    assert sup.snapshot()["groups"]["actors"]["restarts"] == 1  # cumulative

    async def leaks() -> None:
        raise RuntimeError("key sk-secret leaked")

    named = sup.start_child("named", leaks, restart=Restart.TRANSIENT)
    await until(lambda: named.restarts >= 1)
    assert named.last_error == "RuntimeError: key [REDACTED] leaked"
    await sup.stop()


async def test_reported_children_appear_in_the_same_shape() -> None:
    sup = supervisor()
    sup.report("watcher", lambda: {"state": "running", "restarts": 2, "last_error": None})

    def broken() -> dict[str, object]:
        raise OSError("gone")

    sup.report("broken", broken)
    children = sup.snapshot()["children"]
    assert children["watcher"]["restarts"] == 2
    assert children["broken"]["state"] == "unknown"


async def test_backoff_grows_is_capped_and_jittered() -> None:
    sup = Supervisor(policy=Policy(base_backoff_s=1, max_backoff_s=4), rng=random.Random(3))

    async def noop() -> None:
        return None

    child = sup.start_child("x", noop, restart=Restart.TRANSIENT)
    delays = []
    for crashes in range(1, 6):
        child.crashes.extend([0.0] * (crashes - len(child.crashes)))
        delays.append(sup._backoff(child))
    bounds = [1, 2, 4, 4, 4]
    for delay, bound in zip(delays, bounds, strict=True):
        assert bound / 2 <= delay <= bound
    await sup.stop()


async def test_an_index_refresh_that_crashes_is_run_again_with_the_same_files(
    tmp_path: object,
) -> None:
    from pathlib import Path

    from rubberduck_jupyter.index.service import IndexService

    sup = supervisor()
    root = Path(str(tmp_path))

    def spawn(name: str, factory: object) -> object:
        child = sup.start_child(name, factory, restart=Restart.TRANSIENT)  # type: ignore[arg-type]
        return child.task

    service = IndexService(root, root / "index.duckdb", debounce_s=0.001, spawn=spawn)  # type: ignore[arg-type]
    calls: list[tuple[list[Path], bool]] = []

    async def refresh(paths: list[Path], rescan: bool = False) -> None:
        calls.append((paths, rescan))
        if len(calls) == 1:
            raise RuntimeError("a bug outside the refresh's own error handling")

    service._refresh_files = refresh  # type: ignore[method-assign]
    service._queue_refresh({root / "a.py"}, rescan=False)
    await until(lambda: len(calls) == 2 and service.refresh_idle)
    assert calls[0] == calls[1] == ([root / "a.py"], False)
    child = sup.child("index_refresh")
    assert child is not None and child.state is ChildState.DONE and child.restarts == 1
    await sup.stop()
