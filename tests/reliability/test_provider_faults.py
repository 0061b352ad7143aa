"""Hundreds of injected provider faults through a real server, litellm and the fake provider:
every user message is kept in history, and every turn ends in exactly one `done` or one
typed `error` (a protocol ErrorCode, never `internal`).

Faults are queued on the fake (one per provider request, in arrival order), so which turn
meets which fault depends on timing; the checks hold for any assignment. Half the turns use
`main`, which fails over to `backup`; the other half use `solo`, which has no fallback.
Timeouts are small so a stall or a slow first byte costs a fraction of a second.

A second test pins each fault to a model (the fake reads `fault-<MODE>` in the model name),
with and without a fallback, and checks the exact outcome each must end in.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import pytest

from rubberduck_jupyter.protocol import ErrorCode
from rubberduck_jupyter.testing.fake_llm import FAULT_MODES

# Each test here takes 10-30 s on 2 cores; a hang fails that test, not the whole run.
pytestmark = pytest.mark.timeout(90)

FAULTS = ("429", "500", "503", "drop", "stall", "malformed", "no_done", "slow_first_byte")
N_FAULTS = 320  # 40 of each
WORKERS = 12  # sockets, each running its turns one after another
MAX_TURNS = 400  # bound: the queue drains well before this (each turn takes >= 1 fault)
DEADLINE_S = 75.0
TYPED = {str(code) for code in ErrorCode} - {str(ErrorCode.INTERNAL)}


@pytest.fixture
def rubberduck_config(fake_llm: Any) -> dict[str, Any]:
    fake_llm.update_settings(
        {
            "retry_after_seconds": 0.05,
            "slow_first_byte_seconds": 0.5,  # longer than first_token_timeout: a timeout
            "stall_seconds": 0.5,  # longer than idle_timeout: cut off mid-answer
        }
    )

    def entry(name: str, model: str) -> dict[str, Any]:
        params = {"model": model, "api_base": fake_llm.base_url, "api_key": "sk-fault-key"}
        return {"model_name": name, "litellm_params": params}

    return {
        "models": [
            entry("main", "openai/fake-main"),
            entry("backup", "openai/fake-backup"),
            entry("solo", "openai/fake-solo"),
        ],
        "fallbacks": {"main": ["backup"]},
        "default_model": "main",
        "first_token_timeout": 0.3,
        "idle_timeout": 0.25,
        "retry_base_delay": 0.01,
        "max_retry_after": 1.0,
        "max_attempts": 2,
        # Breakers would turn most of the faults into fast "unavailable" answers; this suite
        # is about each fault's own handling (tests/server/test_llm_faults.py covers them).
        "breaker_failure_threshold": 100_000,
    }


async def _worker(
    jp_ws_fetch: Any,
    worker: int,
    turns: list[tuple[str, str, str]],
    frames: dict[str, list[dict[str, Any]]],
    stop: asyncio.Event,
) -> None:
    ws = await jp_ws_fetch("rubberduck", "ws")
    await asyncio.wait_for(ws.read_message(), 30)  # hello
    try:
        for n in range(MAX_TURNS):
            if stop.is_set():
                return
            turn_id = f"w{worker}-{n}"
            model = "main" if n % 2 == 0 else "solo"
            text = f"question {turn_id} about groupby"
            conversation = f"faults-{worker}"
            turns.append((turn_id, conversation, text))
            ws.write_message(
                json.dumps(
                    {
                        "type": "chat",
                        "id": turn_id,
                        "conversation_id": conversation,
                        "text": text,
                        "model": model,
                        "engine": "simple",
                    }
                )
            )
            for _ in range(500):  # bounded: a turn here is a few dozen frames
                raw = await asyncio.wait_for(ws.read_message(), 20)
                assert raw is not None, "socket closed mid-turn"
                got = json.loads(raw)
                frames.setdefault(str(got.get("id")), []).append(got)
                if got.get("id") == turn_id and got["type"] in {"done", "error"}:
                    break
        # A late frame after a turn's end would be a second done or error.
        try:
            raw = await asyncio.wait_for(ws.read_message(), 0.3)
        except TimeoutError:
            raw = None
        if raw is not None:
            got = json.loads(raw)
            frames.setdefault(str(got.get("id")), []).append(got)
    finally:
        ws.close()


async def test_hundreds_of_provider_faults_end_every_turn_cleanly(
    jp_ws_fetch: Any, fake_llm: Any, history: Any, cases: Any
) -> None:
    assert set(FAULTS) <= set(FAULT_MODES)
    faults = [FAULTS[i % len(FAULTS)] for i in range(N_FAULTS)]
    random.Random(9).shuffle(faults)
    fake_llm.add_faults(faults)
    stop = asyncio.Event()
    turns: list[tuple[str, str, str]] = []
    frames: dict[str, list[dict[str, Any]]] = {}

    async def watch_queue() -> None:
        # Once every fault was taken, let the workers finish their current turn and stop.
        for _ in range(int(DEADLINE_S * 20)):
            if not fake_llm.pending_faults:
                stop.set()
                return
            await asyncio.sleep(0.05)

    started = time.monotonic()
    await asyncio.wait_for(
        asyncio.gather(
            watch_queue(),
            *(_worker(jp_ws_fetch, w, turns, frames, stop) for w in range(WORKERS)),
        ),
        DEADLINE_S,
    )
    elapsed = time.monotonic() - started
    applied = [r["_fake"]["fault"] for r in fake_llm.requests if r["_fake"]["fault"]]
    assert len(applied) == N_FAULTS, "every queued fault reached a request"

    outcomes: dict[str, int] = {}
    tried = correct = 0
    bad: list[str] = []
    stored = {conv: await history(conv) for conv in {c for _, c, _ in turns}}
    for turn_id, conversation, text in turns:
        tried += 1
        got = frames.get(turn_id, [])
        ends = [f for f in got if f["type"] in {"done", "error"}]
        end = ends[-1] if ends else {"type": "none"}
        outcome = end["type"] if end["type"] != "error" else end["code"]
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        ok = len(ends) == 1 and got[-1] is ends[0]
        ok = ok and (end["type"] == "done" or end.get("code") in TYPED)
        chunks = [f for f in got if f["type"] == "chunk"]
        ok = ok and [c["seq"] for c in chunks] == list(range(len(chunks)))
        # The question is in history, followed somewhere by its answer or error record.
        ok = ok and ("user", text) in stored[conversation]
        if not ok:
            bad.append(f"{turn_id}: {[f['type'] for f in got]} {end}")
        correct += ok
    # Every question was stored exactly once, and each has exactly one assistant record.
    for conversation, rows in stored.items():
        tried += 1
        asked = [t for _, c, t in turns if c == conversation]
        ok = [content for role, content in rows if role == "user"] == asked
        ok = ok and sum(role == "assistant" for role, _ in rows) == len(asked)
        if not ok:
            bad.append(f"{conversation}: history {rows[:6]}...")
        correct += ok
    cases.add(tried, correct)
    print(f"{len(turns)} turns, {N_FAULTS} faults in {elapsed:.1f} s: {outcomes}")
    assert not bad, "\n".join(bad[:10])
    assert len(turns) >= N_FAULTS // 4, "the faults were spread over too few turns"
    assert outcomes.get("done", 0) > 0 and len(outcomes) > 2, outcomes


# What each fault must end in, by whether the model has a healthy fallback. Faults before
# the first token are retried, then failed over; after content has streamed there is no
# failover (the user has read part of an answer), so those end `incomplete` either way.
EXPECTED: dict[str, tuple[set[str], set[str]]] = {
    # fault: (outcomes with a fallback, outcomes without)
    "429": ({"done"}, {"rate_limited"}),
    "500": ({"done"}, {"provider_error", "provider_unavailable"}),
    "503": ({"done"}, {"provider_error", "provider_unavailable"}),
    "slow_first_byte": ({"done"}, {"timeout"}),
    "drop": ({"incomplete"}, {"incomplete"}),
    "stall": ({"incomplete"}, {"incomplete"}),
    "malformed": ({"incomplete"}, {"incomplete"}),
    "no_done": ({"incomplete"}, {"incomplete"}),
}
TURNS_PER_MODEL = 6


@pytest.fixture
def fault_models(rubberduck_config: dict[str, Any], fake_llm: Any) -> list[str]:
    """Per fault, a model that always meets it (the fake reads `fault-<MODE>` in the model
    name), once with the healthy `backup` as its fallback and once alone."""
    names = []
    for fault in FAULTS:
        for fallback in (True, False):
            name = f"{fault}-{'fb' if fallback else 'alone'}"
            params = {
                "model": f"openai/fake-fault-{fault}-{name}",
                "api_base": fake_llm.base_url,
                "api_key": "sk-fault-key",
            }
            rubberduck_config["models"].append({"model_name": name, "litellm_params": params})
            if fallback:
                rubberduck_config["fallbacks"][name] = ["backup"]
            names.append(name)
    return names


async def test_each_fault_ends_as_it_should(
    fault_models: list[str], jp_ws_fetch: Any, history: Any, cases: Any
) -> None:
    queue = [(m, n) for n in range(TURNS_PER_MODEL) for m in fault_models]
    results: dict[str, list[dict[str, Any]]] = {}

    async def worker(w: int) -> None:
        ws = await jp_ws_fetch("rubberduck", "ws")
        await asyncio.wait_for(ws.read_message(), 30)  # hello
        try:
            for _ in range(len(queue)):  # bounded by the work list
                if not queue:
                    return
                model, n = queue.pop()
                turn_id = f"{model}-{n}"
                ws.write_message(
                    json.dumps(
                        {
                            "type": "chat",
                            "id": turn_id,
                            "conversation_id": f"each-{model}",
                            "text": f"question {n} for {model}",
                            "model": model,
                            "engine": "simple",
                        }
                    )
                )
                for _ in range(500):  # bounded: a turn here is a few dozen frames
                    raw = await asyncio.wait_for(ws.read_message(), 20)
                    assert raw is not None, "socket closed mid-turn"
                    got = json.loads(raw)
                    results.setdefault(str(got.get("id")), []).append(got)
                    if got.get("id") == turn_id and got["type"] in {"done", "error"}:
                        break
        finally:
            ws.close()

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(worker(w) for w in range(WORKERS))), DEADLINE_S)
    elapsed = time.monotonic() - started
    tried = correct = 0
    wrong: list[str] = []
    for model in fault_models:
        fault, kind = model.rsplit("-", 1)
        allowed = EXPECTED[fault][0 if kind == "fb" else 1]
        stored = await history(f"each-{model}")
        for n in range(TURNS_PER_MODEL):
            tried += 1
            got = results.get(f"{model}-{n}", [])
            ends = [f for f in got if f["type"] in {"done", "error"}]
            outcome = "none" if len(ends) != 1 else ends[0].get("code", ends[0]["type"])
            ok = outcome in allowed and ("user", f"question {n} for {model}") in stored
            if ok and outcome == "done" and kind == "fb":
                ok = ends[0]["model"] == "backup"  # answered by the fallback
            if ok and outcome == "rate_limited":
                ok = ends[0].get("retry_after") is not None  # the provider's Retry-After, passed on
            if not ok:
                wrong.append(f"{model}-{n}: {outcome} (expected {sorted(allowed)})")
            correct += ok
    cases.add(tried, correct)
    print(f"{tried} turns over {len(fault_models)} faulty models in {elapsed:.1f} s")
    assert not wrong, "\n".join(wrong[:12])
