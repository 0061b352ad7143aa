"""GET /rubberduck/api/index reports the index's tiers against a real server: before any
index, and after one built by the fake provider's embedder (a provider's embedder is not
progressive: its chunks go straight to the full tier). The progressive states themselves
(static first, improving, resumed) are tested on IndexService in
tests/unit/test_index_progressive.py with test embedders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import eventually, indexed_config


@pytest.fixture
def rubberduck_config(jp_root_dir: Path, tmp_path: Path, fake_llm: Any) -> dict[str, Any]:
    (jp_root_dir / "calendar_utils.py").write_text(
        "def fiscal_quarter(date):\n    return date.month // 3\n"
    )
    (jp_root_dir / "churn.md").write_text("# Churn\n\nGradient boosting.\n")
    return indexed_config(fake_llm, tmp_path, index_watch=False)


async def _status(jp_fetch: Any) -> dict[str, Any]:
    return json.loads((await jp_fetch("rubberduck", "api", "index")).body)


async def test_the_status_reports_tiers(jp_fetch: Any) -> None:
    before = await _status(jp_fetch)
    assert before["searchable"] is False and before["quality"] is None
    assert before["improving"] is None and before["progressive"] is False
    assert before["tiers"]["keywords"] == {"chunks": 0}

    response = await jp_fetch("rubberduck", "api", "index", method="POST", body="{}")
    assert response.code == 202

    async def finished() -> dict[str, Any] | None:
        status = await _status(jp_fetch)
        return status if status["state"] != "indexing" else None

    status = await eventually(finished, "indexing to finish", timeout=240)
    assert status["state"] == "idle", status["error"]
    chunks = status["chunks"]
    assert chunks >= 2
    assert status["searchable"] is True and status["quality"] == "full"
    assert status["improving"] is None
    assert status["tiers"]["full"]["chunks"] == chunks
    assert status["tiers"]["full"]["embedder"] == status["embedder"]
    assert status["tiers"]["static"]["chunks"] == 0
    assert status["tiers"]["keywords"] == {"chunks": 0}
    assert status["last_report"]["first_tier"] == "full"
