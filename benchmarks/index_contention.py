"""Searches while the index builds: does heavy search traffic starve the indexer?

    python benchmarks/index_contention.py [--embedder minilm] [--searchers 4] [--qps 0]

Indexing and searches both run in the server's threads (IndexService: `asyncio.to_thread`),
and parts of both hold the GIL (DuckDB scans of batches registered from Python, numpy,
tokenizing). A test once showed two reader threads searching back to back stretching a
writer's 39 batches from 3 s to 199 s (a GIL convoy). This measures the same thing through
the service the server uses, on the pdsh notebooks:

1. The index built alone (the baseline), then again (a fresh database) while
   `--searchers` clients each search back to back through `IndexService.search` (the
   worst case: no think time), or at `--qps` searches a second in total when given.
   Ratio: build time under searches / alone.
2. Search latency during the build against the same searches on the idle, built index.

The queries come from benchmarks/queries/index_quality.json (their text only).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index_common import build_corpus, load_queries, machine

from rubberduck_jupyter.index.embedder_config import EmbedderConfig, build_embedder
from rubberduck_jupyter.index.service import IndexService


def query_texts() -> list[str]:
    texts = [str(pair[0]) for pair in load_queries()["notebooks"]]
    if not texts:
        raise SystemExit("no queries in benchmarks/queries/index_quality.json")
    return texts


async def searcher(
    service: IndexService,
    queries: list[str],
    offset: int,
    done: asyncio.Event,
    latencies: list[float],
    interval: float,
) -> None:
    n = offset
    while not done.is_set():
        started = time.perf_counter()
        await service.search(queries[n % len(queries)], top_k=8)
        latencies.append(time.perf_counter() - started)
        n += 1
        if interval:
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - started)))
        else:
            await asyncio.sleep(0)  # let the loop breathe, as the server's handlers do


async def wait_idle(service: IndexService) -> None:
    # The service shows its run only as `state`, as the status endpoint does; polling it is
    # what a client does too. 50 ms is small against builds of tens of seconds.
    while service.state == "indexing":  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def build(
    root: Path, db: Path, embedder_spec: str, searchers: int, qps: float, queries: list[str]
) -> tuple[float, list[float], IndexService]:
    config = EmbedderConfig(spec=embedder_spec, cache_dir=root.parent / "models")
    service = IndexService(root, db, embedder_factory=lambda: build_embedder(config))
    latencies: list[float] = []
    if searchers:
        # An index to search from the first moment: one small file, built before the clock.
        await service.start(paths=["notebooks/" + sorted(os.listdir(root / "notebooks"))[0]])
        await wait_idle(service)
    done = asyncio.Event()
    interval = searchers / qps if qps else 0.0
    clients = [
        asyncio.ensure_future(searcher(service, queries, i * 7, done, latencies, interval))
        for i in range(searchers)
    ]
    started = time.perf_counter()
    await service.start()
    await wait_idle(service)
    elapsed = time.perf_counter() - started
    done.set()
    await asyncio.gather(*clients)
    if service.state != "idle":
        raise SystemExit(f"indexing ended in {service.state}: {service.last_error}")
    return elapsed, latencies, service


async def idle_latencies(service: IndexService, queries: list[str], count: int) -> list[float]:
    out = []
    for n in range(count):
        started = time.perf_counter()
        await service.search(queries[n % len(queries)], top_k=8)
        out.append(time.perf_counter() - started)
    return out


def ms(values: list[float]) -> str:
    if not values:
        return "-"
    cut = sorted(values)
    p95 = cut[min(len(cut) - 1, int(len(cut) * 0.95))]
    return f"median {statistics.median(values) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--searchers", type=int, default=4)
    parser.add_argument("--qps", type=float, default=0.0, help="total searches/s; 0: no pause")
    args = parser.parse_args()
    queries = query_texts()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}; {args.embedder}")
    with tempfile.TemporaryDirectory() as tmp:
        root = build_corpus(Path(tmp) / "project", code=False)
        alone, _, first = await build(root, Path(tmp) / "a.duckdb", args.embedder, 0, 0, queries)
        idle = await idle_latencies(first, queries, 100)
        files = (first.last_report or {}).get("files_indexed")
        busy, during, _ = await build(
            root, Path(tmp) / "b.duckdb", args.embedder, args.searchers, args.qps, queries
        )
    load = f"{args.searchers} searchers" + (f" at {args.qps:g}/s" if args.qps else " back to back")
    print(f"index build alone: {alone:.2f} s ({files} files)")
    print(f"index build with {load}: {busy:.2f} s; ratio {busy / alone:.3f}")
    print(f"searches during the build: {len(during)} ({len(during) / busy:.1f}/s), {ms(during)}")
    print(f"searches on the idle index: {ms(idle)}")


if __name__ == "__main__":
    asyncio.run(main())
