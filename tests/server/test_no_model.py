"""With no model configured the assistant says so plainly and never pretends to answer."""

from __future__ import annotations

import json
from typing import Any

import pytest


@pytest.fixture
def rubberduck_config(tmp_path: Any) -> dict[str, Any]:
    # Nothing answers at this address, so Ollama detection finds nothing.
    return {"ollama_url": "http://127.0.0.1:9"}


async def test_no_model_is_reported_in_health_and_hello(jp_fetch: Any, jp_ws_fetch: Any) -> None:
    health = json.loads((await jp_fetch("rubberduck", "api", "health")).body)
    assert health["subsystems"]["llm"]["state"] == "not_configured"
    ws = await jp_ws_fetch("rubberduck", "ws")
    hello = json.loads(await ws.read_message())
    assert hello["model"] == {"configured": False, "name": None}
    ws.close()


async def test_chat_without_a_model_explains_how_to_add_one(
    jp_ws_fetch: Any, read_turn: Any, fake_llm: Any
) -> None:
    ws = await jp_ws_fetch("rubberduck", "ws")
    await ws.read_message()
    ws.write_message(
        json.dumps({"type": "chat", "id": "m1", "conversation_id": "c", "text": "hello?"})
    )
    frames = await read_turn(ws, "m1")
    # Answered from RubberDuck's own search, with a plain notice: never a pretend model.
    assert [f["type"] for f in frames] == ["route", "notice", "chunk", "done"]
    notice = frames[1]
    assert notice["code"] == "no_model"
    assert "RUBBERDUCK_MODEL" in notice["message"]
    assert "not from a language model" in notice["message"]
    assert "not indexed yet" in frames[2]["text"]
    assert frames[-1]["model"] is None and frames[-1]["usage"]["total_tokens"] == 0
    assert fake_llm.requests == []
    ws.close()
