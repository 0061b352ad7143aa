"""index_embedder = "none": an index searched by BM25 alone, with the keyword-only notice,
built and searched without torch or any model (what Binder can hold)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import pytest

from rubberduck_jupyter.context.retrieval import keyword_only_message
from rubberduck_jupyter.index.embedder_config import (
    EmbedderConfig,
    EmbedderConfigError,
    EmbedderError,
    build_embedder,
)
from rubberduck_jupyter.index.embedder_none import (
    KEYWORD_ONLY_ID,
    KEYWORD_ONLY_REASON,
    KeywordOnlyEmbedder,
)
from rubberduck_jupyter.index.service import IndexService

REPO = Path(__file__).resolve().parents[2]


def _project(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "calendar_utils.py").write_text(
        "def fiscal_quarter(date):\n    return (date.month - 1) // 3 + 1\n"
    )
    (root / "NOTES.md").write_text("# Churn\n\nThe churn model uses gradient boosting trees.\n")


async def _finished(service: IndexService) -> None:
    for _ in range(600):  # a bound for failing, not a speed expectation
        if service.state != "indexing":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("indexing did not finish")


def test_none_is_a_kind_that_takes_no_model() -> None:
    assert EmbedderConfig(spec="none").validate().kind == "none"
    with pytest.raises(EmbedderConfigError, match="takes no model"):
        EmbedderConfig(spec="none:bm25").validate()
    with pytest.raises(EmbedderConfigError, match="'none'"):
        EmbedderConfig(spec="bm25").validate()


def test_none_is_built_without_an_embedder_plugin() -> None:
    """The server builds kinds through embedder plugins; 'none' is no plugin's, so it
    works with none loaded (and cannot be denied away)."""
    embedder = build_embedder(EmbedderConfig(spec="none"), factories=dict)
    assert isinstance(embedder, KeywordOnlyEmbedder)
    assert (embedder.id, embedder.dim, embedder.counter.window) == (KEYWORD_ONLY_ID, 1, 256)
    vectors = embedder.embed(["a", "b"])
    assert vectors.shape == (2, 1) and vectors.dtype.name == "float32"
    assert vectors.tolist() == [[1.0], [1.0]]
    with pytest.raises(EmbedderError, match="no embedding model"):
        embedder.embed_query("anything")
    wide = build_embedder(EmbedderConfig(spec="none", window=512), factories=dict)
    assert wide.counter.window == 512  # no model, so no 256-token cap


async def test_searches_answer_from_keywords_with_the_notice(tmp_path: Path) -> None:
    root = tmp_path / "project"
    _project(root)
    service = IndexService(
        root,
        tmp_path / "index.duckdb",
        embedder_factory=partial(build_embedder, EmbedderConfig(spec="none"), factories=dict),
    )
    try:
        await service.start()
        await _finished(service)
        assert service.state == "idle", service.last_error
        assert service.last_report and service.last_report["files_indexed"] == 2
        assert service.status()["embedder"] == KEYWORD_ONLY_ID

        hits, degraded = await service.find("fiscal_quarter")
        assert hits[0].path == "calendar_utils.py"
        assert hits[0].bm25_rank == 1 and hits[0].vector_rank is None
        assert degraded == KEYWORD_ONLY_REASON
        assert keyword_only_message(degraded).startswith("Project search used keywords only")
        # Chosen, not failing: health shows no embedder error.
        assert service.embedder_error is None
        assert service.status()["embedder_error"] is None

        # Without the fallback (engines' own searches), hybrid also answers from BM25.
        assert (await service.search("gradient boosting"))[0].path == "NOTES.md"
        assert (await service.search("gradient boosting", mode="bm25"))[0].path == "NOTES.md"
        with pytest.raises(EmbedderError, match="no embedding model"):
            await service.search("gradient boosting", mode="vector")
    finally:
        await service.close()


def test_it_indexes_and_searches_with_torch_unimportable(tmp_path: Path) -> None:
    """As on Binder: torch, sentence-transformers and model2vec cannot be imported."""
    _project(tmp_path / "project")
    script = textwrap.dedent(
        f"""
        import asyncio, importlib.abc, json, sys
        from functools import partial
        from pathlib import Path

        BLOCKED = ("torch", "sentence_transformers", "model2vec", "transformers")

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is hidden (as on Binder)")
                return None

        sys.meta_path.insert(0, Block())

        from rubberduck_jupyter.index.embedder_config import EmbedderConfig, build_embedder
        from rubberduck_jupyter.index.service import IndexService

        async def main():
            root = Path({str(tmp_path / "project")!r})
            config = EmbedderConfig(spec="none")
            service = IndexService(
                root,
                root.parent / "index.duckdb",
                embedder_factory=partial(build_embedder, config, factories=dict),
            )
            await service.start()
            while service.state == "indexing":
                await asyncio.sleep(0.05)
            hits, degraded = await service.find("fiscal_quarter")
            await service.close()
            loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
            print(json.dumps({{
                "state": service.state, "error": service.last_error,
                "top": hits[0].path if hits else None, "degraded": degraded, "loaded": loaded,
            }}))

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "state": "idle",
        "error": None,
        "top": "calendar_utils.py",
        "degraded": KEYWORD_ONLY_REASON,
        "loaded": [],
    }
