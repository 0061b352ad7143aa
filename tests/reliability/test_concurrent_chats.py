"""50 WebSocket chats at once against one real server: no chunk lost, duplicated or out of
order (sequence numbers contiguous per turn), each answer exactly the text the fake provider
sent, exactly one `done` per turn, and the stored answer equal to what was streamed."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import pytest

from rubberduck_jupyter.testing.fake_llm import echo_reply

# Each test here takes 10-30 s on 2 cores; a hang fails that test, not the whole run.
pytestmark = pytest.mark.timeout(90)

CHATS = 50
TURNS_PER_CHAT = 2  # sequential on each socket: the second turn carries the first as history
DEADLINE_S = 60.0


@pytest.fixture
def rubberduck_config(fake_llm: Any) -> dict[str, Any]:
    # A small delay between chunks so the 50 streams really interleave.
    fake_llm.update_settings({"chunk_delay": 0.005})
    return {
        "model": "openai/fake-model",
        "api_base": fake_llm.base_url,
        "api_key": "sk-test-key",
        "breaker_failure_threshold": 1000,
    }


def _question(chat: int, turn: int) -> str:
    # ~25 words, unique per chat and turn, so each echo is ~27 chunks and tells whose it is.
    return f"chat{chat} turn{turn} " + " ".join(f"w{chat}x{turn}x{i}" for i in range(23))


async def _chat(jp_ws_fetch: Any, chat: int) -> dict[str, list[dict[str, Any]]]:
    """Every frame the socket received, by turn id, for this chat's turns in order."""
    ws = await jp_ws_fetch("rubberduck", "ws")
    hello = json.loads(await asyncio.wait_for(ws.read_message(), 30))
    assert hello["type"] == "hello"
    by_turn: dict[str, list[dict[str, Any]]] = {}
    try:
        for turn in range(TURNS_PER_CHAT):
            turn_id = f"c{chat}-t{turn}"
            frame = {
                "type": "chat",
                "id": turn_id,
                "conversation_id": f"conc-{chat}",
                "text": _question(chat, turn),
                "engine": "simple",
            }
            ws.write_message(json.dumps(frame))
            for _ in range(500):  # bounded: a turn here is ~30 frames
                raw = await asyncio.wait_for(ws.read_message(), 30)
                assert raw is not None, "socket closed mid-turn"
                got = json.loads(raw)
                by_turn.setdefault(str(got.get("id")), []).append(got)
                if got.get("id") == turn_id and got["type"] in {"done", "error"}:
                    break
        # Anything arriving after the last done would be a duplicate or a stray frame.
        try:
            extra = await asyncio.wait_for(ws.read_message(), 0.3)
        except TimeoutError:
            extra = None
        if extra is not None:
            got = json.loads(extra)
            by_turn.setdefault(str(got.get("id")), []).append(got)
    finally:
        ws.close()
    return by_turn


def _check_turn(frames: list[dict[str, Any]]) -> tuple[bool, str]:
    """(ok, streamed text): one route first, chunks 0..n-1 in order, one done last."""
    kinds = [f["type"] for f in frames]
    chunks = [f for f in frames if f["type"] == "chunk"]
    ok = (
        kinds[:1] == ["route"]
        and kinds[-1:] == ["done"]
        and kinds.count("done") == 1
        and "error" not in kinds
        and [c["seq"] for c in chunks] == list(range(len(chunks)))
        and len(chunks) > 0
    )
    return ok, "".join(c["text"] for c in chunks)


async def test_fifty_concurrent_chats_lose_and_duplicate_nothing(
    jp_ws_fetch: Any, fake_llm: Any, history: Any, cases: Any
) -> None:
    started = time.monotonic()
    results = await asyncio.wait_for(
        asyncio.gather(*(_chat(jp_ws_fetch, chat) for chat in range(CHATS))), DEADLINE_S
    )
    elapsed = time.monotonic() - started

    streamed: list[str] = []
    tried = correct = 0
    for chat, by_turn in enumerate(results):
        expected_ids = {f"c{chat}-t{turn}" for turn in range(TURNS_PER_CHAT)}
        assert set(by_turn) == expected_ids, f"frames of other turns on chat {chat}"
        stored = await history(f"conc-{chat}")
        for turn in range(TURNS_PER_CHAT):
            tried += 1
            ok, text = _check_turn(by_turn[f"c{chat}-t{turn}"])
            streamed.append(text)
            # The reply is the fake's echo of this very question (its prompt's last user
            # message), and the store holds exactly what was streamed.
            ok = ok and text.startswith(f"Echo: chat{chat} turn{turn} ")
            ok = ok and stored[2 * turn : 2 * turn + 2] == [
                ("user", _question(chat, turn)),
                ("assistant", text),
            ]
            correct += ok
    # Every reply the fake sent reached exactly one turn, and nothing else was streamed.
    sent = Counter(
        echo_reply(r["messages"])
        for r in fake_llm.requests
        if r["_fake"]["path"].endswith("/chat/completions")
    )
    tried += 1
    correct += sent == Counter(streamed)
    cases.add(tried, correct)
    assert correct == tried, f"{tried - correct} of {tried} checks failed"
    assert elapsed < DEADLINE_S
