"""Progressive indexing: chunks with BM25 terms and static vectors first, the transformer's
vectors after, replacing them batch by batch; search never compares one model's query with
another model's vectors; a crash between the tiers is resumed; the old schema is rebuilt.

Both tiers are test embedders (the real models are not the point here); the second tier is
held by a semaphore, so every intermediate state is reached deterministically, not timed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from rubberduck_jupyter.index.indexer import Indexer
from rubberduck_jupyter.index.search import HybridSearcher
from rubberduck_jupyter.index.service import IndexService
from rubberduck_jupyter.index.store import SCHEMA_VERSION, IndexStore
from rubberduck_jupyter.testing.embedding import HashingEmbedder

FULL_DIM = 48
STATIC_DIM = 48  # the same size on purpose: a mixed-up comparison would not even fail loud

FILES = {
    "pricing.py": "def price_elasticity(demand, price):\n    return demand / price\n",
    "weather.py": "def rainfall_forecast(clouds, wind):\n    return clouds * wind\n",
    "orbits.py": "def kepler_period(semi_major_axis):\n    return semi_major_axis ** 1.5\n",
    "music.py": "def chord_progression(key, mode):\n    return [key, mode]\n",
}


class StaticTestEmbedder(HashingEmbedder):
    """The static tier: the hashed bag of words, negated. Its own query matches its own
    vectors (cosine +1 for the same words); the full tier's query, compared with these
    vectors, would find the same text at cosine -1: dead last. So a search that mixed the
    two models would rank the right chunk last, and the tests below would fail."""

    def __init__(self) -> None:
        super().__init__(STATIC_DIM)
        self.id = "test-static-negated"
        self.queries: list[str] = []

    def embed(self, texts: Sequence[str]) -> Any:
        return -super().embed(texts)

    def embed_query(self, text: str) -> Any:
        self.queries.append(text)
        return -super().embed_query(text)


class GatedEmbedder(HashingEmbedder):
    """The transformer tier: each embedding call of chunk texts waits for one permit."""

    def __init__(self, permits: int = 0) -> None:
        super().__init__(FULL_DIM)
        self.id = "test-full"
        self.gate = threading.Semaphore(permits)
        self.queries: list[str] = []
        self.fail = False

    def embed(self, texts: Sequence[str]) -> Any:
        if texts:
            assert self.gate.acquire(timeout=60), "the test never opened the gate"
            if self.fail:
                raise RuntimeError("the process died here (simulated)")
        return super().embed(texts)

    def embed_query(self, text: str) -> Any:
        self.queries.append(text)
        return super().embed_query(text)


def _write(root: Path, files: dict[str, str] = FILES) -> None:
    for name, text in files.items():
        (root / name).write_text(text)


def _store(db: Path, full: GatedEmbedder, static: StaticTestEmbedder | None) -> IndexStore:
    extra: dict[str, Any] = {}
    if static is not None:
        extra = {"static_embedder_id": static.id, "static_dim": static.dim}
    return IndexStore(db, dim=full.dim, embedder_id=full.id, **extra)


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60  # a bound for failing, not a speed expectation
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _top_path(searcher: HybridSearcher, query: str, mode: str = "hybrid") -> str:
    hits = searcher.search(query, 3, mode=mode)  # type: ignore[arg-type]
    assert hits, query
    return hits[0].path


def test_searchable_after_the_first_tier_then_replaced_batch_by_batch(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    _write(root)
    full, static = GatedEmbedder(), StaticTestEmbedder()
    with _store(tmp_path / "i.duckdb", full, static) as store:
        searcher = HybridSearcher(store, full.embed_query, static.embed_query)
        indexer = Indexer(store, full, progressive=True, static_embedder=static, batch_chunks=1)
        store.snapshot()  # loaded: every write below also updates the in-memory snapshot
        reports: list[Any] = []
        run = threading.Thread(target=lambda: reports.append(indexer.index_folder(root)))
        run.start()
        try:
            _wait_for(lambda: indexer.progress.phase == "improving", "the second tier")
            counts = store.tier_counts()
            assert counts == {"chunks": 4, "full": 0, "static": 4}
            # Searchable before the transformer embedded anything, by the static tier
            # (vector mode: the static ranking alone decides), without the full model.
            assert _top_path(searcher, "kepler_period semi_major_axis", "vector") == "orbits.py"
            assert _top_path(searcher, "rainfall_forecast clouds") == "weather.py"
            assert full.queries == []  # no chunk has its vectors: its query is not needed

            full.gate.release()  # one batch of one chunk
            # The snapshot follows each commit (under the write lock, just after it).
            _wait_for(lambda: store.snapshot().n_covered == 1, "the first batch")
            assert store.tier_counts() == {"chunks": 4, "full": 1, "static": 3}
            snapshot = store.snapshot()
            assert snapshot.n_covered == 1 and snapshot.static is not None
            assert len(snapshot.static) == 3
            covered = snapshot.path_of(np.flatnonzero(snapshot.covered))
            assert len(covered) == 1
            # Mid-transition each tier ranks its own chunks with its own model's query (a
            # mixed comparison would put the right chunk last), and hybrid finds them all.
            for query, path in [
                ("price_elasticity demand", "pricing.py"),
                ("kepler_period semi_major_axis", "orbits.py"),
                ("chord_progression key mode", "music.py"),
                ("rainfall_forecast clouds", "weather.py"),
            ]:
                if path in covered:
                    rows, _ = snapshot.search_vector(full.embed_query(query), 3)
                else:
                    rows, _ = snapshot.search_static(static.embed_query(query), 3)
                    assert path not in snapshot.path_of(
                        snapshot.search_vector(full.embed_query(query), 3)[0]
                    )
                assert snapshot.path_of(rows[:1]) == [path]
                assert _top_path(searcher, query) == path
        finally:
            for _ in range(8):
                full.gate.release()
            run.join(60)
        report = reports[0]
        assert report.first_tier == "static" and report.chunks_improved == 4
        assert report.seconds_to_searchable is not None
        assert store.tier_counts() == {"chunks": 4, "full": 4, "static": 0}
        snapshot = store.snapshot()
        assert snapshot.static is None and snapshot.covered is None
        # The steady state: the full tier alone, as without progressive indexing.
        static.queries.clear()
        assert _top_path(searcher, "kepler_period semi_major_axis", "vector") == "orbits.py"
        assert static.queries == []
    # Reloaded from DuckDB, the same state.
    with _store(tmp_path / "i.duckdb", full, static) as store:
        assert store.snapshot().n_covered == 4 and store.snapshot().static is None


def test_a_mixed_search_would_rank_the_static_chunk_last(tmp_path: Path) -> None:
    """The guard itself: the full model's query against a static vector ranks that chunk
    last, so the tier-aware search above is what keeps it first."""
    full, static = GatedEmbedder(), StaticTestEmbedder()
    text = FILES["orbits.py"]
    others = [FILES[name] for name in ("pricing.py", "weather.py", "music.py")]
    static_vectors = static.embed([text, *others])
    mixed = static_vectors @ full.embed_query("kepler_period semi_major_axis")
    assert int(np.argmax(mixed)) != 0 and int(np.argmin(mixed)) == 0
    own = static_vectors @ static.embed_query("kepler_period semi_major_axis")
    assert int(np.argmax(own)) == 0


def test_keywords_first_without_a_static_embedder(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    _write(root)
    full = GatedEmbedder()
    with _store(tmp_path / "i.duckdb", full, None) as store:
        searcher = HybridSearcher(store, full.embed_query)
        indexer = Indexer(store, full, progressive=True)
        reports: list[Any] = []
        run = threading.Thread(target=lambda: reports.append(indexer.index_folder(root)))
        run.start()
        try:
            _wait_for(lambda: indexer.progress.phase == "improving", "the second tier")
            assert store.tier_counts() == {"chunks": 4, "full": 0, "static": 0}
            # BM25 alone answers; the query is embedded but no chunk has a vector to rank.
            assert _top_path(searcher, "rainfall_forecast") == "weather.py"
            assert searcher.search("rainfall", 3, mode="vector") == []
        finally:
            full.gate.release()
            run.join(60)
        assert reports[0].first_tier == "none"
        assert store.tier_counts() == {"chunks": 4, "full": 4, "static": 0}
        assert _top_path(searcher, "rainfall_forecast clouds", "vector") == "weather.py"


def test_a_crash_between_the_tiers_is_resumed(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    _write(root)
    db = tmp_path / "i.duckdb"
    full, static = GatedEmbedder(permits=100), StaticTestEmbedder()
    full.fail = True
    with _store(db, full, static) as store:
        indexer = Indexer(store, full, progressive=True, static_embedder=static)
        with pytest.raises(RuntimeError, match="simulated"):
            indexer.index_folder(root)
        assert store.tier_counts() == {"chunks": 4, "full": 0, "static": 4}
    # A new process: the same file, the missing tier only.
    full, static = GatedEmbedder(permits=100), StaticTestEmbedder()
    with _store(db, full, static) as store:
        assert store.cleared_on_open is None
        searcher = HybridSearcher(store, full.embed_query, static.embed_query)
        assert _top_path(searcher, "chord_progression key mode", "vector") == "music.py"
        report = Indexer(store, full, progressive=True, static_embedder=static).index_folder(root)
        assert report.files_indexed == 0 and report.files_unchanged == 4
        assert report.chunks_improved == 4
        assert len(full.texts) == 4  # each chunk embedded once
        assert store.tier_counts() == {"chunks": 4, "full": 4, "static": 0}
        assert _top_path(searcher, "chord_progression key mode", "vector") == "music.py"
    # Also without progressive indexing, the next run fills what is missing.
    full.fail, full.texts = True, []
    with _store(db, full, static) as store:
        _write(root, {"extra.py": "def tide_height(moon):\n    return moon\n"})
        with pytest.raises(RuntimeError):
            Indexer(store, full, progressive=True, static_embedder=static).index_folder(root)
    full.fail = False
    with _store(db, full, None) as store:  # opened without the static tier now
        report = Indexer(store, full).index_folder(root)
        assert report.chunks_improved == 1
        assert len(full.texts) == 1 and "tide_height" in full.texts[0]
        assert store.tier_counts()["full"] == 5


def test_a_saved_file_is_refreshed_in_both_tiers(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    _write(root)
    full, static = GatedEmbedder(permits=100), StaticTestEmbedder()
    with _store(tmp_path / "i.duckdb", full, static) as store:
        indexer = Indexer(store, full, progressive=True, static_embedder=static)
        indexer.index_folder(root)
        store.snapshot()
        others = {p: store.chunk_ids(p) for p in FILES if p != "weather.py"}
        full.texts.clear()
        static.texts.clear()
        new_text = "def snowfall_forecast(frost, wind):\n    return frost * wind\n"
        (root / "weather.py").write_text(new_text)
        report = indexer.index_files(root, [root / "weather.py"])
        assert report.files_indexed == 1 and report.chunks_improved == 1
        # The one new chunk (its text with its header), in each tier once.
        assert len(static.texts) == 1 and "snowfall_forecast" in static.texts[0]
        assert full.texts == static.texts
        assert {p: store.chunk_ids(p) for p in others} == others  # untouched
        assert store.tier_counts() == {"chunks": 4, "full": 4, "static": 0}
        searcher = HybridSearcher(store, full.embed_query, static.embed_query)
        assert _top_path(searcher, "snowfall_forecast frost", "vector") == "weather.py"


def test_an_old_schema_is_rebuilt(tmp_path: Path) -> None:
    db = tmp_path / "i.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
    con.execute(
        "INSERT INTO meta VALUES ('schema_version', '4'), ('dim', '48'), "
        "('embedder_id', 'test-full'), ('index_uid', 'x'), ('write_version', '3')"
    )
    con.execute("CREATE TABLE chunks (id BIGINT, text VARCHAR, vec FLOAT[48])")
    con.execute("INSERT INTO chunks VALUES (1, 'old', NULL)")
    con.close()
    full, static = GatedEmbedder(permits=100), StaticTestEmbedder()
    root = tmp_path / "project"
    root.mkdir()
    _write(root)
    with _store(db, full, static) as store:
        assert store.cleared_on_open is not None and "schema 4" in store.cleared_on_open
        assert store.stats()["schema_version"] == SCHEMA_VERSION
        Indexer(store, full, progressive=True, static_embedder=static).index_folder(root)
        assert store.tier_counts() == {"chunks": 4, "full": 4, "static": 0}


def test_the_service_reports_tiers(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    _write(root)
    full, static = GatedEmbedder(), StaticTestEmbedder()

    async def scenario() -> None:
        service = IndexService(
            root,
            tmp_path / "data" / "i.duckdb",
            embedder_factory=lambda: full,
            progressive=True,
            static_embedder_factory=lambda: static,
        )
        await service.start()
        try:
            for _ in range(1200):  # a bound for failing, not a speed expectation
                progress = (service.status().get("progress") or {}).get("phase")
                if progress == "improving" and service.status()["tiers"]["static"]["chunks"]:
                    break
                await asyncio.sleep(0.05)
            status = service.status()
            assert status["state"] == "indexing" and status["searchable"] is True
            assert status["quality"] == "static" and status["improving"] == 0.0
            assert status["tiers"]["static"] == {
                "embedder": static.id,
                "chunks": 4,
                "state": "ready",
            }
            assert status["tiers"]["full"] == {"embedder": full.id, "chunks": 0}
            hits, notice = await service.find("price_elasticity demand")
            assert hits[0].path == "pricing.py" and notice is None
        finally:
            for _ in range(8):
                full.gate.release()
        for _ in range(1200):
            if service.state != "indexing":
                break
            await asyncio.sleep(0.05)
        status = service.status()
        assert status["state"] == "idle", status["error"]
        assert status["quality"] == "full" and status["improving"] is None
        assert status["tiers"]["full"]["chunks"] == 4
        assert status["tiers"]["static"]["chunks"] == 0
        assert status["last_report"]["first_tier"] == "static"
        await service.close()

    asyncio.run(scenario())


class NotDistilledYet(StaticTestEmbedder):
    """model2vec before its one-time distillation: `load` is the distillation."""

    def __init__(self) -> None:
        super().__init__()
        self.distilled = threading.Event()

    def unavailable(self) -> str | None:
        return None if self.distilled.is_set() else "not distilled yet"

    def can_distil(self) -> bool:
        return True

    def load(self) -> None:
        self.distilled.set()


def test_without_the_static_model_keywords_first_then_it_is_distilled(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    _write(root)
    full, static = GatedEmbedder(permits=100), NotDistilledYet()

    async def finished(service: IndexService) -> dict[str, Any]:
        for _ in range(1200):  # a bound for failing, not a speed expectation
            if service.state != "indexing":
                break
            await asyncio.sleep(0.05)
        return service.status()

    async def scenario() -> None:
        service = IndexService(
            root,
            tmp_path / "data" / "i.duckdb",
            embedder_factory=lambda: full,
            progressive=True,
            static_embedder_factory=lambda: static,
        )
        await service.start()
        status = await finished(service)
        assert status["last_report"]["first_tier"] == "none"
        assert status["quality"] == "full"
        # Distilled in the background after the run, once.
        assert static.distilled.wait(30)
        for _ in range(600):
            if service.status()["tiers"]["static"]["state"] == "ready":
                break
            await asyncio.sleep(0.05)
        assert service.status()["tiers"]["static"]["state"] == "ready"
        # The next change is written with static vectors first.
        (root / "tides.py").write_text("def tide_height(moon):\n    return moon\n")
        await service.start()
        status = await finished(service)
        assert status["last_report"]["first_tier"] == "static"
        assert status["last_report"]["chunks_improved"] == 1
        await service.close()

    asyncio.run(scenario())


class SlowToLoad(StaticTestEmbedder):
    """A static tier that must be loaded before it embeds; its load is held by a gate, so
    the test sees where and when it runs."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.loaded = False
        self.loaded_in: list[str] = []
        self.gate = threading.Event()
        self.fail = fail
        self.lock = threading.Lock()  # as the real ones: one load at a time, then none

    def load(self) -> None:
        with self.lock:
            if self.loaded:
                return
            self.loaded_in.append(threading.current_thread().name)
            assert self.gate.wait(60), "the test never let the load finish"
            if self.fail:
                raise RuntimeError("no model here")
            self.loaded = True

    def embed(self, texts: Sequence[str]) -> Any:
        if not self.loaded:
            self.load()
        return super().embed(texts)


@pytest.mark.parametrize("fail", [False, True])
def test_the_static_tier_loads_while_the_files_are_chunked(tmp_path: Path, fail: bool) -> None:
    root = tmp_path / "project"
    root.mkdir()
    _write(root)
    full, static = GatedEmbedder(permits=100), SlowToLoad(fail=fail)
    with _store(tmp_path / "index.duckdb", full, static) as store:
        indexer = Indexer(store, full, progressive=True, static_embedder=static)
        done = threading.Event()
        reports: list[Any] = []
        worker = threading.Thread(
            target=lambda: (reports.append(indexer.index_folder(root)), done.set())
        )
        worker.start()
        # The load starts at once, in its own thread, before any batch is written.
        _wait_for(lambda: bool(static.loaded_in), "the static tier's load")
        assert static.loaded_in[0] == "rubberduck-static-load"
        assert store.stats()["chunks"] == 0
        static.gate.set()
        assert done.wait(60)
        worker.join()
        report = reports[0]
        counts = store.tier_counts()
        assert counts["full"] == counts["chunks"] == len(FILES)
        if fail:  # the load failed in its thread; the first batch met it again: keywords
            assert report.first_tier == "none" and "no model here" in report.static_error
        else:
            assert report.first_tier == "static" and not report.static_error
            assert static.loaded_in == ["rubberduck-static-load"]  # loaded once
