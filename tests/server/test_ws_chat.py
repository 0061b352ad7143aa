"""The chat WebSocket against a real fake provider on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest


async def _open(jp_ws_fetch: Any) -> Any:
    ws = await jp_ws_fetch("rubberduck", "ws")
    hello = json.loads(await ws.read_message())
    assert hello["type"] == "hello"
    return ws, hello


def _chat(msg_id: str, text: str, **extra: Any) -> str:
    frame = {"type": "chat", "v": 1, "id": msg_id, "conversation_id": "conv-1", "text": text}
    frame.update(extra)
    return json.dumps(frame)


async def test_hello_names_the_configured_model(jp_ws_fetch: Any) -> None:
    ws, hello = await _open(jp_ws_fetch)
    assert hello["protocol_version"] == 1
    assert hello["model"] == {"configured": True, "name": "openai/fake-model"}
    assert hello["models"] == ["openai/fake-model"]
    ws.close()


async def test_chat_streams_model_output_in_order(
    jp_ws_fetch: Any, fake_llm: Any, read_turn: Any
) -> None:
    reply = "Use `df.groupby('key').sum()` to total each group, then sort the result."
    fake_llm.set_replies([reply])
    ws, _ = await _open(jp_ws_fetch)
    ws.write_message(_chat("m1", "How do I sum per group?"))
    frames = await read_turn(ws, "m1")
    chunks = [f for f in frames if f["type"] == "chunk"]
    assert len(chunks) > 1, "the answer should arrive in several chunks"
    assert [c["seq"] for c in chunks] == list(range(len(chunks)))
    assert "".join(c["text"] for c in chunks) == reply
    done = frames[-1]
    assert done["type"] == "done"
    assert done["finish_reason"] == "stop"
    assert done["usage"]["total_tokens"] > 0
    ws.close()


async def test_context_reaches_the_model_with_secrets_redacted(
    jp_ws_fetch: Any, fake_llm: Any, read_turn: Any
) -> None:
    secret = "sk-proj-" + "A1b2C3d4" * 4
    context = {
        "notebook_path": "analysis/sales.ipynb",
        "active_cell": f"client = OpenAI(api_key='{secret}')\nresult = client.models.list()",
    }
    ws, _ = await _open(jp_ws_fetch)
    ws.write_message(_chat("m1", "Why does this fail?", context=context))
    frames = await read_turn(ws, "m1")
    assert frames[-1]["type"] == "done"
    sent = json.dumps(fake_llm.requests[-1]["messages"])
    assert "analysis/sales.ipynb" in sent
    assert "client.models.list()" in sent
    assert secret not in sent
    assert "[REDACTED]" in sent
    ws.close()


async def test_second_turn_carries_the_first(
    jp_ws_fetch: Any, fake_llm: Any, read_turn: Any
) -> None:
    fake_llm.set_replies(["Pandas is a dataframe library.", "It was created by Wes McKinney."])
    ws, _ = await _open(jp_ws_fetch)
    ws.write_message(_chat("m1", "What is pandas?"))
    await read_turn(ws, "m1")
    ws.write_message(_chat("m2", "Who wrote it?"))
    await read_turn(ws, "m2")
    messages = fake_llm.requests[-1]["messages"]
    contents = [m["content"] for m in messages]
    assert contents[1:] == [
        "What is pandas?",
        "Pandas is a dataframe library.",
        "Who wrote it?",
    ]
    ws.close()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        (json.dumps({"type": "shout", "id": "x"}), "unknown_type"),
        (json.dumps({"type": "chat", "id": "x", "conversation_id": "c"}), "bad_frame"),
        (json.dumps({"type": "chat", "id": "x", "conversation_id": "c", "text": 5}), "bad_frame"),
        (
            json.dumps({"type": "chat", "id": "x", "conversation_id": "c", "text": "hi", "v": 9}),
            "unsupported_version",
        ),
        (
            json.dumps(
                {"type": "chat", "id": "x", "conversation_id": "c", "text": "hi", "context": 3}
            ),
            "bad_frame",
        ),
        (json.dumps({"type": "cancel", "id": "nothing-running"}), "unknown_id"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_keeps_working(
    jp_ws_fetch: Any, fake_llm: Any, read_turn: Any, raw: str, code: str
) -> None:
    ws, _ = await _open(jp_ws_fetch)
    ws.write_message(raw)
    error = json.loads(await asyncio.wait_for(ws.read_message(), 10))
    assert error["type"] == "error"
    assert error["code"] == code
    assert error["message"]
    fake_llm.set_replies(["still here"])
    ws.write_message(_chat("after", "ping"))
    frames = await read_turn(ws, "after")
    assert frames[-1]["type"] == "done"
    assert "".join(f["text"] for f in frames if f["type"] == "chunk") == "still here"
    ws.close()


async def test_oversized_and_binary_frames_are_refused_politely(
    jp_ws_fetch: Any, fake_llm: Any, read_turn: Any
) -> None:
    ws, _ = await _open(jp_ws_fetch)
    ws.write_message(_chat("big", "x" * (300 * 1024)))
    error = json.loads(await asyncio.wait_for(ws.read_message(), 10))
    assert (error["type"], error["code"]) == ("error", "frame_too_large")
    ws.write_message(b"\xff\xfe\x00garbage", binary=True)
    error = json.loads(await asyncio.wait_for(ws.read_message(), 10))
    assert (error["type"], error["code"]) == ("error", "bad_json")
    ws.write_message(_chat("after", "ping"))
    frames = await read_turn(ws, "after")
    assert frames[-1]["type"] == "done"
    ws.close()


async def test_cancel_stops_a_streaming_answer(
    jp_ws_fetch: Any, fake_llm: Any, read_turn: Any
) -> None:
    fake_llm.chunk_delay = 0.05
    fake_llm.set_replies(["word " * 400])
    try:
        ws, _ = await _open(jp_ws_fetch)
        ws.write_message(_chat("long", "Tell me everything."))
        route = json.loads(await asyncio.wait_for(ws.read_message(), 15))
        assert (route["type"], route["engine"]) == ("route", "simple")
        first = json.loads(await asyncio.wait_for(ws.read_message(), 15))
        if first["type"] == "notice":  # no index in this test: said once, before the text
            assert first["code"] == "no_index"
            first = json.loads(await asyncio.wait_for(ws.read_message(), 15))
        assert first["type"] == "chunk"
        ws.write_message(json.dumps({"type": "cancel", "id": "long"}))
        frames = await read_turn(ws, "long", timeout=5)
        assert frames[-1]["type"] == "done"
        assert frames[-1]["finish_reason"] == "cancelled"
        streamed = first["text"] + "".join(f["text"] for f in frames if f["type"] == "chunk")
        assert len(streamed) < len("word " * 400)
    finally:
        fake_llm.chunk_delay = 0
    ws.close()


async def test_duplicate_running_id_is_refused(
    jp_ws_fetch: Any, fake_llm: Any, read_turn: Any
) -> None:
    fake_llm.chunk_delay = 0.02
    try:
        ws, _ = await _open(jp_ws_fetch)
        ws.write_message(_chat("same", "one"))
        ws.write_message(_chat("same", "two"))
        # The refusal is sent at once, so it ends the frames read for this id.
        frames = await read_turn(ws, "same")
        codes = [f.get("code") for f in frames if f["type"] == "error"]
        assert codes == ["duplicate_id"]
    finally:
        fake_llm.chunk_delay = 0
    ws.close()


@pytest.mark.parametrize(
    ("faults", "code"),
    [
        (["500", "500"], "provider_error"),
        (["429", "429"], "rate_limited"),
        (["401"], "provider_auth"),
    ],
)
async def test_provider_faults_end_in_typed_errors(
    jp_ws_fetch: Any, fake_llm: Any, read_turn: Any, faults: list[str], code: str
) -> None:
    # One model, no fallback: after its retries the user gets the typed error.
    fake_llm.retry_after_seconds = 0.1
    fake_llm.add_faults(faults)
    ws, _ = await _open(jp_ws_fetch)
    ws.write_message(_chat("m1", "hello"))
    frames = await read_turn(ws, "m1")
    assert frames[-1]["type"] == "error"
    assert frames[-1]["code"] == code
    assert "sk-test-key" not in frames[-1]["message"]
    ws.close()


async def test_stream_dropped_midway_keeps_partial_text_and_says_so(
    jp_ws_fetch: Any, fake_llm: Any, read_turn: Any
) -> None:
    fake_llm.add_faults(["drop"])
    ws, _ = await _open(jp_ws_fetch)
    ws.write_message(_chat("m1", "hello"))
    frames = await read_turn(ws, "m1")
    assert any(f["type"] == "chunk" for f in frames)
    assert frames[-1]["type"] == "error"
    assert frames[-1]["code"] == "incomplete"
    ws.close()
