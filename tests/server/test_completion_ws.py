"""Inline completions through a real server and the fake provider: the FIM and chat paths,
context and redaction, the cache, cancellation, bad frames, auth, status."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import tornado.httpclient
from server_fixtures import completion_socket, eventually

SECRET = "sk-proj-" + "Z9y8X7w6" * 4


@pytest.fixture
def rubberduck_config(fake_llm: Any, direct_openai_streaming: bool) -> dict[str, Any]:
    # Each test on both FIM paths: the direct /completions stream and litellm's
    # text_completion.
    return {
        "model": "openai/fake-model",
        "api_base": fake_llm.base_url,
        "api_key": "sk-test-key",
        "ollama_url": "http://127.0.0.1:9",
        "completion_model": "openai/fake-coder",
        "completion_fim": "true",
        "direct_openai_streaming": direct_openai_streaming,
    }


def _complete(msg_id: str, prefix: str, suffix: str = "", **extra: Any) -> str:
    frame = {
        "type": "complete",
        "v": 1,
        "id": msg_id,
        "path": "analysis/sales.ipynb",
        "language": "python",
        "prefix": prefix,
        "suffix": suffix,
        "cells": [],
        "variables": [],
        "multiline": True,
        "max_lines": 5,
    }
    frame.update(extra)
    return json.dumps(frame)


async def read_request(ws: Any, msg_id: str) -> list[dict[str, Any]]:
    """Frames of one request up to the one that ends it."""
    frames: list[dict[str, Any]] = []
    while True:
        raw = await asyncio.wait_for(ws.read_message(), 30)
        assert raw is not None, "socket closed before the request ended"
        frame = json.loads(raw)
        if frame.get("id") != msg_id:
            continue
        frames.append(frame)
        if frame["type"] in ("completion.done", "completion.error", "completion.cancelled"):
            return frames


def completion_requests(fake: Any) -> list[dict[str, Any]]:
    return [r for r in fake.requests if r["_fake"]["path"].endswith("/completions")]


async def test_status_names_the_model_and_no_key(jp_fetch: Any) -> None:
    response = await jp_fetch("rubberduck", "api", "complete", "status")
    body = json.loads(response.body)
    assert body == {"enabled": True, "model": "openai/fake-coder", "fim": True, "reason": None}
    assert "sk-test-key" not in response.body.decode()


async def test_fim_path_sends_prefix_suffix_cells_and_variables_without_secrets(
    jp_ws_fetch: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["sum()\n"])
    ws = await completion_socket(jp_ws_fetch)
    cells = [
        {"cell_type": "code", "source": "totals = df.groupby('region')"},
        {"cell_type": "markdown", "source": "Sales by region"},
        {"cell_type": "code", "source": f"import pandas as pd\nclient_key = '{SECRET}'"},
    ]
    variables = [{"name": "df", "type": "DataFrame", "shape": "(100, 3)"}]
    ws.write_message(
        _complete("c1", "result = totals.", "\nprint(result)", cells=cells, variables=variables)
    )
    frames = await read_request(ws, "c1")
    done = frames[-1]
    assert done == {"type": "completion.done", "id": "c1", "text": "sum()", "cached": False}
    assert "".join(f["text"] for f in frames if f["type"] == "completion.chunk") == "sum()\n"
    (sent,) = fake_llm.requests
    assert sent["_fake"]["path"] == "/v1/completions"
    assert sent["model"] == "fake-coder" and sent["stream"] is True
    assert sent["prompt"].endswith("result = totals.")
    assert sent["suffix"] == "\nprint(result)"
    prompt = sent["prompt"]
    # Earlier cells in notebook order (oldest first), the nearest right before the code.
    assert (
        prompt.index("import pandas")
        < prompt.index("Sales by region")
        < prompt.index("totals = df.groupby")
    )
    assert "df: DataFrame (100, 3)" in prompt
    assert "analysis/sales.ipynb" in prompt
    assert SECRET not in json.dumps(sent)
    assert "[REDACTED]" in prompt
    ws.close()


async def test_same_prefix_and_typing_into_a_completion_are_served_from_cache(
    jp_ws_fetch: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["read_csv('sales.csv')"])
    ws = await completion_socket(jp_ws_fetch)
    ws.write_message(_complete("a", "df = pd."))
    first = (await read_request(ws, "a"))[-1]
    assert first["text"] == "read_csv('sales.csv')" and first["cached"] is False
    ws.write_message(_complete("b", "df = pd."))
    again = await read_request(ws, "b")
    assert again == [
        {"type": "completion.done", "id": "b", "text": "read_csv('sales.csv')", "cached": True}
    ]
    # The user typed "read_" of the ghost text: the rest of it, no new request.
    ws.write_message(_complete("c", "df = pd.read_"))
    typed = (await read_request(ws, "c"))[-1]
    assert typed["text"] == "csv('sales.csv')" and typed["cached"] is True
    assert len(completion_requests(fake_llm)) == 1
    ws.close()


async def test_cancel_closes_the_upstream_stream(jp_ws_fetch: Any, fake_llm: Any) -> None:
    # The fake sends a piece, then holds the stream open until the client hangs up.
    fake_llm.update_settings({"stall_seconds": 60})
    fake_llm.add_faults(["stall"])
    fake_llm.set_replies(["for row in rows:\n    total += row\n"])
    ws = await completion_socket(jp_ws_fetch)
    ws.write_message(_complete("slow", "total = 0\n"))
    frames = [json.loads(await asyncio.wait_for(ws.read_message(), 30))]
    assert frames[0]["type"] == "completion.chunk"
    assert fake_llm.active_streams == 1
    ws.write_message(json.dumps({"type": "cancel", "id": "slow"}))
    frames = await read_request(ws, "slow")
    assert frames[-1] == {"type": "completion.cancelled", "id": "slow"}

    async def closed() -> bool:
        return fake_llm.active_streams == 0

    await eventually(closed, "the fake's open-stream count to drop to 0")
    # A new request on the same socket also cancels the one still running.
    fake_llm.add_faults(["stall"])
    fake_llm.set_replies(["x = 1\ny = 2\n", "z = 3"])
    ws.write_message(_complete("one", "a = 0\n"))
    assert json.loads(await asyncio.wait_for(ws.read_message(), 30))["type"] == ("completion.chunk")
    ws.write_message(_complete("two", "b = 0\n"))
    assert (await read_request(ws, "one"))[-1]["type"] == "completion.cancelled"
    assert (await read_request(ws, "two"))[-1]["text"] == "z = 3"
    await eventually(closed, "the first stream to close")
    # A cancel right behind its request (one read, before the request has started).
    ws.write_message(_complete("quick", "c = 0\n"))
    ws.write_message(json.dumps({"type": "cancel", "id": "quick"}))
    frames = await read_request(ws, "quick")
    assert {f["type"] for f in frames[:-1]} <= {"completion.chunk"}
    assert frames[-1]["type"] in ("completion.cancelled", "completion.done")
    ws.close()


async def test_bad_frames_get_a_clear_error_and_the_socket_stays(
    jp_ws_fetch: Any, fake_llm: Any
) -> None:
    ws = await completion_socket(jp_ws_fetch)
    ws.write_message("{not json")
    error = json.loads(await ws.read_message())
    assert error["type"] == "completion.error" and error["code"] == "bad_json"
    ws.write_message(json.dumps({"type": "complete", "id": "x", "prefix": 3}))
    error = json.loads(await ws.read_message())
    assert error == {
        "type": "completion.error",
        "id": "x",
        "code": "bad_frame",
        "message": "'prefix' must be a string",
        "retry_after": None,
    }
    ws.write_message(_complete("y", "a = ", max_lines=0))
    assert json.loads(await ws.read_message())["code"] == "bad_frame"
    ws.write_message(json.dumps({"type": "chat", "id": "z"}))
    assert json.loads(await ws.read_message())["code"] == "unknown_type"
    fake_llm.set_replies(["1"])
    ws.write_message(_complete("ok", "a = "))
    assert (await read_request(ws, "ok"))[-1]["text"] == "1"
    ws.close()


async def test_socket_and_status_refuse_unauthenticated_requests(
    jp_fetch: Any, jp_ws_fetch: Any
) -> None:
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_ws_fetch("rubberduck", "api", "complete", "ws", headers={"Authorization": ""})
    assert info.value.code == 403
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("rubberduck", "api", "complete", "status", headers={"Authorization": ""})
    assert info.value.code == 403


async def test_socket_refuses_cross_origin_cookie_requests(
    jp_fetch: Any, jp_ws_fetch: Any, jp_http_port: int
) -> None:
    response = await jp_fetch("api", "status")
    cookies = response.headers.get_list("Set-Cookie")
    cookie = next(c.split(";", 1)[0] for c in cookies if c.startswith("username-"))
    host = f"127.0.0.1:{jp_http_port}"
    headers = {"Authorization": "", "Host": host, "Cookie": cookie}
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_ws_fetch(
            "rubberduck",
            "api",
            "complete",
            "ws",
            headers={**headers, "Origin": "http://evil.example"},
        )
    assert info.value.code == 403
    ws = await jp_ws_fetch(
        "rubberduck", "api", "complete", "ws", headers={**headers, "Origin": f"http://{host}"}
    )
    ws.close()


@pytest.mark.parametrize(("fault", "code"), [("429", "rate_limited"), ("500", "provider_error")])
async def test_provider_failures_end_in_one_error_frame(
    jp_ws_fetch: Any, fake_llm: Any, fault: str, code: str
) -> None:
    fake_llm.add_faults([fault])
    ws = await completion_socket(jp_ws_fetch)
    ws.write_message(_complete("f", "a = "))
    frames = await read_request(ws, "f")
    assert [f["type"] for f in frames] == ["completion.error"]
    assert frames[0]["code"] == code and "sk-test-key" not in frames[0]["message"]
    assert len(completion_requests(fake_llm)) == 1  # no retry: the next keystroke is one
    ws.close()
