"""RAG: answers retrieve from a real project index (a DuckDB file, hashed test vectors),
cite what they used with locations the UI can open, and never leak a secret found there."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import nbformat
import pytest
from engine_harness import Harness, answer_text, frames_of, joined

from rubberduck_jupyter.context.retrieval import Retriever
from rubberduck_jupyter.index.service import IndexService
from rubberduck_jupyter.testing.embedding import HashingEmbedder

LEAKY_KEY = "sk-live-" + "Zq8" * 8


async def build_index(service: IndexService) -> None:
    await service.start()
    for _ in range(600):  # the service reports its state; poll it for up to 30 s
        if service.state != "indexing":
            break
        await asyncio.sleep(0.05)
    assert service.state == "idle", service.last_error


def _project(root: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Revenue by region"),
        nbformat.v4.new_code_cell(
            "revenue_by_region = orders.groupby('region')['revenue'].sum()\n"
            "revenue_by_region.plot.bar()"
        ),
    ]
    nbformat.write(nb, str(root / "sales.ipynb"))
    (root / "loaders.py").write_text(
        f'WAREHOUSE_KEY = "{LEAKY_KEY}"\n\n\n'
        "def load_orders(path):\n"
        '    """Read the orders export and parse its dates."""\n'
        "    return read_csv(path, parse_dates=['ordered_at'])\n"
    )


@pytest.fixture
def indexed(harness: Harness, tmp_path: Path, jp_asyncio_loop: Any) -> Harness:
    _project(harness.root)
    service = IndexService(
        harness.root, tmp_path / "index.duckdb", embedder_factory=HashingEmbedder
    )

    jp_asyncio_loop.run_until_complete(build_index(service))
    harness.manager.retriever = Retriever(service)
    yield harness  # type: ignore[misc]
    jp_asyncio_loop.run_until_complete(service.close())


async def test_answer_cites_the_notebook_cell_it_used(indexed: Harness) -> None:
    indexed.fake.set_replies(["Group by region and sum revenue [1]."])
    frames = await indexed.chat("how is revenue summed per region")
    citations = frames_of(frames, "citations")[-1]["citations"]
    first = citations[0]
    assert (first["n"], first["path"], first["kind"]) == (1, "sales.ipynb", first["kind"])
    assert first["cell"] is not None
    prompt = joined(indexed.prompts()[-1])
    assert "Sources from the user's project" in prompt
    assert "[1] sales.ipynb, cell" in prompt
    assert "orders.groupby('region')" in prompt
    stored = indexed.store.sync.messages("conv-1")[-1]
    assert stored.meta["citations"][0]["path"] == "sales.ipynb"


async def test_secrets_in_retrieved_code_are_redacted(indexed: Harness) -> None:
    indexed.fake.set_replies(["Use load_orders."])
    await indexed.chat("how do I load the orders export with dates parsed")
    prompt = joined(indexed.prompts()[-1])
    assert "load_orders" in prompt
    assert LEAKY_KEY not in prompt


async def test_without_a_model_the_answer_is_the_sources(make_harness: Any, tmp_path: Path) -> None:
    h = make_harness(with_model=False)
    _project(h.root)
    service = IndexService(h.root, tmp_path / "index2.duckdb", embedder_factory=HashingEmbedder)
    await build_index(service)
    h.manager.retriever = Retriever(service)
    frames = await h.chat("revenue by region")
    text = answer_text(frames)
    assert "**[1] sales.ipynb, cell" in text
    assert "groupby('region')" in text
    assert frames_of(frames, "notice")[0]["code"] == "no_model"
    await service.close()
