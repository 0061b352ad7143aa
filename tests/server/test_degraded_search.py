"""With the embedding provider down, a hybrid search over REST answers from keywords (BM25)
with a notice saying so, and health names the problem until a query embeds again."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.server_fixtures import indexed_config


@pytest.fixture
def rubberduck_config(fake_llm: Any, tmp_path: Path, jp_root_dir: Path) -> dict[str, Any]:
    (jp_root_dir / "calendar_utils.py").write_text(
        "def fiscal_quarter(date):\n    return (date.month - 1) // 3 + 1\n"
    )
    return indexed_config(fake_llm, tmp_path)


async def _get(jp_fetch: Any, *path: str, **params: Any) -> dict[str, Any]:
    return json.loads((await jp_fetch("rubberduck", "api", *path, params=params)).body)


async def test_search_falls_back_to_keywords_and_says_so(jp_fetch: Any, fake_llm: Any) -> None:
    await jp_fetch("rubberduck", "api", "index", method="POST", body=json.dumps({"paths": []}))
    for _ in range(300):
        if (await _get(jp_fetch, "index"))["state"] != "indexing":
            break
        await asyncio.sleep(0.1)
    healthy = await _get(jp_fetch, "index", "search", q="fiscal_quarter")
    assert healthy["hits"] and "notice" not in healthy

    fake_llm.update_settings({"fault": "503"})
    try:
        degraded = await _get(jp_fetch, "index", "search", q="fiscal_quarter")
    finally:
        fake_llm.update_settings({"fault": None})
    assert degraded["hits"][0]["path"] == "calendar_utils.py"
    assert degraded["notice"]["code"] == "keyword_search_only"
    assert "keywords only" in degraded["notice"]["message"]
    index_health = (await _get(jp_fetch, "health"))["subsystems"]["index"]
    assert "503" in (index_health["embedder_error"] or "")

    recovered = await _get(jp_fetch, "index", "search", q="fiscal_quarter")
    assert "notice" not in recovered
    assert (await _get(jp_fetch, "health"))["subsystems"]["index"]["embedder_error"] is None
