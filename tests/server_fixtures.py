"""Fixtures for tests against a real Jupyter server with RubberDuck loaded (pytest-jupyter):
the extension config pointing at the fake provider, and readers for turns and history."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

EMBED_MODEL = "openai/fake-embed"
WAIT_S = 30.0  # a bound for failing, not a speed expectation


async def eventually(check: Any, what: str, timeout: float = WAIT_S) -> Any:
    """Awaits `check()` until it returns something truthy (returned), or fails after
    `timeout` seconds naming `what` it waited for."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)


def indexed_config(fake_llm: Any, tmp_path: Any, **extra: Any) -> dict[str, Any]:
    """The fake model, an index in `tmp_path` embedded by the fake provider (no model
    loads, searches are fast), no Ollama probe; `extra` adds or overrides traitlets."""
    return {
        "model": "openai/fake-model",
        "api_base": fake_llm.base_url,
        "api_key": "sk-test-key",
        "index_db_path": str(tmp_path / "index.duckdb"),
        "ollama_url": "http://127.0.0.1:9",
        "index_embedder": f"litellm:{EMBED_MODEL}",
        "index_embedder_api_base": fake_llm.base_url,
        "index_embedder_api_key": "sk-test-key",
        **extra,
    }


@pytest.fixture
def rubberduck_config(fake_llm: Any) -> dict[str, Any]:
    """RubberDuckApp traitlets for a test; override in a module to change them."""
    return {"model": "openai/fake-model", "api_base": fake_llm.base_url, "api_key": "sk-test-key"}


@pytest.fixture(params=[True, False], ids=["direct", "litellm"])
def direct_openai_streaming(request: pytest.FixtureRequest) -> bool:
    """Both streaming paths (llm/openai_stream.py and litellm): a module whose
    rubberduck_config takes this fixture runs each test on each."""
    return bool(request.param)


@pytest.fixture
def jp_server_config(rubberduck_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"rubberduck_jupyter": True}},
        "RubberDuckApp": rubberduck_config,
    }


async def _read_turn(ws: Any, msg_id: str, timeout: float = 30) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    while True:
        raw = await asyncio.wait_for(ws.read_message(), timeout)
        assert raw is not None, "socket closed before the turn ended"
        frame = json.loads(raw)
        if frame.get("id") != msg_id:
            continue
        frames.append(frame)
        if frame["type"] in {"done", "error"}:
            return frames


def chunks_text(frames: list[dict[str, Any]]) -> str:
    """The answer a turn streamed: its chunk frames' text, joined."""
    return "".join(f["text"] for f in frames if f["type"] == "chunk")


async def chat_on_model(
    jp_ws_fetch: Any, text: str, model: str, *, conversation_id: str | None = None
) -> list[dict[str, Any]]:
    """One turn over a fresh WebSocket on `model` (its conversation named after the model
    unless given): every frame up to its done or error."""
    ws = await jp_ws_fetch("rubberduck", "ws")
    await ws.read_message()
    frame = {
        "type": "chat",
        "id": "m",
        "conversation_id": conversation_id or model,
        "text": text,
        "model": model,
    }
    ws.write_message(json.dumps(frame))
    frames = await _read_turn(ws, "m")
    ws.close()
    return frames


@pytest.fixture
def read_turn() -> Any:
    """Reads one turn's frames from a socket, up to and including its done or error frame."""
    return _read_turn


@pytest.fixture
def history(jp_serverapp: Any) -> Any:
    """A conversation as stored: (role, content) in order, read straight from the database."""

    async def read(conversation_id: str) -> list[tuple[str, str]]:
        store = jp_serverapp.web_app.settings["rubberduck_jupyter"].conversations
        return [(m.role, m.content) for m in await store.messages(conversation_id)]

    return read


async def completion_socket(jp_ws_fetch: Any, **kwargs: Any) -> Any:
    """The inline-completion WebSocket, past its hello frame (which must say the protocol
    version and the completion status)."""
    ws = await jp_ws_fetch("rubberduck", "api", "complete", "ws", **kwargs)
    hello = json.loads(await asyncio.wait_for(ws.read_message(), WAIT_S))
    assert hello["type"] == "hello" and hello["protocol_version"] == 1, hello
    assert set(hello["completion"]) >= {"enabled", "model", "fim", "reason"}, hello
    return ws
