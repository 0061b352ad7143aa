"""Graceful degradation of retrieval: a missing or broken index gives an answer without
sources, an embedder that fails gives keyword (BM25) sources, and each user hears of each
problem once while it lasts, through a real index (DuckDB file) and the engines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from engine_harness import Harness, answer_text, frames_of
from test_retrieval import _project, build_index

from rubberduck_jupyter.context.retrieval import (
    INDEX_UNAVAILABLE,
    KEYWORD_ONLY,
    NO_INDEX,
    Retriever,
)
from rubberduck_jupyter.index.embedder_config import EmbedderError
from rubberduck_jupyter.index.service import IndexService
from rubberduck_jupyter.testing.embedding import HashingEmbedder


class SwitchableEmbedder(HashingEmbedder):
    """Embeds documents; fails queries while `down` (a provider outage after indexing)."""

    down = False

    def embed_query(self, text: str) -> np.ndarray:
        if SwitchableEmbedder.down:
            raise EmbedderError("the embedding API at http://127.0.0.1:9 answered 503")
        return super().embed_query(text)


def _notices(frames: list[dict[str, Any]]) -> list[str]:
    return [f["code"] for f in frames_of(frames, "notice")]


async def test_without_an_index_the_answer_comes_and_says_so_once_per_user(
    harness: Harness, tmp_path: Path
) -> None:
    service = IndexService(harness.root, tmp_path / "none.duckdb", embedder_factory=HashingEmbedder)
    harness.manager.retriever = Retriever(service)
    harness.fake.set_replies(["one", "two", "three"])
    first = await harness.chat("how is revenue summed per region")
    assert answer_text(first) == "one"
    assert _notices(first) == [NO_INDEX]
    again = await harness.chat("and per month?", conversation="conv-2")
    assert answer_text(again) == "two" and _notices(again) == []
    other_user = await harness.chat("hello", user="bob", conversation="conv-3")
    assert _notices(other_user) == [NO_INDEX]
    assert not service.db_path.exists(), "asking never builds an index"
    await service.close()


async def test_an_embedder_outage_answers_from_keywords_and_says_so_once(
    harness: Harness, tmp_path: Path
) -> None:
    _project(harness.root)
    service = IndexService(
        harness.root, tmp_path / "index.duckdb", embedder_factory=SwitchableEmbedder
    )
    await build_index(service)
    harness.manager.retriever = Retriever(service)
    harness.fake.set_replies(["a", "b", "c", "d"])
    try:
        SwitchableEmbedder.down = True
        frames = await harness.chat("revenue_by_region groupby")
        assert answer_text(frames) == "a"
        assert _notices(frames) == [KEYWORD_ONLY]
        notice = frames_of(frames, "notice")[0]["message"]
        assert "keywords only" in notice and "503" in notice
        citations = frames_of(frames, "citations")[-1]["citations"]
        assert citations[0]["path"] == "sales.ipynb"  # BM25 still finds the cell
        assert service.embedder_error is not None
        quiet = await harness.chat("revenue_by_region plot", conversation="conv-2")
        assert _notices(quiet) == [] and frames_of(quiet, "citations")

        SwitchableEmbedder.down = False
        healthy = await harness.chat("revenue_by_region", conversation="conv-3")
        assert _notices(healthy) == []
        assert service.embedder_error is None
        SwitchableEmbedder.down = True  # a new outage is news again
        relapse = await harness.chat("revenue_by_region", conversation="conv-4")
        assert _notices(relapse) == [KEYWORD_ONLY]
    finally:
        SwitchableEmbedder.down = False
        await service.close()


async def test_a_broken_index_answers_without_sources_and_says_so_once(
    harness: Harness, tmp_path: Path
) -> None:
    db = tmp_path / "broken.duckdb"
    db.write_bytes(b"this is not a DuckDB file" * 100)
    service = IndexService(harness.root, db, embedder_factory=HashingEmbedder)
    harness.manager.retriever = Retriever(service)
    harness.fake.set_replies(["still answered", "again"])
    frames = await harness.chat("revenue by region")
    assert answer_text(frames) == "still answered"
    assert _notices(frames) == [INDEX_UNAVAILABLE]
    assert "cannot be searched" in frames_of(frames, "notice")[0]["message"]
    assert not frames_of(frames, "citations") or not frames_of(frames, "citations")[-1]["citations"]
    again = await harness.chat("revenue by region", conversation="conv-2")
    assert answer_text(again) == "again" and _notices(again) == []
    await service.close()
