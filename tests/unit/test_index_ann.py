"""The approximate vector index (usearch HNSW over int8 vectors) behind IndexStore, on real
DuckDB files with the threshold set low: recall against exact search, writes, deletes,
filters, the saved graph and its rebuild when stale or foreign, and memory accounting.

Vectors are clustered (Gaussian clouds around random centres), not uniform: uniform random
vectors in many dimensions have no near neighbours, which is not what embeddings look like.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rubberduck_jupyter.index import vectors as vector_sets
from rubberduck_jupyter.index.search import HybridSearcher
from rubberduck_jupyter.index.snapshot import StaleSnapshot
from rubberduck_jupyter.index.store import FileState, IndexStore
from rubberduck_jupyter.index.types import Chunk, ChunkKind
from rubberduck_jupyter.index.vectors import AnnVectors, Query, to_int8

DIM = 64
PER_FILE = 20


def clustered(rng: np.random.Generator, n: int, n_centres: int = 60) -> np.ndarray:
    centres = rng.standard_normal((n_centres, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, n_centres, n)]
    vectors += rng.standard_normal((n, DIM)).astype(np.float32) * 0.6
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def make_file(path: str, vectors: np.ndarray, version: str = "v1") -> tuple:
    kind = ChunkKind.CODE_CELL if path.endswith(".ipynb") else ChunkKind.FUNCTION
    chunks = [
        Chunk(path, kind, f"{path} {version} part{j}", 9, cells=(j,))
        if path.endswith(".ipynb")
        else Chunk(path, kind, f"{path} {version} part{j}", 9, j + 1, j + 1)
        for j in range(len(vectors))
    ]
    return FileState(path, version, 1.0, 10, len(vectors)), chunks, vectors


def fill(store: IndexStore, vectors: np.ndarray) -> list[str]:
    """Files of PER_FILE chunks each; every fourth a notebook. Returns the paths."""
    paths = [
        f"nb/n{f:04d}.ipynb" if f % 4 == 0 else f"src/m{f:04d}.py"
        for f in range(len(vectors) // PER_FILE)
    ]
    items = [make_file(p, vectors[i * PER_FILE : (i + 1) * PER_FILE]) for i, p in enumerate(paths)]
    for start in range(0, len(items), 50):
        store.replace_files(items[start : start + 50])
    return paths


def brute_force(store: IndexStore, matrix: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int):
    order = np.argsort(-(matrix @ q), kind="stable")[:k]
    return ids[order].tolist()


def recall(got: list[list[int]], want: list[list[int]]) -> float:
    return float(np.mean([len(set(g) & set(w)) / len(w) for g, w in zip(got, want, strict=True)]))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """A 3,000-chunk index over the threshold (1,000), its vectors and chunk ids."""
    rng = np.random.default_rng(5)
    vectors = clustered(rng, 3000)
    db = tmp_path_factory.mktemp("ann") / "index.duckdb"
    store = IndexStore(db, dim=DIM, embedder_id="test", ann_threshold=1000)
    paths = fill(store, vectors)
    ids = np.array([i for p in paths for i in store.chunk_ids(p)], dtype=np.int64)
    yield store, vectors, ids, paths
    store.close()


def test_ann_recall_against_exact_search(built) -> None:
    store, vectors, ids, _ = built
    rng = np.random.default_rng(1)
    queries = vectors[rng.integers(0, len(vectors), 100)]
    queries = queries + rng.standard_normal(queries.shape).astype(np.float32) * 0.05
    got = [[i for i, _ in store.search_vector(q, 10)] for q in queries]
    want = [brute_force(store, vectors, ids, q / np.linalg.norm(q), 10) for q in queries]
    stats = store.stats()
    assert stats["vector_search"] == "ann" and stats["ann_built"].startswith("built")
    found = recall(got, want)
    print(f"\nrecall@10 of the ANN index vs exact: {found:.3f}")
    assert found >= 0.99  # the k-th boundary is ranked in float32
    # A stored vector finds its own chunk first, scored ~1 (int8 costs ~1e-3).
    best_id, best_score = store.search_vector(vectors[123], 1)[0]
    assert best_id == ids[123] and best_score == pytest.approx(1.0, abs=5e-3)
    assert store.search_vector(np.zeros(DIM, np.float32), 5) == []


def test_int8_rescoring_scores_close_to_float32(built) -> None:
    store, vectors, ids, _ = built
    ann = store.snapshot().vectors
    assert isinstance(ann, AnnVectors)
    q = vectors[7]
    exact = vectors[:200] @ q
    approx = ann._scores(q, ids[:200])
    assert np.max(np.abs(approx - exact)) < 0.01
    # The scaling uses all of int8's range, whatever the vector's length.
    quantized = to_int8(vectors[:5] * 0.01)
    assert (np.abs(quantized).max(axis=1) == 127).all()
    assert np.allclose(to_int8(np.zeros((1, DIM), np.float32)), 0)


def test_filters_with_the_ann_index(built) -> None:
    store, vectors, ids, paths = built
    rng = np.random.default_rng(2)
    path_of = np.repeat(np.array(paths), PER_FILE)
    cases = {
        "nb/**": np.char.startswith(path_of, "nb/"),  # a quarter: over-fetch, then filter
        "src/m000[12].py": np.isin(path_of, ["src/m0001.py", "src/m0002.py"]),
    }  # ^ 40 chunks of 3,000: selective, scored exactly
    for glob, mask in cases.items():
        rows = np.flatnonzero(mask)
        queries = vectors[rng.integers(0, len(vectors), 30)]
        got = [[i for i, _ in store.search_vector(q, 10, path_glob=glob)] for q in queries]
        want = [brute_force(store, vectors[rows], ids[rows], q, 10) for q in queries]
        assert all(set(g) <= set(ids[rows].tolist()) for g in got)
        assert all(len(g) == 10 for g in got)
        assert recall(got, want) >= 0.95, glob


def test_ann_follows_replacements_and_deletes(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    with IndexStore(tmp_path / "i.duckdb", dim=DIM, embedder_id="t", ann_threshold=500) as store:
        fill(store, clustered(rng, 1000))
        store.snapshot()
        old_ids = store.chunk_ids("src/m0001.py")
        old_vectors = store.vectors(old_ids)
        new = clustered(rng, 5)
        store.replace_files([make_file("src/m0001.py", new, "v2")])
        new_ids = store.chunk_ids("src/m0001.py")
        for v, i in zip(new, new_ids, strict=True):
            assert store.search_vector(v, 1)[0][0] == i
        for v in old_vectors:
            assert not {i for i, _ in store.search_vector(v, 20)} & set(old_ids)
        gone = store.chunk_ids("src/m0002.py")
        query = store.vectors(gone)[0]
        store.delete_files(["src/m0002.py"])
        assert not {i for i, _ in store.search_vector(query, 50)} & set(gone)
        hits = HybridSearcher(store, lambda _t: new[0]).search("src/m0001.py v2", 5)
        assert hits[0].text == "src/m0001.py v2 part0" and hits[0].start_line == 1
        assert store.stats()["vector_search"] == "ann"


def test_the_graph_is_saved_loaded_and_rebuilt_when_stale_or_foreign(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    db = tmp_path / "index.duckdb"
    graph = tmp_path / "index.duckdb.usearch"
    queries = clustered(rng, 10)

    def open_store(path: Path = db) -> IndexStore:
        return IndexStore(path, dim=DIM, embedder_id="t", ann_threshold=500)

    def results(store: IndexStore) -> list[list[int]]:
        return [[i for i, _ in store.search_vector(q, 10)] for q in queries]

    def near_exact(store: IndexStore, found: list[list[int]]) -> bool:
        """Right for this index's content (a rebuilt graph may differ in a rare swap)."""
        ids = np.array([i for p in sorted(store.file_states()) for i in store.chunk_ids(p)])
        matrix = store.vectors(ids.tolist())
        want = [brute_force(store, matrix, ids, q, 10) for q in queries]
        return recall(found, want) >= 0.95 and [f[0] for f in found] == [w[0] for w in want]

    with open_store() as store:
        fill(store, clustered(rng, 800))
        before = results(store)  # builds the graph and saves it at once
        assert graph.exists() and store.stats()["ann_built"].startswith("built")
        store.replace_files([make_file("src/m0001.py", clustered(rng, 3), "v2")])
        after = results(store)
    stamp = json.loads(graph.with_name(graph.name + ".json").read_text())
    assert stamp["write_version"] == store.write_version  # saved again on close
    with open_store() as store:
        assert results(store) == after and store.stats()["ann_built"] == "loaded"
        assert after != before
    with open_store() as store:
        # A write while nothing is loaded: the graph on disk misses it.
        store.replace_files([make_file("src/m0002.py", queries[:2], "v3")])
    with open_store() as store:
        found = results(store)
        assert store.stats()["ann_built"].startswith("built (write_version")
        assert found[0][0] == store.chunk_ids("src/m0002.py")[0] and near_exact(store, found)
    # Another index's graph, a damaged one, or a missing stamp: rebuilt, never trusted.
    other = tmp_path / "other.duckdb"
    with open_store(other) as store:
        fill(store, clustered(rng, 600))
        store.search_vector(queries[0], 1)
    (tmp_path / "other.duckdb.usearch").replace(graph)
    (tmp_path / "other.duckdb.usearch.json").replace(graph.with_name(graph.name + ".json"))
    with open_store() as store:
        assert near_exact(store, results(store))
        assert store.stats()["ann_built"].startswith("built (index_uid")
    graph.write_bytes(graph.read_bytes()[:1000])
    with open_store() as store:
        assert near_exact(store, results(store))
        assert "does not match" in store.stats()["ann_built"]
    graph.with_name(graph.name + ".json").unlink()
    with open_store() as store:
        assert near_exact(store, results(store))
        assert "no readable stamp" in store.stats()["ann_built"]


def test_crossing_the_threshold_switches_to_the_graph(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    vectors = clustered(rng, 1200)
    with IndexStore(tmp_path / "i.duckdb", dim=DIM, embedder_id="t", ann_threshold=1000) as store:
        fill(store, vectors[:800])
        assert store.snapshot().vectors.kind == "exact"
        assert store.stats()["ann_built"] is None
        items = [
            make_file(f"late/f{i}.py", vectors[800 + i * PER_FILE : 800 + (i + 1) * PER_FILE])
            for i in range(20)
        ]
        store.replace_files(items)
        stats = store.stats()
        assert stats["vector_search"] == "ann" and stats["ann_built"].startswith("built on")
        assert store.search_vector(vectors[1100], 1)[0][0] == store.chunk_ids("late/f15.py")[0]
    with IndexStore(tmp_path / "i.duckdb", dim=DIM, embedder_id="t", ann_threshold=1000) as store:
        assert store.search_vector(vectors[25], 1)[0][0] == store.chunk_ids("src/m0001.py")[5]
        assert store.stats()["ann_built"] == "loaded"


def test_memory_accounting(built, tmp_path: Path) -> None:
    store, vectors, _, _ = built
    parts = store.snapshot().nbytes()
    n = len(vectors)
    # What usearch allocated: int8 vectors, links, and arenas (reserved ahead: 16 MB here
    # for 3,000; ~0.6 KB per chunk at 1M, see benchmarks/index_query.py).
    ann = store.snapshot().vectors
    assert isinstance(ann, AnnVectors)
    assert parts["vectors"] == ann.index.memory_usage > n * DIM
    bm25 = store.snapshot().bm25
    assert not bm25.overrides  # a fresh load: one CSR array of uint32 rows, uint16 counts
    assert parts["postings"] == 6 * len(bm25.rows) + bm25.indptr.nbytes
    assert parts["columns"] == n * (8 + 4 + 2 + 1)
    assert store.stats()["memory_bytes"] == sum(parts.values())
    with IndexStore(tmp_path / "small.duckdb", dim=DIM, embedder_id="t") as small:
        fill(small, vectors[:100])
        assert small.snapshot().nbytes()["vectors"] == 100 * DIM * 4  # exact: float32


def test_a_stale_search_runs_again_on_the_newest_snapshot(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    with IndexStore(tmp_path / "i.duckdb", dim=DIM, embedder_id="t", ann_threshold=100) as store:
        fill(store, clustered(rng, 200))
        old = store.snapshot()
        store.replace_files([make_file("src/m0001.py", clustered(rng, 2), "v2")])
        # The graph changed in place: the old snapshot knows it cannot answer.
        assert old.stale and not store.snapshot().stale
        with pytest.raises(StaleSnapshot):
            old.search_vector(clustered(rng, 1)[0], 5)
        # Texts come from DuckDB: a hit removed since the snapshot was taken is stale too.
        searcher = HybridSearcher(store, lambda _t: np.ones(DIM, np.float32))
        with pytest.raises(StaleSnapshot):
            searcher._hits(
                old.with_vectors(old.vectors), "v1 part0", None, "bm25", 5, 5, "src/m0001.py", None
            )
        calls = []

        def run(snapshot):
            calls.append(snapshot)
            if len(calls) == 1:
                raise StaleSnapshot()
            return "answer"

        assert store.consistent(run) == "answer" and len(calls) == 2
        hits = searcher.search("part0", 5, mode="bm25", path_glob="src/m0001.py")
        assert hits[0].text == "src/m0001.py v2 part0"


def test_query_where_rows_are_mapped_by_id() -> None:
    ann = AnnVectors(DIM)
    rng = np.random.default_rng(9)
    vectors = clustered(rng, 50)
    ann.add(np.arange(100, 150), vectors)
    ids = np.arange(100, 150, dtype=np.int64)
    alive = np.ones(50, bool)
    alive[3] = False  # a tombstone in the snapshot: never returned
    rows, _ = ann.search(vectors[3], 5, Query(ids, alive, 49, None))
    assert 3 not in rows.tolist() and len(rows) == 5


def test_a_graph_saved_with_other_links_is_rebuilt_not_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """usearch reads a graph's links from its file, whatever the constructor said: a graph
    of 16 links (as saved before they were stamped) must be rebuilt with today's."""
    rng = np.random.default_rng(9)
    db = tmp_path / "index.duckdb"
    graph = tmp_path / "index.duckdb.usearch"
    stamp_path = graph.with_name(graph.name + ".json")
    queries = clustered(rng, 3)

    def open_store() -> IndexStore:
        return IndexStore(db, dim=DIM, embedder_id="t", ann_threshold=500)

    with monkeypatch.context() as patched:
        patched.setattr(vector_sets, "CONNECTIVITY", 16)
        with open_store() as store:
            fill(store, clustered(rng, 800))
            store.search_vector(queries[0], 1)  # builds the graph with 16 links, saves it
    assert json.loads(stamp_path.read_text())["connectivity"] == 16
    with open_store() as store:
        store.search_vector(queries[0], 1)
        assert store.stats()["ann_built"].startswith("built (connectivity is 16")
        ann = store.snapshot().vectors
        assert isinstance(ann, AnnVectors) and ann.index.connectivity == vector_sets.CONNECTIVITY
    assert json.loads(stamp_path.read_text())["connectivity"] == vector_sets.CONNECTIVITY
    # A stamp written before links were recorded: rebuilt too.
    meta = json.loads(stamp_path.read_text())
    del meta["connectivity"]
    stamp_path.write_text(json.dumps(meta))
    with open_store() as store:
        store.search_vector(queries[0], 1)
        assert store.stats()["ann_built"].startswith("built (connectivity is None")
    with open_store() as store:
        assert [i for i, _ in store.search_vector(queries[1], 5)]
        assert store.stats()["ann_built"] == "loaded"


def near_duplicates(seed: int, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around one direction and queries among them: neighbours 10 and 11 are
    often closer together than int8's rounding error."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(DIM).astype(np.float32)
    vectors = base / np.linalg.norm(base) + rng.standard_normal((n, DIM)).astype(np.float32) * noise
    queries = base / np.linalg.norm(base) + rng.standard_normal((30, DIM)).astype(np.float32) * (
        2 * noise
    )
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    return unit(vectors), unit(queries)


def graph_of(vectors: np.ndarray, first_id: int) -> tuple[AnnVectors, np.ndarray, Query]:
    """A graph of `vectors` keyed from `first_id`, their ids, and a query over all of them."""
    ids = np.arange(first_id, first_id + len(vectors), dtype=np.int64)
    ann = AnnVectors(DIM)
    ann.add(ids, vectors)
    return ann, ids, Query(ids, np.ones(len(ids), bool), len(ids), None)


def test_the_k_th_boundary_is_ranked_by_float32_vectors() -> None:
    vectors, queries = near_duplicates(3, 400, 0.04)
    ann, ids, where = graph_of(vectors, 100)
    exact = [set(ids[np.argsort(-(vectors @ q))[:10]].tolist()) for q in queries]

    def top(q: np.ndarray) -> set[int]:
        rows, _ = ann._exact(q, 10, ids, where)
        return set(ids[rows].tolist())

    int8_only = recall([list(top(q)) for q in queries], [list(e) for e in exact])
    assert int8_only < 1.0  # int8 alone cannot rank these
    looked_up: list[list[int]] = []

    def precise(wanted):
        looked_up.append(list(wanted))
        return {i: vectors[i - 100] for i in wanted}

    ann.precise = precise
    assert [top(q) for q in queries] == exact
    # Only the candidates at the boundary are read, never the clear ones.
    assert len(looked_up) == len(queries)
    assert min(map(len, looked_up)) >= 2 and max(map(len, looked_up)) < len(ids) // 10
    # The graph's path too: its candidates, then the same boundary.
    rows, scores = ann.search(queries[0], 10, where)
    assert set(ids[rows].tolist()) == exact[0]
    assert (np.diff(scores) <= 0).all()
    # Clear winners keep their int8 score (within its error of the float32 one).
    assert scores[0] == pytest.approx(float(np.max(vectors @ queries[0])), abs=5e-3)


def test_a_failed_or_partial_float32_lookup_keeps_the_int8_scores() -> None:
    vectors, queries = near_duplicates(4, 300, 0.04)
    ann, ids, where = graph_of(vectors, 1)
    int8_only = [ann._exact(q, 10, ids, where)[0].tolist() for q in queries]

    def failing(wanted):
        raise RuntimeError("the database is gone")

    ann.precise = failing
    assert [ann._exact(q, 10, ids, where)[0].tolist() for q in queries] == int8_only
    ann.precise = lambda wanted: {}  # every candidate removed by a later write
    assert [ann._exact(q, 10, ids, where)[0].tolist() for q in queries] == int8_only


def test_the_store_gives_its_graph_the_float32_lookup(built, tmp_path: Path) -> None:
    store, vectors, ids, _ = built
    ann = store.snapshot().vectors
    assert isinstance(ann, AnnVectors) and ann.precise == store.full_vectors
    got = ann.precise([int(ids[5]), int(ids[9]), -1])
    assert sorted(got) == sorted([int(ids[5]), int(ids[9])])
    assert np.allclose(got[int(ids[9])], vectors[9], atol=1e-6)
    # A graph loaded from its file gets it too.
    db = tmp_path / "index.duckdb"
    with IndexStore(db, dim=DIM, embedder_id="t", ann_threshold=500) as first:
        fill(first, vectors[:800])
        first.search_vector(vectors[0], 1)
    with IndexStore(db, dim=DIM, embedder_id="t", ann_threshold=500) as second:
        second.search_vector(vectors[0], 1)
        assert second.stats()["ann_built"] == "loaded"
        loaded = second.snapshot().vectors
        assert isinstance(loaded, AnnVectors) and loaded.precise == second.full_vectors
