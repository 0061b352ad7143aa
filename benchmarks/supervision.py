"""What supervision and monitoring cost: the per-chunk check that times the first token,
200 supervised conversation actors, and one /metrics scrape.

    python benchmarks/supervision.py [--rounds 30] [--chunks 2000] [--base 1649425]

1. Per chunk: `LLMService.stream` over an in-process gateway that yields `--chunks`
   pieces with no I/O (the worst case for per-chunk overhead), this tree's service vs the
   same module as it was at `--base` (before latency recording; read with `git show`),
   interleaved round by round; CPU time per chunk, medians.
2. 200 actors: start 200 conversation actors through the registry (each a supervised
   child), one job each, then stop them all; vs the same with the actor module as it was
   at `--base` (unsupervised), interleaved; wall time and tracemalloc bytes per actor.
3. One scrape: `generate_latest(REGISTRY)` with an app-like health source (3 models with
   512 latencies each, 3 breakers, 200 actors in the supervisor group).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rubberduck_jupyter.llm.client import StreamPiece  # noqa: E402
from rubberduck_jupyter.llm.config import build_models_config  # noqa: E402
from rubberduck_jupyter.llm.service import LLMService, ServiceSettings  # noqa: E402
from rubberduck_jupyter.protocol import Usage  # noqa: E402
from rubberduck_jupyter.sessions.actor import ActorRegistry  # noqa: E402

MESSAGES = [{"role": "user", "content": "hello"}]


class InstantGateway:
    """Yields `chunks` text pieces and a final one, with no I/O."""

    state = "ready"

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks

    async def stream(self, entry: Any, messages: Any, **_: Any) -> Any:
        piece = StreamPiece(text="x")
        for _ in range(self.chunks):
            yield piece
        yield StreamPiece(usage=Usage(1, self.chunks, self.chunks + 1), finish_reason="stop")

    def cost_usd(self, entry: Any, usage: Any) -> None:
        return None

    async def load(self) -> None:
        return None


def base_service_class(commit: str) -> type:
    path = "rubberduck_jupyter/llm/service.py"
    return base_module(commit, path, "rubberduck_jupyter.llm._service_base").LLMService


async def stream_cpu(service: Any) -> float:
    started = time.process_time()
    async for _piece in service.stream(user="bench", messages=MESSAGES):
        pass
    return time.process_time() - started


async def per_chunk(rounds: int, chunks: int, base: str) -> None:
    config = build_models_config(model="ollama/bench", env={})
    settings = ServiceSettings(direct_openai_streaming=False)
    Base = base_service_class(base)
    now = LLMService(config, settings=settings, gateway=InstantGateway(chunks))  # type: ignore[arg-type]
    before = Base(config, settings=settings, gateway=InstantGateway(chunks))
    for service in (now, before):  # warm up
        await stream_cpu(service)
    a, b = [], []
    for _ in range(rounds):
        b.append(await stream_cpu(before))
        a.append(await stream_cpu(now))
    ma, mb = statistics.median(a) / chunks * 1e9, statistics.median(b) / chunks * 1e9
    print(
        f"per chunk, CPU: base {mb:.0f} ns, with latency recording {ma:.0f} ns, "
        f"added {ma - mb:+.0f} ns ({ma / mb:.3f}x); {chunks} chunks x {rounds} rounds"
    )
    count = now.latency.snapshot()["ollama/bench"]["time_to_first_token"]["count"]
    print(f"  TTFT observations recorded: {count}")


def base_module(commit: str, path: str, name: str) -> Any:
    """`path` as it was at `commit`, imported beside this tree's modules."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__package__ = name.rpartition(".")[0]
    sys.modules[name] = module
    exec(compile(source, f"{commit}:{path}", "exec"), module.__dict__)
    return module


async def actors(base: str, n: int = 200) -> None:
    old = base_module(
        base, "rubberduck_jupyter/sessions/actor.py", "rubberduck_jupyter.sessions._actor_base"
    )

    async def quick() -> str:
        return "ok"

    async def run(module: Any) -> tuple[float, float]:
        tracemalloc.start()
        started = time.perf_counter()
        registry = module.ActorRegistry(mailbox_size=8, idle_timeout=300)
        jobs = []
        for i in range(n):
            job = module.Job(f"t{i}", quick)
            registry.get("bench", f"c{i}").submit(job)
            jobs.append(job)
        await asyncio.gather(*(j.done for j in jobs))
        made = time.perf_counter() - started
        size = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        started = time.perf_counter()
        await registry.stop()
        return made + (time.perf_counter() - started), size / n

    sup, bare = [], []
    for _ in range(10):
        bare.append(await run(old))
        sup.append(await run(sys.modules[ActorRegistry.__module__]))
    ts, ms = statistics.median(x[0] for x in sup), statistics.median(x[1] for x in sup)
    tb, mb = statistics.median(x[0] for x in bare), statistics.median(x[1] for x in bare)
    print(
        f"{n} actors start, one job each, stop: supervised {ts * 1000:.1f} ms "
        f"({ms / 1024:.1f} KiB each, traced), unsupervised ({base}) {tb * 1000:.1f} ms "
        f"({mb / 1024:.1f} KiB each); added {(ts - tb) * 1000:+.1f} ms, "
        f"{(ms - mb) / 1024:+.1f} KiB each"
    )


def scrape() -> None:
    from prometheus_client import REGISTRY, generate_latest

    from rubberduck_jupyter.llm.breaker import BreakerBoard
    from rubberduck_jupyter.llm.latency import LatencyBoard
    from rubberduck_jupyter.runtime import metrics
    from rubberduck_jupyter.runtime.loop_lag import LoopLagMonitor
    from rubberduck_jupyter.runtime.process import memory
    from rubberduck_jupyter.runtime.supervisor import Supervisor

    latency = LatencyBoard()
    for m in ("a", "b", "c"):
        for i in range(600):
            latency.first_token(m, i / 500)
            latency.total(m, i / 50)
    breakers = BreakerBoard()
    for key in ("openai@default", "anthropic@default", "ollama@http://127.0.0.1:11434"):
        breakers.get(key)
    supervisor = Supervisor()
    supervisor.report("index_watcher", lambda: {"state": "running", "restarts": 0})
    lag = LoopLagMonitor()

    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": "bench",
            "protocol_version": 1,
            "uptime_s": 1.0,
            "subsystems": {
                "llm": {
                    "breakers": breakers.snapshot(),
                    "rate_limits": {"queued": 0, "max_queue": 64, "admitted": 1, "refused": 0},
                    "latency": latency.snapshot(),
                },
                "sessions": {"actors": 200, "waiting": 0, "deepest_mailbox": 0},
                "supervisor": supervisor.snapshot(),
                "event_loop": lag.snapshot(),
                "index": {"state": "idle", "open": False},
                "process": memory(),
            },
        }

    key = metrics.register(health)
    generate_latest(REGISTRY)
    times = []
    for _ in range(200):
        started = time.perf_counter()
        body = generate_latest(REGISTRY)
        times.append(time.perf_counter() - started)
    metrics.unregister(key)
    started = time.perf_counter()
    for _ in range(200):
        generate_latest(REGISTRY)
    without = (time.perf_counter() - started) / 200
    med = statistics.median(times)
    print(
        f"/metrics scrape: {med * 1000:.2f} ms median ({len(body)} bytes), of which "
        f"RubberDuck's {(med - without) * 1000:.2f} ms (default collectors alone "
        f"{without * 1000:.2f} ms)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--base", default="1649425")
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, Python {platform.python_version()}")
    await per_chunk(args.rounds, args.chunks, args.base)
    await actors(args.base)
    scrape()


if __name__ == "__main__":
    asyncio.run(main())
