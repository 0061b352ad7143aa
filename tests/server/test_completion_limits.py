"""Inline completions on the chat-prompt path, with their own rate limit apart from chat's,
usage counted; and a server with no completion model."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from server_fixtures import completion_socket

COMPLETIONS_PER_MINUTE = 2
CHATS_PER_MINUTE = 2


@pytest.fixture
def rubberduck_config(fake_llm: Any, direct_openai_streaming: bool) -> dict[str, Any]:
    return {
        "model": "openai/fake-model",
        "api_base": fake_llm.base_url,
        "api_key": "sk-test-key",
        "ollama_url": "http://127.0.0.1:9",
        "completion_model": "openai/fake-chat-small",
        "completion_fim": "auto",  # a name with no FIM hint: the chat prompt
        "completion_rate_limit": COMPLETIONS_PER_MINUTE,
        "user_requests_per_minute": CHATS_PER_MINUTE,
        "rate_limit_wait": 0,  # chat refuses at once when over, rather than queueing
        "direct_openai_streaming": direct_openai_streaming,
    }


def _complete(msg_id: str, prefix: str, **extra: Any) -> str:
    frame = {"type": "complete", "id": msg_id, "prefix": prefix, "suffix": "", **extra}
    return json.dumps(frame)


async def _end(ws: Any, msg_id: str) -> dict[str, Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.read_message(), 30))
        if frame.get("id") == msg_id and frame["type"] != "completion.chunk":
            return frame


async def _chat(jp_ws_fetch: Any, msg_id: str) -> dict[str, Any]:
    ws = await jp_ws_fetch("rubberduck", "ws")
    await ws.read_message()
    frame = {"type": "chat", "id": msg_id, "conversation_id": "c-" + msg_id, "text": "hi"}
    ws.write_message(json.dumps(frame))
    while True:
        out = json.loads(await asyncio.wait_for(ws.read_message(), 30))
        if out.get("id") == msg_id and out["type"] in ("done", "error"):
            ws.close()
            return out


async def test_chat_prompt_path_and_limits_apart_from_chat(
    jp_fetch: Any, jp_ws_fetch: Any, fake_llm: Any
) -> None:
    status = json.loads((await jp_fetch("rubberduck", "api", "complete", "status")).body)
    assert status["enabled"] is True and status["fim"] is False
    # A chat model wraps code in a fence and restates the line: the guards take both out.
    fake_llm.set_replies(["```python\ntotal = sum(values)\n```", "len(values)"])
    ws = await completion_socket(jp_ws_fetch)
    ws.write_message(_complete("a", "values = [1, 2]\ntotal = "))
    done = await _end(ws, "a")
    assert done == {"type": "completion.done", "id": "a", "text": "sum(values)", "cached": False}
    sent = fake_llm.requests[-1]
    assert sent["_fake"]["path"] == "/v1/chat/completions"
    assert sent["messages"][0]["role"] == "system"
    assert "values = [1, 2]\ntotal = <CURSOR>" in sent["messages"][1]["content"]
    ws.write_message(_complete("b", "n = "))
    assert (await _end(ws, "b"))["text"] == "len(values)"
    # The completions' own budget is spent; chat still answers, twice (its own budget).
    ws.write_message(_complete("c", "m = "))
    refused = await _end(ws, "c")
    assert refused["type"] == "completion.error" and refused["code"] == "rate_limited"
    assert refused["retry_after"] > 0
    for n in range(CHATS_PER_MINUTE):
        assert (await _chat(jp_ws_fetch, f"chat{n}"))["type"] == "done"
    # And the reverse: chat's budget spent does not touch completions (a cached one still
    # answers, a new one is refused by the completions' limiter, not chat's).
    assert (await _chat(jp_ws_fetch, "chat-over"))["code"] == "rate_limited"
    ws.write_message(_complete("d", "n = "))
    assert (await _end(ws, "d"))["cached"] is True
    usage = json.loads((await jp_fetch("rubberduck", "api", "usage")).body)
    assert usage["by_model"]["openai/fake-chat-small"]["requests"] == 2
    ws.close()
