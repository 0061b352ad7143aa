"""What plugins' hooks add to a chat turn.

    python benchmarks/plugins.py [--rounds 60] [--calls 2000]

1. Whole turns: the same streamed answer (~41 chunks from the fake provider, a separate
   process on 127.0.0.1) through `SessionManager.run_turn` wired with a `PluginHost` that
   holds 0, 10 or 50 no-op plugins, each implementing the three hooks a turn calls
   (`pre_input`, `route_hint`, `post_response`); interleaved round by round, medians.
   The baseline is the host with no plugin (the built-ins only): what every server pays.
2. The hooks alone: the three guarded hook calls a turn makes, 0/10/50 plugins, `--calls`
   times each, so the per-turn cost is measured without the provider's noise.

Goal (issue 12): 50 hooks add under 1 ms per turn. The isolation RPC's cost is measured
by benchmarks/plugins_rpc.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from llm_overhead import PROMPT, start_fake

from rubberduck_jupyter.domain.models import Project
from rubberduck_jupyter.engines.registry import build_engines
from rubberduck_jupyter.llm.config import build_models_config
from rubberduck_jupyter.llm.service import LLMService
from rubberduck_jupyter.plugin_host import PluginHost
from rubberduck_jupyter.plugin_settings import PluginSettings
from rubberduck_jupyter.plugins import hookimpl, plugin
from rubberduck_jupyter.protocol import ChatContext, ChatRequest
from rubberduck_jupyter.sessions.manager import SessionManager
from rubberduck_jupyter.sessions.preferences import PreferenceBook
from rubberduck_jupyter.sessions.store import AsyncConversationStore, ConversationStore

COUNTS = (0, 10, 50)


def noop_plugin(n: int) -> tuple[Any, types.ModuleType]:
    module = types.ModuleType(f"bench_noop_{n}")

    @hookimpl
    def pre_input(text: str) -> None:
        return None

    @hookimpl
    def route_hint(text: str) -> None:
        return None

    @hookimpl
    def post_response(text: str) -> None:
        return None

    module.pre_input = pre_input  # type: ignore[attr-defined]
    module.route_hint = route_hint  # type: ignore[attr-defined]
    module.post_response = post_response  # type: ignore[attr-defined]
    return plugin(name=f"noop-{n}", version="1.0", api=">=1,<2"), module


def host_with(count: int) -> PluginHost:
    host = PluginHost(PluginSettings(entry_points=False, reload=False))
    for n in range(count):
        host.registry.register_builtin(*noop_plugin(n))
    return host


def manager_for(base_url: str, folder: Path, count: int) -> tuple[SessionManager, PluginHost]:
    config = build_models_config(model="openai/fake", api_base=base_url, api_key="sk-b", env={})
    store = AsyncConversationStore(ConversationStore(folder / f"bench{count}.sqlite3"))
    preferences = PreferenceBook(store)
    host = host_with(count)
    catalog = host.catalog()
    host.register_builtins(build_engines(preferences=preferences, infos=catalog.infos))
    manager = SessionManager(
        store=store,
        model=LLMService(config),
        has_model=lambda: True,
        engines=catalog,
        hooks=host,
        preferences=preferences,
        project=Project.for_root(str(folder), "bench"),
        history_tokens=lambda _m: 2000,
    )
    return manager, host


async def one_turn(manager: SessionManager, i: int) -> float:
    async def emit(_frame: dict[str, Any]) -> None:
        return None

    request = ChatRequest(id=f"t{i}", conversation_id=f"c{i}", text=PROMPT)
    started = time.perf_counter()
    await manager.run_turn("bench", request, emit)
    return time.perf_counter() - started


async def turns(base_url: str, folder: Path, rounds: int) -> dict[int, float]:
    managers = {count: manager_for(base_url, folder, count) for count in COUNTS}
    for count, (manager, _host) in managers.items():
        for i in range(3):
            await one_turn(manager, -1 - i - 10 * count)
    times: dict[int, list[float]] = {count: [] for count in COUNTS}
    for i in range(rounds):
        for count, (manager, _host) in managers.items():
            times[count].append(await one_turn(manager, i))
    for manager, host in managers.values():
        await manager.close()
        await manager.store.aclose()
        await host.stop()
    return {count: statistics.median(t) * 1000 for count, t in times.items()}


async def hooks_alone(calls: int) -> dict[int, float]:
    context = ChatContext()
    out: dict[int, float] = {}
    for count in COUNTS:
        host = host_with(count)
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            text = await host.pre_input(PROMPT, context)
            await host.route_hint(text, context)
            await host.registry.hooks.post_response("answer", context.to_json())
            samples.append(time.perf_counter() - started)
        out[count] = statistics.median(samples) * 1000
        await host.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    alone = asyncio.run(hooks_alone(args.calls))
    for count in COUNTS:
        print(
            f"the three hooks of a turn, {count:2d} no-op plugins: {alone[count]:.3f} ms "
            f"(+{alone[count] - alone[0]:.3f} ms over none)"
        )
    fake, base_url = start_fake()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            medians = asyncio.run(turns(base_url, Path(tmp), args.rounds))
    finally:
        fake.terminate()
        fake.wait(10)
    for count in COUNTS:
        print(
            f"turn, median of {args.rounds}, {count:2d} no-op plugins: {medians[count]:.2f} ms, "
            f"ratio {medians[count] / medians[0]:.3f} to none"
        )


if __name__ == "__main__":
    main()
