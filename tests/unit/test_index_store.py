"""The DuckDB index store and hybrid search, on real database files.

Vectors are seeded random unit vectors (the embedder is tested elsewhere); queries embed
by looking up a stored text's vector, so the expected nearest chunk is known.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest

from rubberduck_jupyter.index.search import HybridSearcher, reciprocal_rank_fusion
from rubberduck_jupyter.index.snapshot import IndexSnapshot, empty_rows
from rubberduck_jupyter.index.store import (
    FileState,
    IndexMismatchError,
    IndexStore,
    glob_to_regex,
)
from rubberduck_jupyter.index.types import Chunk, ChunkKind

DIM = 384
REPO = Path(__file__).resolve().parents[2]
WORDS = [f"w{a}{b}{c}" for a in "bdfgk" for b in "aeiou" for c in "lmnprst"]  # 175 words

Item = tuple[FileState, list[Chunk], np.ndarray]


def unit_vectors(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def make_file(
    rng: np.random.Generator,
    path: str,
    n_chunks: int,
    *,
    texts: list[str] | None = None,
    version: str = "v1",
    kinds: tuple[ChunkKind, ...] | None = None,
) -> Item:
    notebook = path.endswith(".ipynb")
    if kinds is None:
        kinds = (
            (ChunkKind.CODE_CELL, ChunkKind.MARKDOWN_CELL)
            if notebook
            else (ChunkKind.FUNCTION, ChunkKind.CLASS)
        )
    chunks = []
    for j in range(n_chunks):
        text = texts[j] if texts else " ".join(rng.choice(WORDS, 30)) + f" {version}"
        kind = kinds[j % len(kinds)]
        if notebook:
            chunk = Chunk(path, kind, text, 40, cells=(j,), title=f"t{j}")
        else:
            chunk = Chunk(path, kind, text, 40, 10 * j + 1, 10 * j + 9, title=f"t{j}")
        chunks.append(chunk)
    state = FileState(path, f"{path}:{version}", 1000.0 + n_chunks, 100 * n_chunks, n_chunks)
    return state, chunks, unit_vectors(rng, n_chunks)


def texts_by_path(store: IndexStore) -> dict[str, list[str]]:
    return {
        path: [c.text for c in store.chunks(store.chunk_ids(path))] for path in store.file_states()
    }


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# --- a shared 10k-chunk index, read-only in the tests that use it -------------------------


class Corpus:
    def __init__(self, store: IndexStore, items: list[Item], rows_per_s: float) -> None:
        self.store = store
        self.ids = np.array(
            [i for state, _, _ in items for i in store.chunk_ids(state.path)], dtype=np.int64
        )
        self.chunks = [c for _, chunks, _ in items for c in chunks]
        self.matrix = np.concatenate([v for _, _, v in items])
        self.rows_per_s = rows_per_s

    def brute_force(self, query: np.ndarray, k: int, rows: np.ndarray | None = None) -> list[int]:
        rows = np.arange(len(self.ids)) if rows is None else rows
        scores = self.matrix[rows] @ query
        return [int(self.ids[rows[r]]) for r in np.argsort(-scores, kind="stable")[:k]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    rng = np.random.default_rng(7)
    items = []
    for i in range(500):  # 500 files x 20 chunks = 10k chunks
        path = f"notebooks/nb{i:03d}.ipynb" if i % 4 == 0 else f"src/pkg{i % 3}/mod{i:03d}.py"
        items.append(make_file(rng, path, 20))
    db = tmp_path_factory.mktemp("corpus") / "index.duckdb"
    store = IndexStore(db, embedder_id="test")
    started = time.perf_counter()
    for start in range(0, len(items), 250):
        store.replace_files(items[start : start + 250])
    rows_per_s = 10_000 / (time.perf_counter() - started)
    started = time.perf_counter()
    store.snapshot()
    print(f"\n10k chunks: {rows_per_s:,.0f} rows/s, load {time.perf_counter() - started:.2f} s")
    yield Corpus(store, items, rows_per_s)
    store.close()


# --- writes and persistence ---------------------------------------------------------------


def test_reopen_keeps_files_chunks_and_vectors(tmp_path: Path, rng: np.random.Generator) -> None:
    db = tmp_path / "index.duckdb"
    items = [make_file(rng, "a.py", 3), make_file(rng, "nb/b.ipynb", 2)]
    with IndexStore(db, embedder_id="test") as store:
        store.replace_files(items)
        before = texts_by_path(store)
    with IndexStore(db, embedder_id="test") as store:
        assert store.file_states() == {state.path: state for state, _, _ in items}
        assert texts_by_path(store) == before
        ids = store.chunk_ids("nb/b.ipynb")
        assert np.array_equal(store.vectors(ids), items[1][2])
        stored = store.chunks(ids)
        assert [(c.kind, c.cells, c.start_line, c.title) for c in stored] == [
            ("code_cell", (0,), None, "t0"),
            ("markdown_cell", (1,), None, "t1"),
        ]
        first = store.chunks(store.chunk_ids("a.py"))[0]
        assert (first.start_line, first.end_line, first.cell, first.n_tokens) == (1, 9, None, 40)
        stats = store.stats()
        assert (stats["files"], stats["chunks"], stats["in_memory"]) == (2, 5, False)
        assert stats["db_bytes"] > 0 and stats["cleared_on_open"] is None
        assert store.search_vector(items[0][2][1], 1) == [
            (store.chunk_ids("a.py")[1], pytest.approx(1.0, abs=1e-5))
        ]
        assert store.stats()["in_memory"]
        assert store.search_bm25(items[1][1][0].text, 1)[0][0] == ids[0]


def test_replace_file_swaps_the_old_chunks_for_the_new(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    with IndexStore(tmp_path / "index.duckdb", embedder_id="test") as store:
        store.replace_files([make_file(rng, "a.py", 4), make_file(rng, "b.py", 2)])
        old_ids = store.chunk_ids("a.py")
        state, chunks, vectors = make_file(rng, "a.py", 2, version="v2")
        store.replace_file(state, chunks, vectors)
        assert store.file_states()["a.py"] == state
        new_ids = store.chunk_ids("a.py")
        assert len(new_ids) == 2 and not set(new_ids) & set(old_ids)
        assert store.chunks(old_ids) == []
        assert [c.text for c in store.chunks(new_ids)] == [c.text for c in chunks]
        assert store.stats()["chunks"] == 4  # 2 new for a.py + 2 untouched for b.py
        hits = store.search_vector(vectors[0], 3)
        assert hits[0][0] == new_ids[0] and not {i for i, _ in hits} & set(old_ids)

        # An empty file keeps its row (so it is not re-read) and has no chunks.
        empty = FileState("a.py", "empty", 5.0, 0, 0)
        store.replace_file(empty, [], np.zeros((0, DIM), np.float32))
        assert store.file_states()["a.py"] == empty and store.chunk_ids("a.py") == []


def test_a_failing_batch_leaves_every_file_as_it_was(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    with IndexStore(tmp_path / "index.duckdb", embedder_id="test") as store:
        store.replace_files([make_file(rng, "a.py", 3)])
        before = texts_by_path(store), store.file_states()
        good = make_file(rng, "a.py", 1, version="v2")
        state, _, vectors = make_file(rng, "b.py", 1)
        # Fails inside the transaction, after a.py's old chunks were deleted.
        bad = Chunk("b.py", ChunkKind.FUNCTION, "x", 1, start_line=2**40, end_line=2**40 + 1)
        with pytest.raises(duckdb.Error, match=r"(?i)out of range"):
            store.replace_files([good, (state, [bad], vectors)])
        assert (texts_by_path(store), store.file_states()) == before


def test_replace_files_rejects_inconsistent_input(tmp_path: Path, rng: np.random.Generator) -> None:
    with IndexStore(tmp_path / "index.duckdb", embedder_id="test") as store:
        state, chunks, vectors = make_file(rng, "a.py", 2)
        with pytest.raises(ValueError, match="shape"):
            store.replace_file(state, chunks, vectors[:1])
        with pytest.raises(ValueError, match="shape"):
            store.replace_file(state, chunks, vectors[:, :10])
        with pytest.raises(ValueError, match="n_chunks"):
            store.replace_file(state, chunks[:1], vectors[:1])
        with pytest.raises(ValueError, match="another path"):
            store.replace_file(FileState("z.py", "h", 1.0, 1, 2), chunks, vectors)
        with pytest.raises(ValueError, match="twice"):
            store.replace_files([(state, chunks, vectors), (state, chunks, vectors)])
        assert store.file_states() == {}


def test_bulk_replace_files_is_fast(tmp_path: Path, rng: np.random.Generator) -> None:
    items = [make_file(rng, f"src/m{i:03d}.py", 25) for i in range(200)]
    with IndexStore(tmp_path / "index.duckdb", embedder_id="test") as store:
        started = time.perf_counter()
        store.replace_files(items)
        seconds = time.perf_counter() - started
        print(f"\nreplace_files: 5,000 chunks in {seconds:.3f} s = {5000 / seconds:,.0f} rows/s")
        assert store.stats()["chunks"] == 5000
        assert all(s.n_chunks == 25 for s in store.file_states().values())
        assert seconds < 5  # executemany would take ~100 s


def test_delete_files(tmp_path: Path, rng: np.random.Generator) -> None:
    with IndexStore(tmp_path / "index.duckdb", embedder_id="test") as store:
        store.replace_files([make_file(rng, p, 2) for p in ("a.py", "b.py", "c/d.ipynb")])
        b_ids = store.chunk_ids("b.py")
        assert store.delete_files(["b.py", "c/d.ipynb", "never-indexed.py"]) == 2
        assert store.delete_files([]) == 0
        assert set(store.file_states()) == {"a.py"}
        assert store.stats()["chunks"] == 2
        assert store.chunks(b_ids) == []
        found = {i for i, _ in store.search_vector(np.ones(DIM, np.float32), 10)}
        assert found == set(store.chunk_ids("a.py"))


def test_changing_the_embedder_or_dim_clears_the_index(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    db = tmp_path / "index.duckdb"
    with IndexStore(db, embedder_id="model-a") as store:
        store.replace_files([make_file(rng, "a.py", 2)])
    with IndexStore(db, embedder_id="model-a") as store:
        assert store.stats()["chunks"] == 2
    with IndexStore(db, embedder_id="model-b") as store:
        assert "model-b" in (store.cleared_on_open or "")
        assert store.file_states() == {} and store.stats()["chunks"] == 0
        store.replace_files([make_file(rng, "a.py", 1)])
    with IndexStore(db, dim=8, embedder_id="model-b") as store:
        assert store.file_states() == {}
        state, chunks, _ = make_file(rng, "small.py", 1)
        store.replace_file(state, chunks, unit_vectors(rng, 1, 8))
        assert (
            store.search_vector(np.ones(8, np.float32), 5)[0][0] == store.chunk_ids("small.py")[0]
        )
    with IndexStore(db, dim=8, embedder_id="model-b") as store:
        assert store.cleared_on_open is None and set(store.file_states()) == {"small.py"}


def test_a_reader_that_must_not_clear_gets_an_error_and_the_index_stays(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    db = tmp_path / "index.duckdb"
    with IndexStore(db, embedder_id="model-a") as store:
        store.replace_files([make_file(rng, "a.py", 2)])
    with pytest.raises(IndexMismatchError, match="model-a") as caught:
        IndexStore(db, embedder_id="model-b", clear_mismatch=False)
    assert "--embedder" in str(caught.value)
    with IndexStore(db, embedder_id="model-a") as store:  # closed cleanly, nothing lost
        assert store.stats()["chunks"] == 2
    fresh = tmp_path / "new.duckdb"  # a new file is not a mismatch
    with IndexStore(fresh, embedder_id="model-b", clear_mismatch=False) as store:
        assert store.stats()["chunks"] == 0


# --- vector search ------------------------------------------------------------------------


def test_vector_search_equals_brute_force(corpus: Corpus) -> None:
    rng = np.random.default_rng(3)
    for query in unit_vectors(rng, 20):
        got = corpus.store.search_vector(query, 10)
        assert [i for i, _ in got] == corpus.brute_force(query, 10)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
    # The query need not be normalized; scores are cosine similarities.
    row = corpus.matrix[123]
    best_id, best_score = corpus.store.search_vector(row * 7.5, 1)[0]
    assert best_id == corpus.ids[123] and best_score == pytest.approx(1.0, abs=1e-5)
    assert corpus.store.search_vector(np.zeros(DIM, np.float32), 5) == []
    assert corpus.store.search_vector(row, 0) == []
    with pytest.raises(ValueError, match="384"):
        corpus.store.search_vector(row[:10], 5)


def test_vector_search_follows_writes(tmp_path: Path, rng: np.random.Generator) -> None:
    with IndexStore(tmp_path / "index.duckdb", embedder_id="test") as store:
        a = make_file(rng, "a.py", 3)
        store.replace_files([a])
        query = a[2][0]
        assert store.search_vector(query, 1)[0][0] == store.chunk_ids("a.py")[0]
        loaded = store.snapshot()
        b = make_file(rng, "b.py", 1)
        b[2][0] = query  # same vector, newer chunk
        store.replace_files([b])
        # The write updated the loaded snapshot into a new one; the old one is unchanged.
        assert store.snapshot() is not loaded and loaded.n == 3
        old_rows, _ = loaded.search_vector(query, 5)
        assert old_rows[0] == 0 and len(old_rows) == 3
        # Appending from an old snapshot would write over rows the newest one reads.
        with pytest.raises(RuntimeError, match="newest"):
            loaded.with_changes([], empty_rows(DIM), [])
        found = [i for i, _ in store.search_vector(query, 2)]
        assert found == [store.chunk_ids("a.py")[0], store.chunk_ids("b.py")[0]]  # ties: older
        store.delete_files(["a.py"])
        assert store.search_vector(query, 1)[0][0] == store.chunk_ids("b.py")[0]


# --- BM25 ---------------------------------------------------------------------------------


def test_bm25_finds_a_rare_word_and_any_query_is_safe(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    texts = [
        "def seasonal_naive(series):\n    return series.shift(52)  # xylophonist",
        "Compute the mean of each group with df.groupby('key').mean()",
        "Привет, мир: naïve café tokenizer for float32 arrays",
    ]
    with IndexStore(tmp_path / "index.duckdb", embedder_id="test") as store:
        store.replace_files([make_file(rng, f"f{i}.py", 10) for i in range(20)])
        store.replace_files([make_file(rng, "special.py", 3, texts=texts)])
        special = store.chunk_ids("special.py")
        assert [i for i, _ in store.search_bm25("xylophonist", 5)] == [special[0]]
        assert store.search_bm25("seasonal_naive", 1)[0][0] == special[0]
        assert store.search_bm25("groupby mean", 1)[0][0] == special[1]  # no stopword loss
        assert store.search_bm25("float32", 5)[0][0] == special[2]
        assert store.search_bm25("привет", 5)[0][0] == special[2]
        assert store.search_bm25("naive cafe", 5)[0][0] == special[2]  # accents stripped
        odd = [
            "",
            "   ",
            '"',
            "'",
            "''; DROP TABLE chunks; --",
            '"xylophonist',
            "xylophonist'",
            "(xylophonist) OR *",
            "\\",
            "%_[]{}^$.|?*+",
            "\x00",
            "a" * 10_000,
            " ".join(WORDS) * 3,
        ]
        for query in odd:
            hits = store.search_bm25(query, 5)
            assert isinstance(hits, list)
        assert store.search_bm25("", 5) == [] and store.search_bm25("?!", 5) == []
        assert [i for i, _ in store.search_bm25("\"xylophonist'", 5)] == [special[0]]
        assert store.stats()["chunks"] == 203  # the DROP TABLE stayed a search term


def test_bm25_follows_every_write_without_a_rebuild(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    db = tmp_path / "index.duckdb"
    with IndexStore(db, embedder_id="test") as store:
        assert store.search_bm25("anything", 5) == []  # empty: still fine
        store.replace_files([make_file(rng, "a.py", 3, texts=["old quokka", "b", "c"])])
        assert store.search_bm25("quokka", 5)[0][0] == store.chunk_ids("a.py")[0]
        store.replace_files([make_file(rng, "b.py", 1, texts=["new wombat"])])
        assert store.search_bm25("wombat", 5)[0][0] == store.chunk_ids("b.py")[0]
        store.replace_files([make_file(rng, "a.py", 1, texts=["edited numbat"], version="v2")])
        assert store.search_bm25("quokka", 5) == []  # replaced: never found
        assert store.search_bm25("numbat", 5)[0][0] == store.chunk_ids("a.py")[0]
        store.delete_files(["b.py"])
        assert store.search_bm25("wombat", 5) == []
        kept = store.search_bm25("numbat edited", 5)
    with IndexStore(db, embedder_id="test") as store:
        # Term counts were committed with the chunks: a fresh load scores the same.
        assert not store.stats()["in_memory"]
        assert store.search_bm25("numbat edited", 5) == kept
        assert store.search_bm25("wombat", 5) == store.search_bm25("quokka", 5) == []


def search_everything(
    store: IndexStore, queries: np.ndarray, words: list[str]
) -> list[list[tuple[int, float]]]:
    """Results of many searches, filters included, for comparing two stores."""
    out: list[list[tuple[int, float]]] = []
    filters: list[tuple[str | None, list[str] | None]] = [
        (None, None),
        ("*.ipynb", None),
        ("src/**", ["function"]),
        (None, ["class", "markdown_cell"]),
    ]
    for glob, kinds in filters:
        for query in queries:
            out.append(store.search_vector(query, 7, path_glob=glob, kinds=kinds))
        for word in words:
            out.append(store.search_bm25(word, 7, path_glob=glob, kinds=kinds))
    return out


def test_random_writes_keep_the_snapshot_equal_to_a_fresh_load(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replace and delete files at random with the snapshot loaded: every search then
    equals the same search on a store that loads the database afresh."""
    from rubberduck_jupyter.index import bm25, snapshot

    monkeypatch.setattr(snapshot, "MIN_DEAD_ROWS", 20)  # compact along the way
    monkeypatch.setattr(bm25, "MAX_OVERRIDES", 40)  # and fold changed posting lists
    db = tmp_path / "index.duckdb"
    paths = [f"src/m{i}.py" for i in range(8)] + [f"notebooks/n{i}.ipynb" for i in range(4)]
    queries = unit_vectors(rng, 4)
    words = ["wbal", "wkus wbal", "wdot wgem wfir", "nothing"]
    compactions = 0
    with IndexStore(db, embedder_id="test") as store:
        store.replace_files([make_file(rng, p, 6) for p in paths[:6]])
        store.snapshot()
        for step in range(30):
            picked = rng.choice(paths, size=int(rng.integers(1, 4)), replace=False).tolist()
            if rng.random() < 0.3:
                store.delete_files(picked)
            else:
                store.replace_files(
                    [make_file(rng, p, int(rng.integers(0, 9)), version=f"v{step}") for p in picked]
                )
            loaded = store.snapshot()
            compactions += loaded.n_dead == 0 and loaded.n < store.stats()["chunks"] + 20
            if step % 6 == 5:
                with IndexStore(db, embedder_id="test") as fresh:
                    got = search_everything(store, queries, words)
                    want = search_everything(fresh, queries, words)
                    assert [[i for i, _ in r] for r in got] == [[i for i, _ in r] for r in want]
                    # BLAS may round float32 sums differently for another memory layout.
                    assert [[s for _, s in r] for r in got] == [
                        pytest.approx([s for _, s in r], rel=1e-5) for r in want
                    ]
                    fresh_snapshot = fresh.snapshot()
                    assert (loaded.n_live, fresh_snapshot.n) == (fresh_snapshot.n, loaded.n_live)
        assert store.stats()["in_memory"]
    assert compactions


def test_a_snapshot_that_cannot_follow_a_write_is_reloaded(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with IndexStore(tmp_path / "index.duckdb", embedder_id="test") as store:
        store.replace_files([make_file(rng, "a.py", 2, texts=["old quokka", "x"])])
        assert store.search_bm25("quokka", 5)

        def broken(*args: object, **kwargs: object) -> IndexSnapshot:
            raise RuntimeError("bug")

        monkeypatch.setattr(IndexSnapshot, "with_changes", broken)
        store.replace_files([make_file(rng, "a.py", 1, texts=["new wombat"], version="v2")])
        # The write is committed; the stale snapshot is dropped, never served.
        assert not store.stats()["in_memory"]
        assert store.search_bm25("quokka", 5) == []
        assert store.search_bm25("wombat", 5)[0][0] == store.chunk_ids("a.py")[0]


def test_a_search_sees_whole_writes_only(tmp_path: Path, rng: np.random.Generator) -> None:
    """A writer replaces files again and again; each version of a file has its own number
    of chunks, all tagged with the version. Readers check every snapshot they get: each
    file whole at one version, never a mix, and a snapshot never changes once taken."""
    n_files = 6

    def version_of(path: str, version: int) -> Item:
        n = 1 + version % 5
        texts = [f"tag{path[:2]} ver{version} part{j}" for j in range(n)]
        return make_file(rng, f"{path}.py", n, texts=texts, version=f"v{version}")

    errors: list[BaseException] = []
    reads: list[int] = []  # one per snapshot checked, for the proof that readers overlapped
    whole: list[bool] = []  # per check: the snapshot was still the database's state
    with IndexStore(tmp_path / "index.duckdb", embedder_id="test") as store:
        names = [f"f{i}" for i in range(n_files)]
        store.replace_files([version_of(name, 0) for name in names])
        searcher = HybridSearcher(store, lambda _q: np.ones(DIM, np.float32))
        done = threading.Event()

        def write() -> None:
            try:
                for version in range(1, 40):
                    picked = [names[version % n_files], names[(version * 7 + 1) % n_files]]
                    store.replace_files([version_of(name, version) for name in set(picked)])
            except BaseException as exc:
                errors.append(exc)
            finally:
                done.set()

        def check(snapshot: IndexSnapshot) -> bool:
            """Every file whole at one version; False if a later write committed already
            (texts live in DuckDB, and a replaced chunk's text is gone)."""
            rows = np.flatnonzero(snapshot.alive)
            chunks = store.chunks(snapshot.ids[rows].tolist())
            if len(chunks) != len(rows):
                return False
            assert [c.path for c in chunks] == snapshot.path_of(rows)
            by_path: dict[str, set[str]] = {}
            counts: Counter[str] = Counter()
            for chunk in chunks:
                by_path.setdefault(chunk.path, set()).add(chunk.text.split()[1])
                counts[chunk.path] += 1
            assert len(by_path) == n_files
            for path, versions in by_path.items():
                assert len(versions) == 1, (path, versions)  # never two versions at once
                assert counts[path] == 1 + int(versions.pop()[3:]) % 5  # never a partial one
            return True

        def read() -> None:
            try:
                while not done.is_set():
                    snapshot = store.snapshot()
                    before = snapshot.ids[snapshot.alive].copy()
                    whole.append(check(snapshot))
                    hits = searcher.search("tagf1 ver7", 50)
                    versions: dict[str, set[str]] = {}
                    for hit in hits:  # a search's hits come from one state, too
                        versions.setdefault(hit.path, set()).add(hit.text.split()[1])
                    assert all(len(v) == 1 for v in versions.values()), versions
                    assert np.array_equal(snapshot.ids[snapshot.alive], before)
                    reads.append(1)
                    # A breath between searches, as real ones have: two threads spinning on
                    # the GIL starve the writer, whose DuckDB scans of the registered batch
                    # take the GIL back again and again (39 writes took 200 s without it).
                    time.sleep(0.005)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write)] + [
            threading.Thread(target=read) for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert len(reads) >= 20  # the readers really ran while the writer wrote
        assert sum(whole) >= 10
        assert check(store.snapshot())
        assert store.search_bm25("ver39", 10)  # the last write is searchable at once


# --- filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.ipynb", "nb.ipynb", True),
        ("*.ipynb", "a/b/nb.ipynb", True),  # no `/` in the glob: the name, in any folder
        ("*.ipynb", "a/nb.py", False),
        ("notebooks/**", "notebooks/a.ipynb", True),
        ("notebooks/**", "notebooks/x/y.ipynb", True),
        ("notebooks/**", "old/notebooks/a.ipynb", False),
        ("notebooks/", "notebooks/x/y.ipynb", True),
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "src/sub/a.py", False),  # `*` stays in one folder
        ("src/**/*.py", "src/a.py", True),
        ("src/**/*.py", "src/x/y/a.py", True),
        ("**/test_*.py", "test_a.py", True),
        ("**/test_*.py", "tests/unit/test_a.py", True),
        ("./src/*.py", "src/a.py", True),
        ("/src/*.py", "src/a.py", True),
        ("data?.csv", "data1.csv", True),
        ("data?.csv", "data10.csv", False),
        ("[ab].py", "x/a.py", True),
        ("[!ab].py", "c.py", True),
        ("[!ab].py", "a.py", False),
        ("[a-c]x.py", "bx.py", True),
        ("*.PY", "a.py", False),  # case-sensitive
        ("a+b (1)[.py", "a+b (1)[.py", True),  # regex characters and a lone `[` are literal
        ("src", "src/a.py", False),  # a folder needs `src/` or `src/**`
    ],
)
def test_glob_semantics(pattern: str, path: str, matches: bool) -> None:
    assert (glob_to_regex(pattern).fullmatch(path) is not None) is matches


def test_filters_apply_to_both_searches(corpus: Corpus) -> None:
    store = corpus.store
    rng = np.random.default_rng(5)
    paths = np.array([c.path for c in corpus.chunks])
    kinds = np.array([str(c.kind) for c in corpus.chunks])
    cases: list[tuple[str | None, list[str] | None, np.ndarray]] = [
        ("*.ipynb", None, np.char.endswith(paths, ".ipynb")),
        ("src/pkg1/**", None, np.char.startswith(paths, "src/pkg1/")),
        ("src/*.py", None, np.zeros(len(paths), bool)),
        (None, ["class"], kinds == "class"),
        (
            "src/**",
            ["function", "markdown_cell"],
            np.char.startswith(paths, "src/") & (kinds == "function"),
        ),
    ]
    for glob, kind_filter, expected in cases:
        rows = np.flatnonzero(expected)
        query = unit_vectors(rng, 1)[0]
        got = store.search_vector(query, 10, path_glob=glob, kinds=kind_filter)
        assert [i for i, _ in got] == corpus.brute_force(query, 10, rows)
        allowed = set(corpus.ids[rows].tolist())
        word = corpus.chunks[int(rows[0])].text.split()[0] if len(rows) else "wbal"
        bm25 = store.search_bm25(word, 50, path_glob=glob, kinds=kind_filter)
        assert {i for i, _ in bm25} <= allowed
        if len(rows):
            assert bm25, (glob, kind_filter)
    hybrid = HybridSearcher(store, lambda q: corpus.matrix[0])
    hits = hybrid.search("wbal wkus", 20, path_glob="notebooks/**", kinds=["code_cell"])
    assert hits and all(h.path.startswith("notebooks/") and h.kind == "code_cell" for h in hits)
    assert all(h.cell is not None and h.start_line is None for h in hits)


# --- fusion and hybrid search -------------------------------------------------------------


def test_reciprocal_rank_fusion_math() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=60)
    assert [i for i, _ in fused] == [1, 3, 2]
    scores = dict(fused)
    assert scores[1] == pytest.approx(1 / 61 + 1 / 62)
    assert scores[3] == pytest.approx(1 / 63 + 1 / 61)
    assert scores[2] == pytest.approx(1 / 62)
    assert reciprocal_rank_fusion([[7], [9]]) == [(7, 1 / 61), (9, 1 / 61)]  # ties: first seen
    assert reciprocal_rank_fusion([[5, 6]], k=0) == [(5, 1.0), (6, 0.5)]
    assert reciprocal_rank_fusion([]) == []


def test_hybrid_search_returns_located_hits(tmp_path: Path, rng: np.random.Generator) -> None:
    code = make_file(
        rng, "src/features.py", 2, texts=["def trailing_zscore(x): ...", "def lag(x): ..."]
    )
    notebook = make_file(
        rng, "notebooks/eda.ipynb", 2, texts=["df.groupby('k').mean()", "# Exploring sales"]
    )
    vectors = {
        c.text: v for item in (code, notebook) for c, v in zip(item[1], item[2], strict=True)
    }
    # "Semantic" queries: each maps to one stored chunk's vector.
    semantic = {
        "standardise against a moving window": vectors["def trailing_zscore(x): ..."],
        "average per group": vectors["df.groupby('k').mean()"],
    }

    def embed_query(text: str) -> np.ndarray:
        return semantic.get(text, vectors.get(text, np.ones(DIM, np.float32)))

    with IndexStore(tmp_path / "index.duckdb", embedder_id="test") as store:
        store.replace_files([code, notebook] + [make_file(rng, f"x{i}.py", 5) for i in range(10)])
        searcher = HybridSearcher(store, embed_query)

        top = searcher.search("standardise against a moving window", 3)[0]
        assert (top.path, top.kind, top.start_line, top.end_line) == (
            "src/features.py",
            "function",
            1,
            9,
        )
        assert top.cell is None and top.vector_rank == 1 and top.bm25_rank is None
        assert top.to_json() == {
            "path": "src/features.py",
            "kind": "function",
            "score": top.score,
            "text": "def trailing_zscore(x): ...",
            "title": "t0",
            "start_line": 1,
            "end_line": 9,
        }

        top = searcher.search("average per group", 3)[0]
        assert (top.path, top.cell, top.cells, top.start_line) == (
            "notebooks/eda.ipynb",
            0,
            (0,),
            None,
        )
        assert set(top.to_json()) == {"path", "kind", "score", "text", "title", "cell", "cells"}

        # An exact identifier: found by BM25 even though its vector is not the nearest.
        hits = searcher.search("groupby", 5)
        assert hits[0].text == "df.groupby('k').mean()" and hits[0].bm25_rank == 1

        both = searcher.search("def lag(x): ...", 5)[0]  # ranked first by both methods
        assert both.text == "def lag(x): ..." and (both.vector_rank, both.bm25_rank) == (1, 1)
        assert both.score == pytest.approx(1.0)  # top of both lists: both weights, whole

        vector_only = searcher.search("average per group", 4, mode="vector")
        assert len(vector_only) == 4 and all(h.bm25_rank is None for h in vector_only)
        assert vector_only[0].score == pytest.approx(1.0, abs=1e-5)
        bm25_only = searcher.search("groupby", 4, mode="bm25")
        assert len(bm25_only) == 1 and bm25_only[0].vector_rank is None
        assert searcher.search("   ", 5) == [] and searcher.search("x", 0) == []
        with pytest.raises(ValueError, match="mode"):
            searcher.search("x", 5, mode="fuzzy")  # type: ignore[arg-type]


# --- processes, crashes, threads -----------------------------------------------------------

LOCK_SCRIPT = """
import sys
from pathlib import Path
from rubberduck_jupyter.index.store import IndexLockedError, IndexStore
try:
    IndexStore(Path(sys.argv[1]), embedder_id="test")
except IndexLockedError as exc:
    print(f"LOCKED {exc}")
    sys.exit(3)
print("OPENED")
"""


def test_a_second_process_gets_index_locked_error(tmp_path: Path, rng: np.random.Generator) -> None:
    db = tmp_path / "index.duckdb"
    with IndexStore(db, embedder_id="test") as store:
        store.replace_files([make_file(rng, "a.py", 1)])
        other = subprocess.run(
            [sys.executable, "-c", LOCK_SCRIPT, str(db)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
    assert other.returncode == 3, other.stdout + other.stderr
    assert str(db) in other.stdout and "Jupyter server" in other.stdout
    print("\n" + other.stdout.strip())
    # Released on close: the other process can open it now.
    again = subprocess.run(
        [sys.executable, "-c", LOCK_SCRIPT, str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert again.stdout.strip() == "OPENED", again.stderr


CRASH_FILES = 20
CRASH_SCRIPT = textwrap.dedent(
    f"""
    import sys
    import numpy as np
    from pathlib import Path
    from rubberduck_jupyter.index.store import FileState, IndexStore
    from rubberduck_jupyter.index.types import Chunk, ChunkKind

    rng = np.random.default_rng(0)

    def file(path, n, version):
        chunks = [
            Chunk(path, ChunkKind.FUNCTION, f"{{path}} {{version}} part {{j}}", 9, j + 1, j + 1)
            for j in range(n)
        ]
        vectors = rng.standard_normal((n, {DIM})).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return FileState(path, version, float(n), 100, n), chunks, vectors

    with IndexStore(Path(sys.argv[1]), embedder_id="crash") as store:
        for batch in range(5000):
            items = [
                file(f"b{{batch:04d}}/f{{i:02d}}.py", 1 + i % 7, f"v{{batch}}")
                for i in range({CRASH_FILES})
            ]
            # One file rewritten by every batch: it must come back whole, old or new.
            items.append(file("shared.py", 1 + batch % 5, f"v{{batch}}"))
            store.replace_files(items)
            print("committed", batch, flush=True)
    """
)


def test_kill_9_during_writes_keeps_whole_files(tmp_path: Path) -> None:
    db = tmp_path / "crash.duckdb"
    child = subprocess.Popen(
        [sys.executable, "-c", CRASH_SCRIPT, str(db)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert child.stdout is not None
    reported = []
    try:
        for line in child.stdout:
            reported.append(int(line.split()[1]))
            if reported[-1] >= 2:
                break
        time.sleep(0.037)  # land somewhere inside a later batch
    finally:
        child.send_signal(signal.SIGKILL)  # Popen signals its own pid
        rest = child.communicate(timeout=30)[0]
    assert child.returncode == -signal.SIGKILL
    reported += [int(line.split()[1]) for line in rest.splitlines()]
    assert reported, "the writer died before committing a batch"
    last = max(reported)

    with IndexStore(db, embedder_id="crash") as store:
        states = store.file_states()
        batches = {int(p[1:5]) for p in states if p != "shared.py"}
        committed = len(batches)
        # Every reported batch, plus at most the one committed before its line was printed.
        assert committed in (last + 1, last + 2) and batches == set(range(committed))
        for path, state in states.items():
            i = 0 if path == "shared.py" else int(path[-5:-3])
            batch = committed - 1 if path == "shared.py" else int(path[1:5])
            n = 1 + (batch % 5 if path == "shared.py" else i % 7)
            assert state == FileState(path, f"v{batch}", float(n), 100, n), path
            texts = [c.text for c in store.chunks(store.chunk_ids(path))]
            assert texts == [f"{path} v{batch} part {j}" for j in range(n)], path
        assert len(states) == committed * CRASH_FILES + 1
        assert store.stats()["chunks"] == sum(s.n_chunks for s in states.values())
        vectors = store.vectors(store.chunk_ids("shared.py"))
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
        assert store.search_bm25("shared", 1)
    print(f"\nkilled after {last + 1} reported batches; {committed} found committed")


def test_searches_run_while_another_thread_writes(tmp_path: Path, rng: np.random.Generator) -> None:
    with IndexStore(tmp_path / "index.duckdb", embedder_id="test") as store:
        store.replace_files([make_file(rng, f"seed{i}.py", 10) for i in range(10)])
        items = [make_file(rng, f"w{i}.py", 20) for i in range(40)]
        errors: list[BaseException] = []

        def write() -> None:
            try:
                for start in range(0, len(items), 4):
                    store.replace_files(items[start : start + 4])
                    store.delete_files([items[start][0].path])
            except BaseException as exc:
                errors.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        queries = unit_vectors(rng, 200)
        searches = 0
        while writer.is_alive() or searches < 20:
            store.search_vector(queries[searches % 200], 5, path_glob="w*.py")
            store.search_bm25("wbal wkus", 5, kinds=["function"])
            store.chunks([1, 2, 3])
            searches += 1
        writer.join()
        assert errors == []
        assert len(store.file_states()) == 10 + 40 - 10
        ids = store.chunk_ids("w1.py")
        assert store.search_vector(items[1][2][0], 1)[0][0] == ids[0]


# --- timings (printed, not asserted) ------------------------------------------------------


def test_hybrid_latency_at_10k_chunks(corpus: Corpus) -> None:
    store = corpus.store
    rng = np.random.default_rng(11)
    queries = unit_vectors(rng, 30)
    matrix = corpus.matrix.copy()

    def median_ms(run: Callable[[np.ndarray], object]) -> float:
        times = []
        for q in queries:
            started = time.perf_counter()
            run(q)
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    def numpy_exact(q: np.ndarray) -> None:
        scores = matrix @ q
        top = np.argpartition(-scores, 10)[:10]
        top[np.argsort(-scores[top])]

    store.search_vector(queries[0], 10)  # warm the cache
    words = iter(np.random.default_rng(2).choice(WORDS, (100, 2)).tolist())
    searcher = HybridSearcher(store, lambda text: queries[0])
    numpy_ms = median_ms(numpy_exact)
    vector_ms = median_ms(lambda q: store.search_vector(q, 10))
    bm25_ms = median_ms(lambda q: store.search_bm25(" ".join(next(words)), 50))
    hybrid_ms = median_ms(lambda q: searcher.search(" ".join(next(words)), 10))
    filtered_ms = median_ms(
        lambda q: searcher.search(" ".join(next(words)), 10, path_glob="src/**", kinds=["class"])
    )
    store._set_snapshot(None)
    started = time.perf_counter()
    store.search_vector(queries[0], 10)
    reload_ms = (time.perf_counter() - started) * 1000
    print(
        f"\n10k chunks, median of 30: numpy exact {numpy_ms:.2f} ms, search_vector "
        f"{vector_ms:.2f} ms, search_bm25 (top 50) {bm25_ms:.2f} ms, hybrid {hybrid_ms:.2f} ms "
        f"(x{hybrid_ms / numpy_ms:.0f} numpy), hybrid+filters {filtered_ms:.2f} ms, "
        f"snapshot load {reload_ms:.0f} ms; bulk insert {corpus.rows_per_s:,.0f} rows/s"
    )


def test_a_write_appends_to_long_posting_lists_without_copying_them(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """At 1M chunks a common term has ~800k postings; a one-file write must not copy them."""
    common = " ".join(WORDS[:5])
    with IndexStore(tmp_path / "index.duckdb", embedder_id="test") as store:
        store.replace_files(
            [make_file(rng, f"f{i}.py", 10, texts=[common] * 10) for i in range(50)]
        )
        store.snapshot()
        store.replace_files([make_file(rng, "f1.py", 10, texts=[common] * 10, version="v2")])
        first = store.snapshot().bm25
        store.replace_files([make_file(rng, "f2.py", 10, texts=[common] * 10, version="v2")])
        second = store.snapshot().bm25
        code = second.vocab[store.tokenizer.query_terms(WORDS[0])[0]]
        # The same buffer, grown in its spare room; the older copy still reads its own part.
        assert second.overrides[code].buffer is first.overrides[code].buffer
        assert (first.overrides[code].n, second.overrides[code].n) == (510, 520)
        assert (first.overrides[code].df, second.overrides[code].df) == (500, 500)
        # Removed rows' postings stay until a fold, and are never found.
        hits = store.search_bm25(WORDS[0], 1000)
        assert len(hits) == 500
        assert not {i for i, _ in hits} & set(range(11, 31))  # f1's and f2's first chunks
