"""Hooks through real pluggy: ordering, chaining, firstresult, and the per-plugin guard."""

from __future__ import annotations

import asyncio
import time
import types
from collections.abc import Callable
from typing import Any

import pytest

from rubberduck_jupyter.plugins import (
    EventBus,
    PluginRegistry,
    PluginStateChanged,
    hookimpl,
    plugin,
)

pytestmark = pytest.mark.timeout(10)


def module(name: str, **hooks: Callable[..., Any]) -> tuple[Any, types.ModuleType]:
    mod = types.ModuleType(f"fixture_{name}")
    spec = plugin(name=name, version="1.0", api=">=1,<2")
    mod.spec = spec  # type: ignore[attr-defined]
    for attr, fn in hooks.items():
        setattr(mod, attr, fn)
    return spec, mod


def add(reg: PluginRegistry, name: str, **hooks: Callable[..., Any]) -> None:
    spec, mod = module(name, **hooks)
    rec = reg.register_builtin(spec, mod)
    assert rec.state == "loaded", rec.reason


def tagger(tag: str, calls: list[str], **opts: Any) -> Callable[..., Any]:
    @hookimpl(**opts)
    def pre_input(text: str) -> str:
        calls.append(tag)
        return f"{text}>{tag}"

    return pre_input


async def test_tryfirst_and_trylast_order_and_lifo_within_a_priority() -> None:
    reg = PluginRegistry()
    calls: list[str] = []
    add(reg, "plain1", pre_input=tagger("plain1", calls))
    add(reg, "last", pre_input=tagger("last", calls, trylast=True))
    add(reg, "first", pre_input=tagger("first", calls, tryfirst=True))
    add(reg, "plain2", pre_input=tagger("plain2", calls))
    # pre_input chains: each sees the previous output, in pluggy's call order.
    assert await reg.hooks.pre_input("q", {}) == "q>first>plain2>plain1>last"
    assert calls == ["first", "plain2", "plain1", "last"]
    assert [i.plugin_name for i in reg.hooks.implementations("pre_input")] == calls


async def test_pre_input_none_keeps_the_text_and_route_hint_is_firstresult() -> None:
    reg = PluginRegistry()
    seen: list[str] = []

    @hookimpl(tryfirst=True)
    def pre_input(text: str) -> None:
        seen.append(text)

    @hookimpl
    def route_hint_none(text: str) -> None:
        seen.append("none")

    @hookimpl(trylast=True)
    def route_hint_late(text: str) -> str:
        seen.append("late")
        return "late-engine"

    @hookimpl
    def route_hint_answer(text: str, context: dict[str, Any]) -> str:
        seen.append("answer")
        return context["engine"]

    add(reg, "keep", pre_input=pre_input)
    add(reg, "none", route_hint=route_hint_none)
    add(reg, "late", route_hint=route_hint_late)
    add(reg, "answer", route_hint=route_hint_answer)
    assert await reg.hooks.pre_input("raw", {}) == "raw"
    assert await reg.hooks.route_hint("x", {"engine": "complex"}) == "complex"
    # 'answer' registered after 'none' runs first; 'late' (trylast) is never reached.
    assert seen == ["raw", "answer"]


async def test_analysis_augment_concatenates_and_tags_findings_async_and_sync() -> None:
    reg = PluginRegistry()

    @hookimpl
    async def analysis_augment(source: str, findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        await asyncio.sleep(0)
        return [{"rule": "async", "n": len(findings)}]

    @hookimpl(tryfirst=True)
    def analysis_augment_sync(source: str) -> list[dict[str, Any]]:
        return [{"rule": "sync"}]

    add(reg, "a", analysis_augment=analysis_augment)
    add(reg, "s", analysis_augment=analysis_augment_sync)
    out = await reg.hooks.analysis_augment("x = 1", [{"rule": "builtin"}], {})
    assert out == [{"rule": "sync", "plugin": "s"}, {"rule": "async", "n": 1, "plugin": "a"}]


async def test_a_crashing_hook_is_counted_disabled_after_n_and_the_others_keep_running() -> None:
    bus = EventBus()
    events: list[PluginStateChanged] = []

    async def on_state(ev: PluginStateChanged) -> None:
        events.append(ev)

    bus.subscribe(on_state, types=(PluginStateChanged,), name="states")
    reg = PluginRegistry(bus=bus, max_consecutive_failures=3)
    calls: list[str] = []

    @hookimpl(tryfirst=True)
    def post_response(text: str) -> None:
        calls.append("crash")
        raise ValueError("boom")

    @hookimpl
    def post_response_ok(text: str) -> None:
        calls.append("ok")

    add(reg, "crashy", post_response=post_response)
    add(reg, "steady", post_response=post_response_ok)
    for _ in range(5):
        await reg.hooks.post_response("answer", {})
    assert calls == ["crash", "ok"] * 3 + ["ok", "ok"]
    rec = reg.get("crashy")
    assert rec is not None and rec.state == "disabled"
    assert rec.reason == "3 consecutive failures; last: post_response raised ValueError: boom"
    assert reg.list()[0]["state"] == "disabled" and reg.list()[0]["reason"] == rec.reason
    health = reg.health()
    assert health["crashy"]["failures"] == 3 and health["crashy"]["calls"] == 3
    assert health["steady"]["failures"] == 0 and health["steady"]["calls"] == 5
    assert reg.hooks.pm.get_plugin("crashy") is None
    await bus.join()
    assert [(e.name, e.state) for e in events][-1] == ("crashy", "disabled")
    assert events[-1].reason == rec.reason
    await bus.aclose()


async def test_a_success_resets_the_consecutive_count() -> None:
    reg = PluginRegistry(max_consecutive_failures=2)
    flips = iter([True, False, True, False, True])

    @hookimpl
    def post_response() -> None:
        if next(flips):
            raise RuntimeError("flaky")

    add(reg, "flaky", post_response=post_response)
    for _ in range(5):
        await reg.hooks.post_response("a", {})
    assert reg.get("flaky").state == "loaded"  # type: ignore[union-attr]
    assert reg.health()["flaky"]["failures"] == 3


async def test_a_hanging_async_hook_times_out_and_the_caller_goes_on() -> None:
    reg = PluginRegistry(hook_timeout_s=0.1, max_consecutive_failures=2)
    cancelled = asyncio.Event()

    @hookimpl(tryfirst=True)
    async def pre_input(text: str) -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    @hookimpl
    def pre_input_ok(text: str) -> str:
        return text + "!"

    add(reg, "hang", pre_input=pre_input)
    add(reg, "ok", pre_input=pre_input_ok)
    start = time.perf_counter()
    assert await reg.hooks.pre_input("hi", {}) == "hi!"
    assert time.perf_counter() - start < 1.0
    await asyncio.wait_for(cancelled.wait(), 1)
    h = reg.health()["hang"]
    assert h["timeouts"] == 1 and h["last_error"] == "pre_input timed out after 0.1 s"
    await reg.hooks.pre_input("hi", {})
    assert reg.get("hang").state == "disabled"  # type: ignore[union-attr]


async def test_a_hook_that_ignores_cancellation_still_cannot_hang_the_caller() -> None:
    reg = PluginRegistry(hook_timeout_s=0.05)
    release = asyncio.Event()

    @hookimpl
    async def post_response() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue  # a rude plugin

    add(reg, "rude", post_response=post_response)
    await asyncio.wait_for(reg.hooks.post_response("a", {}), 1)
    assert reg.health()["rude"]["timeouts"] == 1
    release.set()
    await asyncio.sleep(0.05)


async def test_a_slow_sync_hook_is_measured_counted_and_its_result_kept() -> None:
    reg = PluginRegistry(sync_budget_s=0.02, max_consecutive_failures=5)

    @hookimpl
    def pre_input(text: str) -> str:
        time.sleep(0.05)  # blocks the loop: cannot be pre-empted, only measured
        return text.upper()

    add(reg, "slow", pre_input=pre_input)
    assert await reg.hooks.pre_input("hi", {}) == "HI"
    h = reg.health()["slow"]
    assert h["failures"] == 1 and h["max_time_s"] >= 0.05  # type: ignore[operator]
    assert str(h["last_error"]).startswith("pre_input blocked the event loop for 0.0")
    assert str(h["last_error"]).endswith("(budget 0.02 s); make it async or faster")


async def test_disable_by_hand_stops_hooks_and_commands() -> None:
    reg = PluginRegistry()
    spec, mod = module("cmds")

    from rubberduck_jupyter.plugins import command

    @command("ping", help="Ping")
    async def ping(ctx: object) -> str:
        return "pong"

    @hookimpl
    def pre_input(text: str) -> str:
        return "changed"

    mod.ping, mod.pre_input = ping, pre_input  # type: ignore[attr-defined]
    reg.register_builtin(spec, mod)
    assert list(reg.commands()) == ["ping"]
    reg.disable("cmds", "turned off by an admin")
    assert reg.commands() == {}
    assert await reg.hooks.pre_input("same", {}) == "same"
    assert reg.list()[0]["reason"] == "turned off by an admin"
