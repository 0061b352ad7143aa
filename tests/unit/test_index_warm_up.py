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


# A fresh interpreter: the test process has long imported everything DuckDB might import.
_FIRST_WRITE = """
import sys
import numpy as np
from rubberduck_jupyter.index.store import FileState, IndexStore
from rubberduck_jupyter.index.types import Chunk, ChunkKind

def file(version):
    state = FileState("a.py", f"h{version}", float(version), 10, 1)
    chunk = Chunk("a.py", ChunkKind.FUNCTION, f"def f{version}(): pass", 5, 1, 1)
    return state, [chunk], np.ones((1, 8), dtype=np.float32)

db = sys.argv[1]
if sys.argv[2] == "create":
    with IndexStore(db, dim=8, embedder_id="t") as store:
        store.replace_files([file(1)])
    sys.exit()
with IndexStore(db, dim=8, embedder_id="t") as store:
    if sys.argv[2] == "warm":
        store.warm_up()
    before = set(sys.modules)
    store.replace_files([file(2)])
    print(sorted(m for m in set(sys.modules) - before if "." not in m))
"""


def test_after_the_warm_up_the_first_write_imports_nothing(tmp_path: Path) -> None:
    """DuckDB imports pandas (~0.2 s) at the first bound parameter of a process: after
    the store's warm-up, the first saved file does not pay it."""
    import ast
    import subprocess
    import sys

    def run(db: Path, mode: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", _FIRST_WRITE, str(db), mode],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout

    def imported_by_first_write(mode: str) -> list[str]:
        db = tmp_path / f"{mode}.duckdb"
        run(db, "create")
        return ast.literal_eval(run(db, mode).strip().splitlines()[-1])

    assert imported_by_first_write("warm") == []
    # Without it (the index only opened) the write pays them (pandas, when installed): the
    # warm-up is what moved them.
    cold = imported_by_first_write("cold")
    print(f"\nimported by a first write without the warm-up: {cold}")
    try:
        import pandas  # noqa: F401
    except ImportError:
        return
    assert "pandas" in cold
