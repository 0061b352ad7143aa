"""A real server with an index on disk opens it, and loads its embedder, shortly after
it starts, before any search; `index_warm_up = False` leaves that to the first search.
The index is keyword-only (index_embedder = 'none'), so no model loads."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import eventually

from rubberduck_jupyter.index.embedder_config import EmbedderConfig, build_embedder
from rubberduck_jupyter.index.embedder_none import KEYWORD_ONLY_ID
from rubberduck_jupyter.index.service import IndexService


def _build_index(root: Path, db: Path) -> None:
    (root / "pricing.py").write_text("def price_elasticity(demand, price):\n    return 1\n")

    async def build() -> None:
        service = IndexService(
            root, db, embedder_factory=lambda: build_embedder(EmbedderConfig(spec="none"))
        )
        await service.start()
        for _ in range(600):  # a bound for failing, not a speed expectation
            if service.state != "indexing":
                break
            await asyncio.sleep(0.05)
        assert service.state == "idle", service.last_error
        await service.close()

    asyncio.run(build())


@pytest.fixture(params=[True, False], ids=["warm-up", "no-warm-up"])
def warm_up(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def rubberduck_config(
    jp_root_dir: Path, tmp_path: Path, fake_llm: Any, warm_up: bool
) -> dict[str, Any]:
    db = tmp_path / "index.duckdb"
    _build_index(jp_root_dir, db)
    return {
        "model": "openai/fake-model",
        "api_base": fake_llm.base_url,
        "api_key": "sk-test-key",
        "index_db_path": str(db),
        "index_embedder": "none",
        "index_watch": False,
        "index_warm_up": warm_up,
        "ollama_url": "http://127.0.0.1:9",
    }


async def _index_status(jp_fetch: Any) -> dict[str, Any]:
    return dict(json.loads((await jp_fetch("rubberduck", "api", "index")).body))


async def test_an_existing_index_opens_before_the_first_search(
    jp_fetch: Any, jp_serverapp: Any, warm_up: bool
) -> None:
    app = jp_serverapp.web_app.settings["rubberduck_jupyter"]

    async def llm_loaded() -> bool:
        return bool(app.llm.state == "ready")

    # litellm's warm-up comes first; the index's follows it.
    await eventually(llm_loaded, "litellm's warm-up")
    if warm_up:

        async def opened() -> dict[str, Any] | None:
            status = await _index_status(jp_fetch)
            return status if status["open"] else None

        status = await eventually(opened, "the index to be opened by the warm-up")
        assert status["embedder"] == KEYWORD_ONLY_ID
    else:
        await asyncio.sleep(2.5)  # longer than the warm-up's delay after litellm's
        status = await _index_status(jp_fetch)
        assert status["open"] is False and status["embedder"] is None
    # Either way the first search works and finds the file.
    response = await jp_fetch(
        "rubberduck", "api", "index", "search", params={"q": "price elasticity", "mode": "bm25"}
    )
    assert [hit["path"] for hit in json.loads(response.body)["hits"]][:1] == ["pricing.py"]
