"""Query latency, memory and freshness of the index at 100k, 500k and 1M synthetic chunks,
against numpy exact top-10 over a float32 matrix measured in the same run.

    python benchmarks/index_query.py [--sizes 100000 500000 1000000] [--repeats 200]
                                     [--keep DIR]

`--keep DIR` builds each size's index (and its graph) once into DIR and measures a copy of
it on later runs (the vectors are the same: one seed), skipping ~10 minutes at 1M.

Vectors are clustered, not uniform (uniform random 384-d vectors have no near neighbours,
the worst case for HNSW and unlike embeddings): Gaussian clouds around one centre per 200
chunks, centres sharing a common direction, so pairwise cosines average ~0.1, a chunk's 10th
nearest neighbour is at ~0.65 and its nearest at ~0.9, roughly like all-MiniLM-L6-v2 over
code and notebooks. Texts are 60 words drawn from a 40-word vocabulary (every query term is
in ~78% of the chunks: the worst case for BM25), as in earlier runs of this benchmark.

Each round draws a new query (2-6 words, some not in the corpus; a vector near a stored
one), and the methods take turns round by round. Embedding the query is left out.
Per size: build (bulk writes, then the first load, which builds the ANN graph and saves it),
a reopen (the saved graph loaded: the RSS delta of loading is measured there, DuckDB's page
cache included), p50/p99 of each method, recall@10 of the index's vector search against
exact numpy search, and write-to-searchable of one saved 50-chunk file.
Goals (2 cores): at 1M hybrid p50 < 30 ms, < 1 KB per chunk, recall@10 >= 0.98.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
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
OTHER_WORDS = "of a the for with by to".split()  # in queries, never in the corpus
PER_FILE = 50
DIM = 384
PER_CENTRE = 200
CLUSTER_NOISE = 0.6  # per-component sd of a chunk around its centre, times sqrt(DIM)
QUERY_NOISE = 0.5


def make_file(f: int, rng: np.random.Generator, version: int = 0) -> tuple[FileState, list[Chunk]]:
    path = f"src/m{f}.py"
    words = rng.choice(WORDS, size=(PER_FILE, 60))
    chunks = [
        Chunk(
            path=path,
            kind=ChunkKind.FUNCTION,
            text=" ".join(words[i]),
            n_tokens=64,
            start_line=i * 10 + 1,
            end_line=i * 10 + 9,
            title=f"f{i}",
        )
        for i in range(PER_FILE)
    ]
    return FileState(path, f"h{f}.{version}", float(version), 100, PER_FILE), chunks


def normalized(v: np.ndarray) -> np.ndarray:
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    common = normalized(rng.standard_normal((1, DIM)).astype(np.float32))
    centres = normalized(rng.standard_normal((max(1, n // PER_CENTRE), DIM)).astype(np.float32))
    centres = normalized(centres + 0.4 * common)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):  # in parts: bounds the temporary copies
        m = min(100_000, n - start)
        part = centres[rng.integers(0, len(centres), m)]
        part += rng.standard_normal((m, DIM)).astype(np.float32) * (CLUSTER_NOISE / DIM**0.5)
        out[start : start + m] = normalized(part)
    return out


def near(rng: np.random.Generator, vectors: np.ndarray, m: int) -> np.ndarray:
    q = vectors[rng.integers(0, len(vectors), m)].copy()
    q += rng.standard_normal(q.shape).astype(np.float32) * (QUERY_NOISE / DIM**0.5)
    return normalized(q)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def load1() -> float:
    return os.getloadavg()[0]


def build(store: IndexStore, vectors: np.ndarray, rng: np.random.Generator) -> None:
    items = []
    for f in range(len(vectors) // PER_FILE):
        state, chunks = make_file(f, rng)
        items.append((state, chunks, vectors[f * PER_FILE : (f + 1) * PER_FILE]))
        if len(items) == 200:
            store.replace_files(items)
            items = []
    if items:
        store.replace_files(items)


def interleaved(runs: dict[str, Callable[[int], object]], rounds: int) -> dict[str, list[float]]:
    """ms of each run, taking turns round by round (in a rotating order), so a busy phase
    of the machine (2 shared cores) slows every method alike."""
    for run in runs.values():
        run(0)  # warm up
    samples: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for i in range(rounds):
        for j in range(len(names)):
            name = names[(i + j) % len(names)]
            started = time.perf_counter()
            runs[name](i)
            samples[name].append((time.perf_counter() - started) * 1000)
    return samples


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def index_files(db: Path) -> list[Path]:
    """The DuckDB file and what lives next to it (the saved graph and its stamp)."""
    return [db, *db.parent.glob(db.name + ".*")]


def measure(n: int, rounds: int, rng: np.random.Generator, keep: Path | None) -> dict[str, Any]:
    r: dict[str, Any] = {"chunks": n, "load_start": load1()}
    vectors = clustered(rng, n)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        kept = None if keep is None else keep / f"bench-{n}.duckdb"
        if kept is not None and kept.exists():
            for path in index_files(kept):  # a copy: the write test below changes it
                shutil.copy(path, db.parent / path.name.replace(kept.name, db.name))
            r["bulk_s"] = r["first_load_s"] = float("nan")
            r["ann_built"] = f"kept in {keep}"
        else:
            with IndexStore(db, embedder_id="bench") as store:
                started = time.perf_counter()
                build(store, vectors, rng)
                r["bulk_s"] = time.perf_counter() - started
                started = time.perf_counter()
                store.snapshot()  # the first load builds the graph (above the threshold)
                r["first_load_s"] = time.perf_counter() - started
                r["ann_built"] = store.stats()["ann_built"]
            if kept is not None:
                kept.parent.mkdir(parents=True, exist_ok=True)
                for path in index_files(db):
                    shutil.copy(path, kept.parent / path.name.replace(db.name, kept.name))
        # DuckDB imports pandas at a process's first bound parameter (the warm-up below does
        # it on purpose): done here first, so the RSS delta counts the index alone.
        duckdb.connect().execute("SELECT ?", [1]).fetchall()
        gc.collect()
        rss_before = rss_mb()
        with IndexStore(db, embedder_id="bench") as store:
            started = time.perf_counter()
            store.warm_up()  # as the server's warm-up thread does after a start
            snapshot = store.snapshot()
            r["reload_s"] = time.perf_counter() - started
            r["rss_delta_mb"] = rss_mb() - rss_before
            r["reload_how"] = store.stats()["ann_built"]
            r["bytes"] = snapshot.nbytes()
            ids = snapshot.ids
            assert len(ids) == n and ids[0] == 1 and ids[-1] == n  # row i holds chunk i + 1
            queries = near(rng, vectors, rounds + 1)
            texts = [
                " ".join(rng.choice(WORDS + OTHER_WORDS, size=int(rng.integers(2, 7))))
                for _ in range(rounds + 1)
            ]
            current = {"i": 0}
            searcher = HybridSearcher(store, lambda _text: queries[current["i"]])

            def numpy_exact(i: int) -> object:
                scores = vectors @ queries[i]
                top = np.argpartition(-scores, 10)[:10]
                return top[np.argsort(-scores[top])]

            def search(mode: str) -> Callable[[int], object]:
                def run(i: int) -> object:
                    current["i"] = i
                    return searcher.search(texts[i], 10, mode=mode)  # type: ignore[arg-type]

                return run

            some_ids = rng.integers(1, n + 1, size=(rounds + 1, 10))
            runs = {
                "numpy": numpy_exact,
                "vector": search("vector"),
                "bm25": search("bm25"),
                "hybrid": search("hybrid"),
                "texts": lambda i: store.chunks(some_ids[i].tolist()),
            }
            r["load_queries"] = load1()
            r["ms"] = interleaved(runs, rounds)
            found = [[i for i, _ in store.search_vector(q, 10)] for q in queries]
            exact = [(numpy_exact(i) + 1).tolist() for i in range(len(queries))]
            r["recall"] = float(
                np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)])
            )
            r.update(measure_write_then_search(store, n, rng, vectors))
            r["load_end"] = load1()
    return r


def measure_write_then_search(
    store: IndexStore, n: int, rng: np.random.Generator, vectors: np.ndarray
) -> dict[str, Any]:
    """One saved file: its 50 chunks replaced, then the next search, as the server does."""
    writes, searches, totals = [], [], []
    for version in range(1, 12):
        state, chunks = make_file(int(rng.integers(0, n // PER_FILE)), rng, version)
        new = near(rng, vectors, PER_FILE)
        searcher = HybridSearcher(store, lambda _text, v=new[0]: v)
        started = time.perf_counter()
        store.replace_files([(state, chunks, new)])
        written = time.perf_counter()
        hits = searcher.search(chunks[0].text, 10)
        done = time.perf_counter()
        assert hits and hits[0].path == state.path, "the new chunks must be found"
        writes.append((written - started) * 1000)
        searches.append((done - written) * 1000)
        totals.append((done - started) * 1000)
    return {
        "write_ms": statistics.median(writes),
        "search_after_write_ms": statistics.median(searches),
        "write_to_search_ms": statistics.median(totals),
        "write_to_search_max_ms": max(totals),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 500_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="build each index once into this folder")
    args = parser.parse_args()
    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    rng = np.random.default_rng(7)
    for n in args.sizes:
        r = measure(n, args.repeats, rng, args.keep)
        ms = r["ms"]
        print(
            f"{n:>9,} chunks (1-min load {r['load_start']:.1f} at start, "
            f"{r['load_queries']:.1f} at queries, {r['load_end']:.1f} at end)"
        )
        print(
            f"  build: bulk writes {r['bulk_s']:.1f} s; first load {r['first_load_s']:.1f} s "
            f"(graph {r['ann_built']}); reopen {r['reload_s']:.1f} s (graph {r['reload_how']})"
        )
        line = ", ".join(
            f"{name} p50 {p(v, 50):.2f} / p99 {p(v, 99):.2f} ms" for name, v in ms.items()
        )
        print(f"  {line}")
        print(
            f"  hybrid p50 / numpy exact p50 = {p(ms['hybrid'], 50) / p(ms['numpy'], 50):.2f}; "
            f"recall@10 of vector search vs exact {r['recall']:.3f}"
        )
        print(
            f"  one-file write (50 chunks) then search: write {r['write_ms']:.1f} ms + "
            f"search {r['search_after_write_ms']:.1f} ms = {r['write_to_search_ms']:.1f} ms "
            f"(median of 11; max {r['write_to_search_max_ms']:.1f})"
        )
        parts = r["bytes"]
        total = sum(parts.values())
        print(
            f"  memory: snapshot {total / n:.0f} B/chunk ("
            + ", ".join(f"{k} {v / n:.0f}" for k, v in parts.items())
            + f"); RSS delta of loading {r['rss_delta_mb'] * 1e6 / n:.0f} B/chunk"
        )


if __name__ == "__main__":
    main()
