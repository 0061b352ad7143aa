"""What the index file watcher costs, against baselines run in the same process.

    python benchmarks/index_watch.py

1. Judging events: the watcher's filter per event (90% ignored churn: .git/, node_modules,
   .ipynb_checkpoints; 10% project files under a .gitignore) vs one os.stat per event,
   the least an indexer could do with an event.
2. Ignored churn: 2,000 files written under .git/ and node_modules of a watched project:
   events seen, events passed on, refreshes started (goal: 0).
3. A checkout-like burst: 200 new .py files written outside Jupyter, until all are in the
   index, vs Indexer.index_files on the same 200 files (the refresh itself); the
   difference is the debounce (0.1 s here) plus event delivery.

Embeddings come from the deterministic test embedder, so the numbers are the watcher's and
the indexer's own, not a model's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from rubberduck_jupyter.index.indexer import Indexer
from rubberduck_jupyter.index.service import IndexService
from rubberduck_jupyter.index.store import IndexStore
from rubberduck_jupyter.index.watcher import ADDED, MODIFIED, ChangeFilter
from rubberduck_jupyter.testing.embedding import HashingEmbedder


def make_project(root: Path) -> None:
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "core.py").write_text("def core():\n    return 1\n")
    (root / ".gitignore").write_text("build/\n*.log\n")
    (root / "src" / ".gitignore").write_text("generated/\n")


def bench_filter(root: Path, n: int = 100_000) -> None:
    churn = [
        ".git/objects/ab/cdef0123",
        "node_modules/left-pad/lib/index.js",
        "notebooks/.ipynb_checkpoints/eda-checkpoint.ipynb",
    ]
    project = ["src/pkg/core.py", "src/generated/gen.py", "build/out.py"]
    events = []
    for i in range(n):
        rel = project[i % 3] if i % 10 == 0 else churn[i % 3]
        events.append((MODIFIED if i % 2 else ADDED, str(root / rel)))
    flt = ChangeFilter(root)
    started = time.perf_counter()
    kept = sum(flt.relevant(change, path) for change, path in events)
    judged = time.perf_counter() - started
    started = time.perf_counter()
    for _, path in events:
        with contextlib.suppress(OSError):
            os.stat(path)
    stat_s = time.perf_counter() - started
    print(
        f"1. filter: {1e6 * judged / n:.2f} us/event ({kept} of {n} kept) vs os.stat "
        f"{1e6 * stat_s / n:.2f} us/event: ratio {judged / stat_s:.2f}"
    )


async def seconds_until(predicate: Callable[[], Awaitable[bool]]) -> float:
    started = time.perf_counter()
    for _ in range(6000):
        if await predicate():
            return time.perf_counter() - started
        await asyncio.sleep(0.01)
    raise TimeoutError


async def bench_service(root: Path, db: Path) -> None:
    embedder = HashingEmbedder()
    service = IndexService(root, db, embedder_factory=lambda: embedder, debounce_s=0.1)
    await service.start()
    await seconds_until(lambda: _idle(service))
    service.watch()
    assert await asyncio.to_thread(service.watcher.wait_ready, 30)
    watcher = service.watcher

    refreshes = service.refreshes
    for i in range(1000):
        for folder in (".git/objects", "node_modules/pkg"):
            path = root / folder / f"f{i // 100}" / f"obj{i}.js"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x")
    await asyncio.sleep(1.5)  # let notify deliver every event of the burst
    print(
        f"2. ignored churn: {watcher.stats.events} events seen, {watcher.stats.relevant} "
        f"passed on, {service.refreshes - refreshes} refreshes"
    )

    files = [root / "src" / "burst" / f"mod_{i}.py" for i in range(200)]
    files[0].parent.mkdir()

    async def all_indexed() -> bool:
        known = await asyncio.to_thread(service._store.file_states)
        return all(f"src/burst/mod_{i}.py" in known for i in range(200))

    for i, path in enumerate(files):
        path.write_text(f"def function_{i}(x):\n    return x * {i}\n")
    waited = await seconds_until(all_indexed)
    await service.close()

    with (
        tempfile.TemporaryDirectory() as tmp,
        IndexStore(Path(tmp) / "i.duckdb", dim=embedder.dim, embedder_id=embedder.id) as store,
    ):
        started = time.perf_counter()
        Indexer(store, embedder).index_files(root, files)
        direct = time.perf_counter() - started
    print(
        f"3. burst of 200 files: indexed {waited:.2f} s after the writes vs index_files "
        f"{direct:.2f} s: ratio {waited / direct:.1f} (debounce 0.1 s)"
    )


async def _idle(service: IndexService) -> bool:
    return service.state != "indexing"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        make_project(root)
        bench_filter(root)
        asyncio.run(bench_service(root, Path(tmp) / "index.duckdb"))


if __name__ == "__main__":
    main()
