"""A server with a chat model but no completion model: completions are off, and say how
to turn them on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from server_fixtures import completion_socket


async def test_status_and_requests_say_completions_are_off(
    jp_fetch: Any, jp_ws_fetch: Any, fake_llm: Any
) -> None:
    status = json.loads((await jp_fetch("rubberduck", "api", "complete", "status")).body)
    assert status["enabled"] is False and status["model"] is None and status["fim"] is False
    assert "c.RubberDuckApp.completion_model" in status["reason"]
    ws = await completion_socket(jp_ws_fetch)
    ws.write_message(json.dumps({"type": "complete", "id": "a", "prefix": "x = "}))
    error = json.loads(await asyncio.wait_for(ws.read_message(), 30))
    assert error["type"] == "completion.error" and error["code"] == "no_model"
    assert "completion_model" in error["message"]
    assert fake_llm.requests == []
    ws.close()
