"""What the LLM service adds on top of litellm, and litellm on top of raw HTTP.

    python benchmarks/llm_overhead.py [--rounds 200]

Against the fake provider (a separate process on 127.0.0.1, so it does not share this
process's GIL): time to first token and total time of a streamed answer through
(a) raw httpx, (b) a direct `litellm.acompletion`, (c) `LLMService.stream` through
litellm (`direct_openai_streaming=False`), (d) `LLMService.stream` on the direct
OpenAI-compatible path (llm/openai_stream.py), interleaved round by round, at 1 and 50
concurrent streams; medians and ratios, and the CPU time of this process per stream for
each arm. Then 200 concurrent streams through each service, counting errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

PROMPT = " ".join(f"word{i}" for i in range(40))  # the fake echoes it: ~41 chunks
MESSAGES = [{"role": "user", "content": PROMPT}]
Timing = tuple[float, float]  # (time to first token, total)


def start_fake() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "rubberduck_jupyter.testing.fake_llm", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"fake provider did not start: {line!r}")
    return process, line.rsplit(" ", 1)[-1]


async def via_httpx(client: Any, base_url: str) -> Timing:
    started = time.perf_counter()
    first = 0.0
    body = {"model": "fake", "messages": MESSAGES, "stream": True}
    async with client.stream("POST", f"{base_url}/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if not first and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                first = time.perf_counter() - started
    return first, time.perf_counter() - started


async def via_litellm(litellm: Any, base_url: str) -> Timing:
    started = time.perf_counter()
    first = 0.0
    response = await litellm.acompletion(
        model="openai/fake",
        api_base=base_url,
        api_key="sk-bench",
        messages=MESSAGES,
        stream=True,
        max_retries=0,
        stream_options={"include_usage": True},
    )
    async for chunk in response:
        if not first and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
    return first, time.perf_counter() - started


async def via_service(service: Any, user: str) -> Timing:
    started = time.perf_counter()
    first = 0.0
    async for piece in service.stream(user=user, messages=MESSAGES):
        if not first and piece.text:
            first = time.perf_counter() - started
    return first, time.perf_counter() - started


async def gather_round(
    call: Callable[[int], Awaitable[Timing]], concurrency: int, cpu: list[float] | None = None
) -> list[Timing]:
    # The fake runs in its own process: this process's CPU time is the client's own cost.
    started = time.process_time()
    results = list(await asyncio.gather(*(call(i) for i in range(concurrency))))
    if cpu is not None:
        cpu.append((time.process_time() - started) / concurrency)
    return results


def median_ms(samples: list[Timing], index: int) -> float:
    return statistics.median(s[index] for s in samples) * 1000


async def run(rounds: int) -> None:
    import httpx

    from rubberduck_jupyter.llm.client import _import_litellm
    from rubberduck_jupyter.llm.config import build_models_config
    from rubberduck_jupyter.llm.service import LLMService, ServiceSettings

    litellm = _import_litellm()
    process, base_url = start_fake()
    try:
        config = build_models_config(
            model_list=[
                {
                    "model_name": "fake",
                    "litellm_params": {
                        "model": "openai/fake",
                        "api_base": base_url,
                        "api_key": "sk-bench",
                    },
                }
            ],
            env={},
        )
        service = LLMService(config, settings=ServiceSettings(direct_openai_streaming=False))
        await service.gateway.load()
        direct = LLMService(config, settings=ServiceSettings(direct_openai_streaming=True))
        await direct.gateway.load()  # for the cost map, as on a server after its warm-up
        limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            arms: dict[str, Callable[[int], Awaitable[Timing]]] = {
                "httpx": lambda i: via_httpx(client, base_url),
                "litellm": lambda i: via_litellm(litellm, base_url),
                "service": lambda i: via_service(service, f"user{i % 10}"),
                "direct": lambda i: via_service(direct, f"user{i % 10}"),
            }
            for arm in arms.values():  # warm connections and code paths
                await gather_round(arm, 5)
            print(
                f"machine: {platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}, litellm {litellm_version()}"
            )
            for concurrency, n_rounds in ((1, rounds), (50, max(4, rounds // 25))):
                samples: dict[str, list[Timing]] = {name: [] for name in arms}
                cpu: dict[str, list[float]] = {name: [] for name in arms}
                for _ in range(n_rounds):
                    for name, arm in arms.items():
                        samples[name] += await gather_round(arm, concurrency, cpu[name])
                print(f"\n{concurrency} concurrent stream(s), {n_rounds} rounds, medians:")
                for name in arms:
                    print(
                        f"  {name:8s} first token {median_ms(samples[name], 0):7.2f} ms"
                        f"   total {median_ms(samples[name], 1):7.2f} ms"
                        f"   CPU {statistics.median(cpu[name]) * 1000:6.2f} ms/stream"
                    )
                for index, what in ((0, "first token"), (1, "total")):
                    lit = median_ms(samples["litellm"], index)
                    svc = median_ms(samples["service"], index)
                    raw = median_ms(samples["httpx"], index)
                    dir_ = median_ms(samples["direct"], index)
                    print(
                        f"  {what}: service/litellm {svc / lit:.3f} ({svc - lit:+.2f} ms), "
                        f"litellm/httpx {lit / raw:.3f} ({lit - raw:+.2f} ms), "
                        f"direct/service {dir_ / svc:.3f} ({dir_ - svc:+.2f} ms), "
                        f"direct/httpx {dir_ / raw:.3f} ({dir_ - raw:+.2f} ms)"
                    )
            for name, svc_ in (("service", service), ("direct", direct)):
                started = time.perf_counter()
                cpu_started = time.process_time()
                results = await asyncio.gather(
                    *(via_service(svc_, f"user{i % 20}") for i in range(200)),
                    return_exceptions=True,
                )
                errors = sum(isinstance(r, BaseException) for r in results)
                print(
                    f"\n200 concurrent streams through {name}: {200 - errors} completed, "
                    f"{errors} errors, {time.perf_counter() - started:.2f} s, "
                    f"CPU {time.process_time() - cpu_started:.2f} s"
                )
            await direct.aclose()
    finally:
        process.terminate()
        process.wait(timeout=10)


def litellm_version() -> str:
    from importlib.metadata import version

    return version("litellm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200, help="rounds at concurrency 1")
    args = parser.parse_args()
    asyncio.run(run(args.rounds))


if __name__ == "__main__":
    main()
