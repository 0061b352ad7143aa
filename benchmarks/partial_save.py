"""What saving the answer while it streams costs a turn.

    python benchmarks/partial_save.py [--rounds 40] [--words 400] [--concurrent 20]

The same long answer (`--words` chunks from the fake provider, a separate process on
127.0.0.1, no delay between chunks: the worst case for a per-chunk cost) through
`SessionManager.run_turn` with partial saves off, at the defaults (every 2 s or 100 chunks)
and at an aggressive every-10-chunks, interleaved round by round (the order rotating);
medians and the ratio to "off". Then `--concurrent` such turns at once per setting, the
time for the whole batch, interleaved over `--batch-rounds` rounds; medians.
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from llm_overhead import start_fake
from session_overhead import bench_manager

from rubberduck_jupyter.protocol import ChatRequest
from rubberduck_jupyter.sessions.manager import SessionManager

# (label, partial_save_interval, partial_save_chunks)
SETTINGS = (("off", 0.0, 0), ("default", 2.0, 100), ("every 10 chunks", 2.0, 10))


async def one_turn(manager: SessionManager, text: str, key: str) -> tuple[float, int]:
    chunks = 0

    async def emit(frame: dict[str, Any]) -> None:
        nonlocal chunks
        chunks += frame["type"] == "chunk"

    # Forced to the simple engine: one model call, so the answer is the fake's echo and
    # nothing else (a long message would otherwise route to the multi-step engine).
    request = ChatRequest(id=key, conversation_id=key, text=text, engine="simple")
    started = time.perf_counter()
    await manager.run_turn("bench", request, emit)
    return time.perf_counter() - started, chunks


async def run(
    base_url: str, rounds: int, words: int, concurrent: int, batch_rounds: int, folder: Path
) -> None:
    _, manager = bench_manager(base_url, folder)
    # The fake echoes the last user message: `words` words come back as `words` chunks.
    text = " ".join(f"w{i}" for i in range(words))
    n = 0

    async def turn(interval: float, every: int) -> tuple[float, int]:
        nonlocal n
        n += 1
        manager.partial_save_interval, manager.partial_save_chunks = interval, every
        return await one_turn(manager, text, f"t{n}")

    for _, interval, every in SETTINGS * 2:  # warm up litellm and every path
        await turn(interval, every)
    times: dict[str, list[float]] = {label: [] for label, _, _ in SETTINGS}
    chunks = 0
    for r in range(rounds):
        # The order rotates each round, so no setting always runs first (or after another).
        for label, interval, every in SETTINGS[r % 3 :] + SETTINGS[: r % 3]:
            elapsed, chunks = await turn(interval, every)
            times[label].append(elapsed)
    off = statistics.median(times["off"]) * 1000
    print(f"one turn of {chunks} chunks, median of {rounds}:")
    for label, _, _ in SETTINGS:
        ms = statistics.median(times[label]) * 1000
        print(f"  {label:>16}: {ms:7.2f} ms  added {ms - off:+6.2f} ms  ratio {ms / off:.3f}")

    # One batch first: the first burst of concurrent connections pays for opening them.
    await asyncio.gather(*(one_turn(manager, text, f"warm-{i}") for i in range(concurrent)))
    batches: dict[str, list[float]] = {label: [] for label, _, _ in SETTINGS}
    for r in range(batch_rounds):  # interleaved, like the single turns: the machine is shared
        for label, interval, every in SETTINGS[r % 3 :] + SETTINGS[: r % 3]:
            manager.partial_save_interval, manager.partial_save_chunks = interval, every
            started = time.perf_counter()
            await asyncio.gather(
                *(one_turn(manager, text, f"b{label}{r}-{i}") for i in range(concurrent))
            )
            batches[label].append((time.perf_counter() - started) * 1000)
    off_batch = statistics.median(batches["off"])
    print(f"{concurrent} turns at once, each {chunks} chunks, median of {batch_rounds}:")
    for label, _, _ in SETTINGS:
        ms = statistics.median(batches[label])
        print(f"  {label:>16}: {ms:8.1f} ms  ratio {ms / off_batch:.3f}")
    await manager.close()
    await manager.store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--words", type=int, default=400)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--batch-rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    fake, base_url = start_fake()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(
                run(
                    base_url,
                    args.rounds,
                    args.words,
                    args.concurrent,
                    args.batch_rounds,
                    Path(tmp),
                )
            )
    finally:
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    main()
