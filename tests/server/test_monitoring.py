"""Health's monitoring sections and jupyter_server's /metrics, against a real server:
figures after a chat, and a conversation actor whose loop crashes for real."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import tornado.httpclient
from prometheus_client.parser import text_string_to_metric_families

from rubberduck_jupyter.sessions.actor import ConversationActor
from rubberduck_jupyter.sessions.manager import CRASHED_NOTE

MODEL = "openai/fake-model"


async def _open(jp_ws_fetch: Any) -> Any:
    ws = await jp_ws_fetch("rubberduck", "ws")
    assert json.loads(await ws.read_message())["type"] == "hello"
    return ws


def _chat(msg_id: str, text: str, conversation_id: str = "conv-m") -> str:
    return json.dumps(
        {"type": "chat", "v": 1, "id": msg_id, "conversation_id": conversation_id, "text": text}
    )


async def _health(jp_fetch: Any) -> dict[str, Any]:
    return json.loads((await jp_fetch("rubberduck", "api", "health")).body)


async def _metrics(jp_fetch: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await jp_fetch("metrics")
    samples = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def test_health_shows_supervisor_queues_process_and_latency_after_a_chat(
    jp_fetch: Any, jp_ws_fetch: Any, fake_llm: Any, read_turn: Any
) -> None:
    ws = await _open(jp_ws_fetch)
    ws.write_message(_chat("m1", "hello"))
    assert (await read_turn(ws, "m1"))[-1]["type"] == "done"
    ws.close()
    body = await _health(jp_fetch)
    sub = body["subsystems"]
    supervisor = sub["supervisor"]
    assert supervisor["state"] == "ok" and supervisor["failed"] == []
    # The watcher waits for an index: reported in the supervisor's shape, not running.
    assert supervisor["children"]["index_watcher"]["state"] == "stopped", supervisor
    lag = supervisor["children"]["event_loop_lag"]
    assert lag["state"] == "running" and lag["restart"] == "permanent"
    assert lag["restarts"] == 0 and lag["last_start"] > 0
    actors = supervisor["groups"]["session_actors"]
    assert actors["restarts"] == 0 and actors["failed"] == 0
    assert actors["states"]["running"] == 1  # the idle actor lives on (idle timeout 300 s)
    assert sub["queues"]["session_mailboxes"] == {"waiting": 0, "deepest": 0, "capacity_each": 8}
    assert sub["queues"]["rate_limit"] == {"queued": 0, "capacity": 64}
    assert sub["process"]["rss_bytes"] > 10_000_000
    latency = sub["llm"]["latency"][MODEL]
    assert latency["time_to_first_token"]["count"] == 1
    assert latency["total"]["count"] == 1
    first, total = latency["time_to_first_token"]["p50_s"], latency["total"]["p99_s"]
    assert 0 < first <= total < 5
    text = json.dumps(body)
    assert "sk-test-key" not in text and "conv-m" not in text  # no keys, no conversation ids


async def test_metrics_carry_rubberduck_figures_with_the_token_only(
    jp_fetch: Any, jp_ws_fetch: Any, fake_llm: Any, read_turn: Any
) -> None:
    before = await _metrics(jp_fetch)
    assert before[("rubberduck_health_ok", ())] == 1
    assert ("rubberduck_llm_time_to_first_token_seconds_count", (("model", MODEL),)) not in before
    ws = await _open(jp_ws_fetch)
    for i in range(2):
        ws.write_message(_chat(f"m{i}", f"question {i}"))
        assert (await read_turn(ws, f"m{i}"))[-1]["type"] == "done"
    ws.close()
    after = await _metrics(jp_fetch)
    model = (("model", MODEL),)
    assert after[("rubberduck_llm_time_to_first_token_seconds_count", model)] == 2
    assert after[("rubberduck_llm_response_seconds_count", model)] == 2
    assert after[("rubberduck_llm_response_seconds_bucket", (("le", "+Inf"), *model))] == 2
    assert after[("rubberduck_llm_response_seconds_sum", model)] > 0
    assert after[("rubberduck_llm_ratelimit_admitted_total", ())] >= 2
    assert after[("rubberduck_session_actors", ())] == 1
    assert after[("rubberduck_supervisor_restarts_total", (("child", "session_actors"),))] == 0
    running = (("child", "session_actors"), ("state", "running"))
    assert after[("rubberduck_supervisor_children", running)] == 1
    assert after[("rubberduck_index_state", (("state", "idle"),))] == 1
    assert after[("rubberduck_event_loop_lag_seconds_count", ())] >= 0
    assert after[("rubberduck_process_resident_memory_bytes", ())] > 10_000_000
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("metrics", headers={"Authorization": ""})
    assert info.value.code == 403


@pytest.mark.parametrize("when", ["while_streaming", "before_the_turn_starts"])
async def test_a_crashed_actor_restarts_with_its_mailbox_and_loses_no_message(
    when: str,
    jp_fetch: Any,
    jp_ws_fetch: Any,
    fake_llm: Any,
    read_turn: Any,
    jp_serverapp: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_llm.update_settings({"chunk_delay": 0.02})  # the first answer is still streaming
    original = ConversationActor._wait_turn
    crashes = 0

    async def crash_once(self: ConversationActor, task: asyncio.Task[Any]) -> None:
        nonlocal crashes
        if crashes == 0:
            # The loop fails (a bug in the actor itself, outside the turn's own error
            # handling) while the turn streams and the second message waits behind it,
            # or before the turn's task took its first step (nothing of it ran).
            for _ in range(500 if when == "while_streaming" else 0):  # bounded: 5 s
                if self.waiting:
                    break
                await asyncio.sleep(0.01)
            crashes += 1
            raise RuntimeError("injected actor crash")
        await original(self, task)

    monkeypatch.setattr(ConversationActor, "_wait_turn", crash_once)
    ws = await _open(jp_ws_fetch)
    ws.write_message(_chat("m1", "first question, answered slowly"))
    ws.write_message(_chat("m2", "second question, waiting behind it"))
    first = await read_turn(ws, "m1")
    second = await read_turn(ws, "m2")
    ws.close()
    assert first[-1]["type"] == "error" and first[-1]["code"] == "internal"
    assert first[-1]["message"] == CRASHED_NOTE
    assert [f["type"] for f in first].count("error") == 1
    assert second[-1]["type"] == "done"  # the restarted loop drained the kept mailbox
    store = jp_serverapp.web_app.settings["rubberduck_jupyter"].conversations
    stored = {(m.turn_id, m.role): m for m in await store.messages("conv-m")}
    assert len(stored) == 4  # both questions and one answer each, nothing twice
    assert stored[("m1", "user")].content == "first question, answered slowly"
    assert stored[("m2", "user")].content == "second question, waiting behind it"
    crashed = stored[("m1", "assistant")]
    assert str(crashed.status) in {"error", "incomplete"}
    assert crashed.meta["error"]["message"] == CRASHED_NOTE
    assert stored[("m2", "assistant")].content.startswith("Echo:")
    assert str(stored[("m2", "assistant")].status) == "complete"
    assert all(str(stored[(t, "user")].status) != "pending" for t in ("m1", "m2"))
    body = await _health(jp_fetch)
    actors = body["subsystems"]["supervisor"]["groups"]["session_actors"]
    assert actors["restarts"] == 1 and actors["failed"] == 0
    assert actors["last_error_type"] == "RuntimeError"
    samples = await _metrics(jp_fetch)
    assert samples[("rubberduck_supervisor_restarts_total", (("child", "session_actors"),))] == 1
