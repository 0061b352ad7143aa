"""The index kept fresh inside a real Jupyter server: files changed outside Jupyter reach
search, a save seen by both the hook and the watcher is embedded once, health shows the
watcher, and stopping the extension stops it. Embeddings come from the fake provider
(index_embedder = 'litellm:...'), so no model loads."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import eventually

EMBED_MODEL = "openai/fake-embed"
WAIT_S = 20.0  # a bound for failing, not a speed expectation


@pytest.fixture
def project(jp_root_dir: Path) -> Path:
    (jp_root_dir / "src").mkdir()
    (jp_root_dir / "src" / "calendar_utils.py").write_text(
        "def fiscal_quarter(date):\n    return date.month // 3\n"
    )
    return jp_root_dir


@pytest.fixture
def rubberduck_config(project: Path, tmp_path: Path, fake_llm: Any) -> dict[str, Any]:
    return {
        "index_db_path": str(tmp_path / "index.duckdb"),
        "ollama_url": "http://127.0.0.1:9",
        "index_embedder": f"litellm:{EMBED_MODEL}",
        "index_embedder_api_base": fake_llm.base_url,
        "index_embedder_api_key": "sk-test-key",
        "index_watch_debounce": 0.1,
    }


async def health_index(jp_fetch: Any) -> dict[str, Any]:
    response = await jp_fetch("rubberduck", "api", "health")
    return json.loads(response.body)["subsystems"]["index"]


async def search_paths(jp_fetch: Any, query: str) -> list[str]:
    response = await jp_fetch(
        "rubberduck", "api", "index", "search", params={"q": query, "mode": "bm25"}
    )
    return [hit["path"] for hit in json.loads(response.body)["hits"]]


async def build_index(jp_fetch: Any) -> None:
    await jp_fetch("rubberduck", "api", "index", method="POST", body="{}")

    async def done() -> dict[str, Any] | None:
        status = json.loads((await jp_fetch("rubberduck", "api", "index")).body)
        return status if status["state"] != "indexing" else None

    status = await eventually(done, "the index to be built")
    assert status["state"] == "idle", status


async def test_outside_changes_reach_search_and_saves_embed_once(
    jp_fetch: Any, jp_serverapp: Any, project: Path, fake_llm: Any
) -> None:
    before = await health_index(jp_fetch)
    assert before["embedder"] == f"litellm:{EMBED_MODEL}"
    assert before["watch"] == {"state": "waiting for an index"}
    await build_index(jp_fetch)

    async def watching() -> bool:
        return (await health_index(jp_fetch))["watch"]["state"] == "watching"

    await eventually(watching, "the watcher to start once the index exists")

    # Written by something other than Jupyter: a script, an editor, git.
    (project / "src" / "pricing.py").write_text("def price_elasticity_marker():\n    pass\n")

    async def found(query: str, path: str) -> bool:
        return path in await search_paths(jp_fetch, query)

    await eventually(lambda: found("price_elasticity_marker", "src/pricing.py"), "the new file")
    (project / "src" / "pricing.py").unlink()

    async def gone() -> bool:
        return "src/pricing.py" not in await search_paths(jp_fetch, "price_elasticity_marker")

    await eventually(gone, "the deleted file to leave the index")

    # Saved through Jupyter: the post-save hook and the watcher both notice it.
    index = jp_serverapp.web_app.settings["rubberduck_jupyter"].index
    seen_before = index.watcher.stats.relevant
    model = {
        "type": "file",
        "format": "text",
        "content": "def fiscal_quarter(date):\n    return date.month // 3\n\n\n"
        "def holiday_calendar_marker(country):\n    return country\n",
    }
    await jp_fetch(
        "api", "contents", "src", "calendar_utils.py", method="PUT", body=json.dumps(model)
    )
    await eventually(
        lambda: found("holiday_calendar_marker", "src/calendar_utils.py"), "the saved file"
    )

    async def settled() -> bool:
        return index.watcher.stats.relevant > seen_before and index.refresh_idle

    await eventually(settled, "the watcher to see the save and every refresh to end")
    embedded = [
        text
        for request in fake_llm.requests
        if request["_fake"]["path"].endswith("/embeddings")
        for text in request["input"]
    ]
    assert sum("holiday_calendar_marker" in text for text in embedded) == 1

    watch = (await health_index(jp_fetch))["watch"]
    assert watch["backend"] == "native" and watch["relevant"] >= 2


async def test_stopping_the_extension_stops_the_watcher(jp_fetch: Any, jp_serverapp: Any) -> None:
    await build_index(jp_fetch)
    app = jp_serverapp.web_app.settings["rubberduck_jupyter"]
    watcher = app.index.watcher
    assert watcher is not None
    assert await asyncio.to_thread(watcher.wait_ready, WAIT_S)
    await app.stop_extension()
    assert not watcher.alive
    assert watcher.state == "stopped"
