"""One 100,000-character message through the complex engine, in a real server against the
fake provider: no step's prompt (nor the summary the message forces) grows past its budget,
and the turn's memory is given back when it ends: no Turn object, no string of the
message's size left anywhere in the process, RSS back within a bound.

Before the bound, each of the five steps carried the message and every earlier answer
verbatim; with long answers the prompts doubled step by step and the server went from
388 MB to 3.35 GB RSS, which it kept after the turn.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from typing import Any

import psutil

from rubberduck_jupyter.context.memory import SUMMARY_REQUEST_CHARS
from rubberduck_jupyter.engines.base import Turn
from rubberduck_jupyter.engines.complex import STEP_PROMPTS, STEP_QUESTION_CHARS

MESSAGE_CHARS = 100_000
# Long step answers are what made the prompts double; 60k characters is past every per-step
# clip. Few spaces, so the fake streams each in ~60 chunks and the test stays quick.
STEP_ANSWER = ("requirement " + "x" * 988) * 60
# The system prompt, preferences and the framing of the one user message, on top of the
# engine's bound on a step's question (a fresh conversation carries no history).
PROMPT_OVERHEAD_CHARS = 4_000
# What one turn may leave behind after gc: SQLite's page cache, the stored answer in the
# store's caches, allocator slack. The unbounded turn kept ~3 GB.
RSS_GROWTH_BOUND_MB = 150
TURN_TIMEOUT_S = 120
# For the summary to be stored and litellm's logging threads to finish after the last call.
SETTLE_S = 1.0


def _message() -> str:
    words = "the sales table has one row per order and I need monthly totals per region "
    return (words * (MESSAGE_CHARS // len(words) + 1))[:MESSAGE_CHARS]


def _prompt_chars(request: dict[str, Any]) -> int:
    return sum(len(m.get("content") or "") for m in request["messages"])


async def _turn(ws: Any, msg_id: str, text: str) -> list[dict[str, Any]]:
    frame = {
        "type": "chat",
        "v": 1,
        "id": msg_id,
        "conversation_id": f"conv-{msg_id}",
        "text": text,
        "engine": "complex",
    }
    ws.write_message(json.dumps(frame))
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(TURN_TIMEOUT_S):
        while True:
            raw = await ws.read_message()
            assert raw is not None, "socket closed before the turn ended"
            got = json.loads(raw)
            if got.get("id") != msg_id:
                continue
            frames.append(got)
            if got["type"] in {"done", "error"}:
                return frames


def _long_strings(min_chars: int) -> set[int]:
    """Ids of the strings of at least `min_chars` that any container in the process holds.

    Strings are not tracked by the gc, so they are found as referents of what is: a
    message or a prompt kept by a cache, a log record or litellm's logging objects shows.
    """
    found: set[int] = set()
    for obj in gc.get_objects():
        for ref in gc.get_referents(obj):
            if isinstance(ref, str) and len(ref) >= min_chars:
                found.add(id(ref))
    return found


def _live_turns() -> int:
    # A finished Turn sits in a reference cycle until the cyclic gc runs: collect first.
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, Turn))


def _rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


async def test_long_message_keeps_prompts_and_memory_bounded(
    jp_ws_fetch: Any, fake_llm: Any, cases: Any
) -> None:
    ws = await jp_ws_fetch("rubberduck", "ws")
    assert json.loads(await ws.read_message())["type"] == "hello"

    # Warm up: litellm's import, the engine's lazy imports, the store's first pages.
    fake_llm.set_replies(["short"] * len(STEP_PROMPTS))
    warm = await _turn(ws, "warm", "Design a small cache.")
    assert warm[-1]["type"] == "done"
    fake_llm.reset()
    before = _rss_mb()
    # Long strings that exist before the turn (litellm's bundled tokenizer JSON, this
    # module's constants) are not the turn's.
    long_before = _long_strings(MESSAGE_CHARS // 2)

    fake_llm.set_replies([STEP_ANSWER] * len(STEP_PROMPTS))
    started = time.monotonic()
    frames = await _turn(ws, "long", _message())
    took = time.monotonic() - started
    assert frames[-1]["type"] == "done", frames[-1]
    # After `done` the server folds the long message into the conversation's summary (one
    # more model call: it overflows the memory window). Wait for that call to end without
    # walking the gc meanwhile: gc.get_objects() while other threads build tuples can break
    # them. Polled (nothing signals the end of post-turn work), bounded by count and time.
    for _ in range(int(TURN_TIMEOUT_S / 0.2)):
        if len(fake_llm.requests) > len(STEP_PROMPTS) and fake_llm.active_streams == 0:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(SETTLE_S)
    assert cases.check(_live_turns() == 0), "a Turn outlived its turn"
    prompts = [_prompt_chars(r) for r in fake_llm.requests]
    # Drop the fake's copies of the requests before measuring: they live in this process.
    fake_llm.reset()
    ws.close()
    after = _rss_mb()
    kept = _long_strings(MESSAGE_CHARS // 2) - long_before

    bound = max(STEP_QUESTION_CHARS, SUMMARY_REQUEST_CHARS) + PROMPT_OVERHEAD_CHARS
    # Five steps, and the summary the 100k message forces (it overflows the memory window).
    assert cases.check(len(prompts) == len(STEP_PROMPTS) + 1), prompts
    for chars in prompts:
        assert cases.check(chars <= bound), f"a step prompt of {chars} > {bound} characters"
    # Nothing still holds the message or a step's prompt once the turn has ended.
    assert cases.check(not kept), f"{len(kept)} strings of ≥50k characters outlived the turn"
    growth = after - before
    assert cases.check(growth < RSS_GROWTH_BOUND_MB), (
        f"RSS grew {growth:.0f} MB over the turn ({before:.0f} → {after:.0f} MB)"
    )
    print(
        f"largest prompt {max(prompts)} chars (bound {bound}); RSS {before:.0f} → {after:.0f} MB;"
        f" turn {took:.1f} s"
    )


def test_response_cache_keeps_digests_and_no_huge_answers(cases: Any) -> None:
    from rubberduck_jupyter.llm.cache import ResponseCache
    from rubberduck_jupyter.protocol import Usage

    cache = ResponseCache(max_entries=4, max_text_chars=1_000)
    key = ResponseCache.key("m", [{"role": "user", "content": "x" * MESSAGE_CHARS}])
    assert cases.check(len(key) == 64)  # a digest, not the 100k prompt
    cache.put(key, "y" * 1_001, "m", Usage())
    assert cases.check(cache.get(key) is None)
    cache.put(key, "short answer", "m", Usage())
    hit = cache.get(key)
    assert cases.check(hit is not None and hit.text == "short answer")
