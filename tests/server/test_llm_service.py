"""Breakers, the cache, rate limits, usage, cost and model choice, through a real server,
on both streaming paths (the direct OpenAI-compatible one and litellm)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


def _entry(name: str, model: str, base: str) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": model, "api_base": base}}


@pytest.fixture
def rubberduck_config(fake_llm: Any, direct_openai_streaming: bool) -> dict[str, Any]:
    return {
        "direct_openai_streaming": direct_openai_streaming,
        "models": [
            _entry("solo", "openai/fake-solo", fake_llm.base_url),
            # A name litellm prices, so cost can be computed; the fake answers it.
            _entry("priced", "openai/gpt-4o-mini", fake_llm.base_url),
            _entry("hidden", "openai/fake-hidden", fake_llm.base_url),
        ],
        "allowed_models": ["solo", "priced"],
        "default_model": "solo",
        "retry_base_delay": 0.01,
        "max_attempts": 2,
        "breaker_failure_threshold": 2,
        "breaker_reset_timeout": 0.6,
        "user_requests_per_minute": 6,
        "rate_limit_wait": 0.3,
    }


class Chat:
    """One user's chats: a login cookie keeps the same identity across sockets, as a
    browser's does (token-only requests each get a fresh anonymous user)."""

    def __init__(self, jp_fetch: Any, jp_ws_fetch: Any, read_turn: Any, port: int) -> None:
        self.jp_fetch = jp_fetch
        self.jp_ws_fetch = jp_ws_fetch
        self.read_turn = read_turn
        self.port = port
        self.count = 0
        self.cookie = ""

    async def identity_headers(self) -> dict[str, str]:
        if not self.cookie:
            response = await self.jp_fetch("api", "status")
            cookies = response.headers.get_list("Set-Cookie")
            self.cookie = next(c.split(";", 1)[0] for c in cookies if c.startswith("username-"))
        return {"Cookie": self.cookie, "Host": f"127.0.0.1:{self.port}"}

    async def __call__(self, text: str, **extra: Any) -> list[dict[str, Any]]:
        self.count += 1
        headers = await self.identity_headers()
        ws = await self.jp_ws_fetch("rubberduck", "ws", headers=headers)
        await ws.read_message()
        # A fresh conversation each time: identical questions make identical requests.
        frame = {"type": "chat", "id": "m", "conversation_id": f"c{self.count}", "text": text}
        ws.write_message(json.dumps(frame | extra))
        frames = await self.read_turn(ws, "m")
        ws.close()
        return frames


@pytest.fixture
def chat(jp_fetch: Any, jp_ws_fetch: Any, read_turn: Any, jp_http_port: int) -> Chat:
    return Chat(jp_fetch, jp_ws_fetch, read_turn, jp_http_port)


async def _health(jp_fetch: Any) -> dict[str, Any]:
    return json.loads((await jp_fetch("rubberduck", "api", "health")).body)["subsystems"]["llm"]


async def test_breaker_opens_serves_cache_then_recovers(
    chat: Chat, fake_llm: Any, jp_fetch: Any
) -> None:
    fake_llm.set_replies(["Vectorize it."])
    ok = await chat("How do I speed up this loop?")
    assert ok[-1]["type"] == "done"
    assert ok[-1]["cached"] is False

    fake_llm.add_faults(["500", "500"])
    failed = await chat("Something new")
    assert failed[-1]["code"] == "provider_error"
    breakers = (await _health(jp_fetch))["breakers"]
    breaker = breakers[f"openai@http://127.0.0.1:{fake_llm.port}/v1"]
    assert breaker["state"] == "open"
    requests_so_far = len(fake_llm.requests)

    cached = await chat("How do I speed up this loop?")
    assert cached[-1]["type"] == "done"
    assert cached[-1]["cached"] is True
    assert "".join(f["text"] for f in cached if f["type"] == "chunk") == "Vectorize it."

    refused = await chat("Another question")
    assert refused[-1]["code"] == "provider_unavailable"
    assert refused[-1]["retry_after"] > 0
    assert len(fake_llm.requests) == requests_so_far, "an open breaker sends nothing"

    await asyncio.sleep(0.7)  # past breaker_reset_timeout: one probe may go
    fake_llm.set_replies(["Recovered."])
    probe = await chat("Another question")
    assert probe[-1]["type"] == "done"
    health = await _health(jp_fetch)
    (state,) = health["breakers"].values()
    assert state["state"] == "closed"
    assert state["times_opened"] == 1


async def test_user_rate_limit_answers_rate_limited_after_the_wait(
    chat: Chat, fake_llm: Any, history: Any
) -> None:
    results = [await chat(f"question {i}") for i in range(7)]
    assert all(r[-1]["type"] == "done" for r in results[:6])
    limited = results[6][-1]
    assert limited["code"] == "rate_limited"
    assert limited["retry_after"] > 0
    assert "requests per minute" in limited["message"]
    assert len(fake_llm.requests) == 6
    kept = await history("c7")
    assert kept[0] == ("user", "question 6")
    assert "requests per minute" in kept[1][1] and len(kept) == 2


async def test_usage_and_cost_per_message_and_per_user(
    chat: Chat, fake_llm: Any, jp_fetch: Any
) -> None:
    fake_llm.set_replies(["Priced answer here."])
    frames = await chat("What does this cost?", model="priced")
    done = frames[-1]
    assert done["model"] == "priced"
    assert done["usage"]["total_tokens"] > 0
    assert done["cost_usd"] > 0
    unpriced = (await chat("And this?"))[-1]
    assert unpriced["cost_usd"] is None
    headers = await chat.identity_headers()
    usage = json.loads((await jp_fetch("rubberduck", "api", "usage", headers=headers)).body)
    totals = usage["totals"]
    assert totals["requests"] == 2
    assert totals["unpriced_requests"] == 1
    assert totals["cost_usd"] == pytest.approx(done["cost_usd"], abs=1e-6)
    assert set(usage["by_model"]) == {"priced", "solo"}
    assert usage["conversations"]["c1"]["total_tokens"] == done["usage"]["total_tokens"]


async def test_users_pick_only_allowed_models(
    chat: Chat, fake_llm: Any, jp_fetch: Any, jp_ws_fetch: Any
) -> None:
    listing = json.loads((await jp_fetch("rubberduck", "api", "models")).body)
    assert listing["default"] == "solo"
    assert [m["name"] for m in listing["models"]] == ["solo", "priced"]
    assert all("api_key" not in m for m in listing["models"])
    ws = await jp_ws_fetch("rubberduck", "ws")
    hello = json.loads(await ws.read_message())
    assert hello["models"] == ["solo", "priced"]
    ws.close()
    refused = await chat("hi", model="hidden")
    assert refused[-1]["code"] == "model_not_allowed"
    assert fake_llm.requests == []
    await chat("hi", model="priced")
    assert [r["model"] for r in fake_llm.requests] == ["gpt-4o-mini"]


class _FakeOllama(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"models": [{"name": "qwen2.5-coder:1.5b"}]}).encode()
        self.send_response(200 if self.path == "/api/tags" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_ollama() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOllama)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


class TestZeroConfigOllama:
    @pytest.fixture
    def rubberduck_config(self, fake_ollama: str) -> dict[str, Any]:
        return {"ollama_url": fake_ollama}

    async def test_a_local_ollama_is_adopted_when_nothing_is_configured(
        self, jp_fetch: Any, fake_ollama: str
    ) -> None:
        for _ in range(100):
            llm = await _health(jp_fetch)
            if llm["model"]:
                break
            await asyncio.sleep(0.05)
        assert llm["model"] == "ollama/qwen2.5-coder:1.5b"
        assert llm["source"] == f"detected:ollama@{fake_ollama}"
