"""IndexService.warm_up: an index that exists is opened, its snapshot loaded and its
embedder run once before anyone searches; without an index nothing is loaded or created."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from rubberduck_jupyter.index.service import IndexService
from rubberduck_jupyter.testing.embedding import HashingEmbedder


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def embed_query(self, text: str) -> Any:
        self.queries.append(text)
        return super().embed_query(text)


class FailingQueries(CountingEmbedder):
    def embed_query(self, text: str) -> Any:
        raise RuntimeError("the provider is down")


def _service(
    root: Path, db: Path, built: list[CountingEmbedder], kind: type = CountingEmbedder
) -> IndexService:
    def factory() -> CountingEmbedder:
        embedder = kind()
        built.append(embedder)
        return embedder

    return IndexService(root, db, embedder_factory=factory)


async def _build(root: Path, db: Path) -> None:
    (root / "pricing.py").write_text(
        "def price_elasticity(demand, price):\n    return demand / price\n"
    )
    service = _service(root, db, [])
    await service.start()
    for _ in range(600):  # a bound for failing, not a speed expectation
        if service.state != "indexing":
            break
        await asyncio.sleep(0.05)
    assert service.state == "idle", service.last_error
    await service.close()


def test_without_an_index_nothing_is_loaded_or_created(tmp_path: Path) -> None:
    built: list[CountingEmbedder] = []
    db = tmp_path / "data" / "index.duckdb"
    service = _service(tmp_path, db, built)

    assert asyncio.run(service.warm_up()) is False
    assert not service.is_open
    assert built == []  # the embedder (torch, a model) was never built
    assert not db.exists() and not db.parent.exists()


def test_an_existing_index_is_opened_and_its_embedder_run_once(tmp_path: Path) -> None:
    db = tmp_path / "index.duckdb"
    asyncio.run(_build(tmp_path, db))
    built: list[CountingEmbedder] = []
    service = _service(tmp_path, db, built)

    async def run() -> list[Any]:
        assert await service.warm_up() is True
        assert service.is_open
        assert [e.queries for e in built] == [["warm up"]]
        hits = await service.search("elasticity of demand", mode="hybrid")
        await service.close()
        return hits

    hits = asyncio.run(run())
    assert [hit.path for hit in hits][:1] == ["pricing.py"]
    # The search used what the warm-up opened: one embedder, no second open.
    assert len(built) == 1 and built[0].queries == ["warm up", "elasticity of demand"]
    assert np.isclose(np.linalg.norm(built[0].embed_query("x")), 1.0)


def test_a_failing_embedder_does_not_fail_the_warm_up(tmp_path: Path) -> None:
    db = tmp_path / "index.duckdb"
    asyncio.run(_build(tmp_path, db))
    service = _service(tmp_path, db, [], FailingQueries)

    async def run() -> tuple[bool, list[Any], str | None]:
        warmed = await service.warm_up()
        # The first real search reports the failure, as it would without a warm-up.
        hits, degraded = await service.find("price elasticity")
        await service.close()
        return warmed, hits, degraded

    warmed, hits, degraded = asyncio.run(run())
    assert warmed is True
    assert [hit.path for hit in hits][:1] == ["pricing.py"]
    assert degraded is not None and "down" in degraded


def test_the_ann_threshold_reaches_the_store(tmp_path: Path) -> None:
    """index_ann_threshold (app.py) -> IndexService -> IndexStore: 0 always uses the graph."""
    db = tmp_path / "index.duckdb"
    asyncio.run(_build(tmp_path, db))

    async def run(threshold: int | None) -> dict[str, Any]:
        service = IndexService(
            tmp_path, db, embedder_factory=CountingEmbedder, ann_threshold=threshold
        )
        await service.warm_up()
        stats = await asyncio.to_thread(service._store.stats)
        hits = await service.search("price elasticity", mode="vector")
        await service.close()
        return {**stats, "hits": [hit.path for hit in hits]}

    graph, exact = asyncio.run(run(0)), asyncio.run(run(None))
    assert graph["vector_search"] != exact["vector_search"]
    assert graph["hits"][:1] == exact["hits"][:1] == ["pricing.py"]
