"""Hybrid query latency vs numpy exact cosine search alone, at 10k and 100k chunks.

    python benchmarks/index_query.py

Both sides get the same query vector (embedding the query is the same cost for both and
is left out). Goal: hybrid at most 1.5x numpy exact search.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from index_common import machine
from rubberduck_jupyter.index.search import HybridSearcher
from rubberduck_jupyter.index.store import FileState, IndexStore

from rubberduck_jupyter.index.types import Chunk, ChunkKind

WORDS = (
    "array frame column index group mean median plot scatter histogram model fit predict "
    "feature sample train test split score cluster kernel regression forest tree pivot merge "
    "join concat resample rolling window string date time value missing fill drop sort"
).split()


def build(store: IndexStore, n_chunks: int, rng: np.random.Generator) -> np.ndarray:
    per_file = 50
    vectors = rng.standard_normal((n_chunks, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = []
    for f in range(n_chunks // per_file):
        chunks = []
        for i in range(per_file):
            text = " ".join(rng.choice(WORDS, size=60))
            chunks.append(
                Chunk(
                    path=f"src/m{f}.py",
                    kind=ChunkKind.FUNCTION,
                    text=text,
                    n_tokens=64,
                    start_line=i * 10 + 1,
                    end_line=i * 10 + 9,
                    title=f"f{i}",
                )
            )
        state = FileState(f"src/m{f}.py", f"h{f}", 0.0, 100, per_file)
        items.append((state, chunks, vectors[f * per_file : (f + 1) * per_file]))
        if len(items) == 200:
            store.replace_files(items)
            items = []
    if items:
        store.replace_files(items)
    store.rebuild_fts()
    return vectors


def time_ms(fn, repeats: int = 30) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure(n: int, rng: np.random.Generator) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        IndexStore(Path(tmp) / "bench.duckdb", embedder_id="bench") as store,
    ):
        started = time.perf_counter()
        vectors = build(store, n, rng)
        build_s = time.perf_counter() - started
        query = vectors[123] + 0.1 * rng.standard_normal(384).astype(np.float32)
        query /= np.linalg.norm(query)
        searcher = HybridSearcher(store, lambda _text: query)

        def numpy_only() -> None:
            scores = vectors @ query
            top = np.argpartition(-scores, 10)[:10]
            top[np.argsort(-scores[top])]

        base = time_ms(numpy_only)
        hybrid = time_ms(lambda: searcher.search("rolling window mean of a column", 10))
        vector = time_ms(lambda: searcher.search("x", 10, mode="vector"))
        bm25 = time_ms(lambda: searcher.search("rolling window mean", 10, mode="bm25"))
        print(
            f"{n:>7} chunks (built in {build_s:.1f} s): numpy exact {base:.2f} ms, "
            f"vector {vector:.2f} ms, bm25 {bm25:.2f} ms, hybrid {hybrid:.2f} ms; "
            f"hybrid / numpy = {hybrid / base:.2f} (goal <= 1.5)"
        )


def main() -> None:
    print(f"machine: {machine()}")
    rng = np.random.default_rng(7)
    for n in (10_000, 100_000):
        measure(n, rng)


if __name__ == "__main__":
    main()
