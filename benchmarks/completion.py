"""What RubberDuck adds to an inline completion, over the provider alone.

    python benchmarks/completion.py [--rounds 200]

Against the fake provider (a separate process on 127.0.0.1, so it does not share this
process's GIL), interleaved round by round:
  (a) the provider alone: the same FIM request (`POST /v1/completions`, prompt + suffix,
      streamed) sent with raw httpx, timed to its first text;
  (b) `CompletionService.complete` (what the socket handler calls): context assembly of a
      notebook of 50 earlier cells and 20 variables, the cache lookup (a miss: every round
      types a new prefix), the project search when the index is on, redaction, the
      completions' rate limiter, the breaker and the direct FIM stream, timed to the
      first chunk handed to the socket;
with the index off and on (a real index of this package's own sources, keyword-searched
as completions do). Added = (b) - (a) at p50 and p99. Then cancellation: a completion
whose provider stream stalls after its first piece is cancelled, and the time from the
cancel to the fake seeing its connection closed (its `_fake.closed_at`, time.monotonic(),
which one machine's processes share) is the cancel-to-upstream-closed time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("RUBBERDUCK_LLM_WARM_UP", "0")

from rubberduck_jupyter.completion.service import CompletionService
from rubberduck_jupyter.completion.settings import CompletionSettings
from rubberduck_jupyter.context.redact import Redactor
from rubberduck_jupyter.llm.config import ModelEntry, ModelsConfig
from rubberduck_jupyter.llm.service import LLMService
from rubberduck_jupyter.protocol import (
    CompletionCell,
    CompletionRequest,
    CompletionVariable,
    completion_chunk_frame,
    parse_completion_frame,
)

MAX_FRAME_BYTES = 256 * 1024  # max_frame_bytes' default

PACKAGE = Path(__file__).resolve().parents[1] / "rubberduck_jupyter"
CELLS = tuple(
    CompletionCell(
        "code",
        f"import pandas as pd\nfrom rubberduck_jupyter.llm import ratelimit\n"
        f"frame_{n} = pd.read_csv('part_{n}.csv')\n" + "x = 1\n" * 620,
    )
    for n in range(50)
)  # 50 cells of ~4,000 characters, as the client sends at most: a ~200 kB frame
VARIABLES = tuple(CompletionVariable(f"frame_{n}", "DataFrame", "(100, 3)") for n in range(20))


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


def load() -> float:
    return os.getloadavg()[0]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def request(n: int) -> CompletionRequest:
    prefix = (
        "limiter = ratelimit.FairRateLimiter(global_limits=ratelimit.Limits())\n"
        f"totals_{n} = frame_{n % 20}.groupby('region')."
    )
    return CompletionRequest(
        id=f"r{n}",
        prefix=prefix,
        suffix="\nprint(totals)",
        path="bench.ipynb",
        cells=CELLS,
        variables=VARIABLES,
        max_lines=5,
    )


async def direct(client: Any, base_url: str, prompt: str, suffix: str) -> float:
    body = {
        "model": "fake-coder",
        "prompt": prompt,
        "suffix": suffix,
        "stream": True,
        "max_tokens": 64,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    async with client.stream("POST", f"{base_url}/completions", json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["text"]:
                return time.perf_counter() - started
    raise RuntimeError("no text")


def frame_of(req: CompletionRequest) -> str:
    """The frame the browser sends for `req` (what the socket handler parses)."""
    return json.dumps(
        {
            "type": "complete",
            "id": req.id,
            "path": req.path,
            "language": req.language,
            "prefix": req.prefix,
            "suffix": req.suffix,
            "cells": [{"cell_type": c.cell_type, "source": c.source} for c in req.cells],
            "variables": [
                {"name": v.name, "type": v.type, "shape": v.shape} for v in req.variables
            ],
            "multiline": req.multiline,
            "max_lines": req.max_lines,
        }
    )


async def through_service(service: CompletionService, raw: str) -> float:
    """From the frame's arrival: parse it as the handler does, complete, to the first
    chunk frame serialized for the socket. Also notes the part before the model is
    asked (parse, context, cache, project search, prompt) in BEFORE_MODEL."""
    started = time.perf_counter()
    first: list[float] = []

    def on_chunk(text: str) -> None:
        if not first:
            json.dumps(completion_chunk_frame(req.id, text))
            first.append(time.perf_counter() - started)

    req = parse_completion_frame(raw, max_bytes=MAX_FRAME_BYTES)
    assert isinstance(req, CompletionRequest)
    parsed = time.perf_counter() - started
    result = await service.complete("bench", req, on_chunk)
    BEFORE_MODEL.append(parsed + result.prepare_s)
    return first[0]


BEFORE_MODEL: list[float] = []


def build(base_url: str, model: str, index: Any) -> CompletionService:
    entry = ModelEntry(name=model, model=model, api_base=base_url, api_key="sk-bench")
    config = ModelsConfig(entries={model: entry}, default=model, source="bench")
    llm = LLMService(config, redactor=Redactor())
    settings = CompletionSettings(
        entry=entry, fim=True, requests_per_minute=0, use_index=index is not None
    )
    return CompletionService(llm, settings, index=index)


async def open_index(folder: Path) -> Any:
    from rubberduck_jupyter.index.service import IndexService
    from rubberduck_jupyter.testing.embedding import HashingEmbedder

    shutil.copytree(
        PACKAGE, folder / "src", ignore=shutil.ignore_patterns("__pycache__", "labextension")
    )
    index = IndexService(folder, folder / "index.duckdb", embedder_factory=HashingEmbedder)
    await index.start()
    run = index._run  # the indexing task start() began
    if run is not None:
        await run
    return index


async def latency(base_url: str, rounds: int, index: Any) -> dict[str, Any]:
    import httpx

    service = build(base_url, "openai/fake-coder", index)
    captured: list[Any] = []
    original = service.llm.stream_completion

    def capture(**kwargs: Any) -> Any:
        captured.append(kwargs["prompt"])
        return original(**kwargs)

    service.llm.stream_completion = capture  # type: ignore[method-assign]
    async with httpx.AsyncClient() as client:
        for n in range(10):  # warm both paths (pools, the project search's cache)
            await through_service(service, frame_of(request(-n - 1)))
            await direct(client, base_url, captured[-1].prompt, captured[-1].suffix)
        ours: list[float] = []
        alone: list[float] = []
        BEFORE_MODEL.clear()
        for n in range(rounds):
            raw = frame_of(request(n))
            if n % 2:
                ours.append(await through_service(service, raw))
                p = captured[-1]
                alone.append(await direct(client, base_url, p.prompt, p.suffix))
            else:
                # The prompt of the same shape: the last one's (only the digits differ).
                p = captured[-1]
                alone.append(await direct(client, base_url, p.prompt, p.suffix))
                ours.append(await through_service(service, raw))
    snippets = sum(1 for p in captured if "From src/" in p.prompt)
    paired = [o - a for o, a in zip(ours, alone, strict=True)]
    return {
        "alone_p50": pct(alone, 0.5),
        "alone_p99": pct(alone, 0.99),
        "ours_p50": pct(ours, 0.5),
        "ours_p99": pct(ours, 0.99),
        "added_p50": pct(ours, 0.5) - pct(alone, 0.5),
        "added_p99": pct(ours, 0.99) - pct(alone, 0.99),
        # Round by round (each ours beside its own alone): less swayed by load spikes.
        "paired_added_p50": pct(paired, 0.5),
        "paired_added_p99": pct(paired, 0.99),
        "before_model_p50": pct(BEFORE_MODEL, 0.5),
        "before_model_p99": pct(BEFORE_MODEL, 0.99),
        "prompts_with_project_code": f"{snippets}/{len(captured)}",
    }


async def cancel_times(base_url: str, rounds: int) -> dict[str, float]:
    import httpx

    # `fault-stall` in the model name: the fake sends a piece or two, then holds the stream.
    service = build(base_url, "openai/fake-coder-fault-stall", None)
    times: list[float] = []
    ends: list[float] = []
    async with httpx.AsyncClient() as client:
        for n in range(rounds):
            got = asyncio.Event()
            task = asyncio.ensure_future(
                service.complete("bench", request(n), lambda _t, got=got: got.set())
            )
            await asyncio.wait_for(got.wait(), 10)
            t0 = time.monotonic()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            ends.append(time.monotonic() - t0)
            for _ in range(100):
                streams = (await client.get(base_url.removesuffix("/v1") + "/_fake/streams")).json()
                last = streams["requests"][-1]["_fake"]
                if last["closed_at"] is not None:
                    break
                await asyncio.sleep(0.01)
            times.append(last["closed_at"] - t0)
            await client.post(base_url.removesuffix("/v1") + "/_fake/reset")
    return {
        "closed_p50": pct(times, 0.5),
        "closed_p99": pct(times, 0.99),
        "task_end_p50": pct(ends, 0.5),
    }


async def main(rounds: int) -> None:
    fake, base_url = start_fake()
    folder = Path(tempfile.mkdtemp(prefix="rd-bench-completion-"))
    try:
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"python {platform.python_version()}; load before: {load():.2f}"
        )
        index = await open_index(folder)
        print(
            f"index: {index.status().get('files', '?')} files of rubberduck_jupyter/; "
            f"load {load():.2f}"
        )
        for name, idx in (("index off", None), ("index on", index)):
            result = await latency(base_url, rounds, idx)
            print(
                f"{name}: "
                + ", ".join(
                    f"{k} {v:.2f} ms" if isinstance(v, float) else f"{k} {v}"
                    for k, v in result.items()
                )
                + f"; load {load():.2f}"
            )
        result = await cancel_times(base_url, max(20, rounds // 4))
        print(
            "cancel: "
            + ", ".join(f"{k} {v:.2f} ms" for k, v in result.items())
            + f"; load {load():.2f}"
        )
        await index.close()
    finally:
        fake.terminate()
        fake.wait(5)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=200)
    asyncio.run(main(parser.parse_args().rounds))
