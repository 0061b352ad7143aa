"""Inline completions with the project index open: the provider receives the project's
own code for the cell's imports and called names; without an index, none is searched."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import completion_socket, eventually, indexed_config

MODULE = '''
def load_sales(region):
    """Sales rows of one region, from the warehouse export."""
    return read_export("sales", region=region)
'''


@pytest.fixture
def rubberduck_config(fake_llm: Any, tmp_path: Path, jp_root_dir: Path) -> dict[str, Any]:
    (jp_root_dir / "warehouse").mkdir()
    (jp_root_dir / "warehouse" / "loaders.py").write_text(MODULE)
    return indexed_config(
        fake_llm,
        tmp_path,
        completion_model="openai/fake-coder",
        completion_fim="true",
    )


async def _done(ws: Any, msg_id: str) -> dict[str, Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.read_message(), 30))
        if frame.get("id") == msg_id and frame["type"] != "completion.chunk":
            return frame


async def test_project_code_reaches_the_prompt(
    jp_fetch: Any, jp_ws_fetch: Any, fake_llm: Any
) -> None:
    ws = await completion_socket(jp_ws_fetch)
    ws.write_message(json.dumps({"type": "complete", "id": "before", "prefix": "x = "}))
    assert (await _done(ws, "before"))["type"] == "completion.done"
    assert "From " not in fake_llm.requests[-1]["prompt"]  # no index yet: nothing searched
    await jp_fetch("rubberduck", "api", "index", method="POST", body=json.dumps({"paths": []}))

    async def indexed() -> bool:
        status = json.loads((await jp_fetch("rubberduck", "api", "index")).body)
        return status["state"] != "indexing" and status.get("files", 0) > 0

    await eventually(indexed, "the project to be indexed")
    rounds = iter(range(100))

    async def prompt_with_project_code() -> bool:
        # A new prefix each time (no cache hit); the search may finish after the first
        # completion's 10 ms, for the next one.
        n = next(rounds)
        prefix = f"from warehouse.loaders import load_sales\nframe_{n} = load_sales("
        ws.write_message(json.dumps({"type": "complete", "id": f"c{n}", "prefix": prefix}))
        await _done(ws, f"c{n}")
        return "def load_sales(region)" in fake_llm.requests[-1]["prompt"]

    await eventually(prompt_with_project_code, "project code in a completion's prompt")
    prompt = fake_llm.requests[-1]["prompt"]
    assert "# From warehouse/loaders.py" in prompt
    assert prompt.index("warehouse/loaders.py") < prompt.index("frame_")
    ws.close()
