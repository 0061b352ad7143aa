"""The fake provider's scripted tool calls, read by the clients we use (litellm, the OpenAI
SDK) exactly as they read a real provider's: streamed in pieces, assembled back whole."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rubberduck_jupyter.testing.fake_llm import FakeLLMThread, load_script
from rubberduck_jupyter.testing.fake_replies import ReplyError, ToolReply, parse_reply

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ASK = [{"role": "user", "content": "Fix the failing cell"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_cell",
            "description": "Read one cell",
            "parameters": {"type": "object", "properties": {"index": {"type": "integer"}}},
        },
    }
]
READ_AND_REPLACE = {
    "content": "Let me look at the cell first.",
    "tool_calls": [
        {"name": "read_cell", "arguments": {"index": 3}, "id": "call_read"},
        {"name": "replace_cell", "arguments": {"index": 3, "source": "df = df.dropna()\n"}},
    ],
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMThread]:
    with FakeLLMThread() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeLLMThread) -> Iterator[FakeLLMThread]:
    server.reset()
    yield server


def _sse(fake: FakeLLMThread, body: dict[str, Any]) -> list[dict[str, Any]]:
    body = {"model": "fake", "messages": ASK, "stream": True, "tools": TOOLS, **body}
    with httpx.stream("POST", f"{fake.base_url}/chat/completions", json=body, timeout=10) as r:
        lines = [line.removeprefix("data: ") for line in r.iter_lines() if line]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_litellm_assembles_streamed_tool_calls(fake: FakeLLMThread) -> None:
    import litellm

    fake.set_replies([READ_AND_REPLACE])
    stream = litellm.completion(
        model="openai/fake",
        api_base=fake.base_url,
        api_key="sk-test",
        messages=ASK,
        tools=TOOLS,
        stream=True,
        max_retries=0,
    )
    chunks = list(stream)
    whole = litellm.stream_chunk_builder(chunks, messages=ASK)
    choice = whole.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me look at the cell first."
    calls = choice.message.tool_calls
    assert [c.function.name for c in calls] == ["read_cell", "replace_cell"]
    assert calls[0].id == "call_read" and calls[1].id  # a made-up id when none was scripted
    assert json.loads(calls[0].function.arguments) == {"index": 3}
    assert json.loads(calls[1].function.arguments) == {"index": 3, "source": "df = df.dropna()\n"}
    # The request's tools reached the provider, for a test to check what the model was offered.
    (request,) = fake.requests
    assert [t["function"]["name"] for t in request["tools"]] == ["read_cell"]


def test_arguments_arrive_in_pieces_after_the_call_header(fake: FakeLLMThread) -> None:
    fake.set_replies([{"tool_calls": [{"name": "search", "arguments": {"query": "x" * 40}}]}])
    chunks = _sse(fake, {})
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": None}
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    header, pieces = calls[0], calls[1:]
    assert header["function"] == {"name": "search", "arguments": ""}
    assert header["type"] == "function" and header["id"] and header["index"] == 0
    assert len(pieces) >= 3 and all("id" not in p and "name" not in p["function"] for p in pieces)
    assert json.loads("".join(p["function"]["arguments"] for p in pieces)) == {"query": "x" * 40}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_the_openai_sdk_reads_a_non_streamed_tool_turn(fake: FakeLLMThread) -> None:
    import openai

    fake.set_replies([READ_AND_REPLACE, "The cell is fixed."])
    client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
    first = client.chat.completions.create(model="fake", messages=ASK, tools=TOOLS)  # type: ignore[arg-type]
    assert first.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in first.choices[0].message.tool_calls or []] == [
        "read_cell",
        "replace_cell",
    ]
    second = client.chat.completions.create(model="fake", messages=ASK)  # type: ignore[arg-type]
    assert second.choices[0].message.content == "The cell is fixed."
    assert second.choices[0].finish_reason == "stop"


def test_broken_arguments_are_sent_as_scripted(fake: FakeLLMThread) -> None:
    """A model that writes invalid JSON: the agent's parser must see exactly that."""
    fake.set_replies([{"tool_calls": [{"name": "read_cell", "arguments": '{"index": 3'}]}])
    chunks = _sse(fake, {})
    text = "".join(
        d["tool_calls"][0]["function"]["arguments"]
        for c in chunks
        if c["choices"]
        for d in [c["choices"][0]["delta"]]
        if "tool_calls" in d
    )
    assert text == '{"index": 3'


def test_drop_cuts_a_tool_call_short(fake: FakeLLMThread) -> None:
    fake.set_replies([READ_AND_REPLACE])
    fake.add_faults(["drop"])
    body = {"model": "fake", "messages": ASK, "stream": True}
    lines: list[str] = []
    url = f"{fake.base_url}/chat/completions"
    with pytest.raises(httpx.HTTPError), httpx.stream("POST", url, json=body, timeout=10) as r:
        lines.extend(line for line in r.iter_lines() if line)
    assert lines and "[DONE]" not in lines[-1]
    assert all('"finish_reason":"tool_calls"' not in line for line in lines)


def test_the_script_api_takes_and_shows_tool_replies(fake: FakeLLMThread) -> None:
    origin = fake.base_url.rsplit("/v1", 1)[0]
    posted = httpx.post(f"{origin}/_fake/script", json={"replies": ["hi", READ_AND_REPLACE]})
    assert posted.status_code == 200
    shown = posted.json()["replies"]
    assert shown[0] == "hi"
    assert shown[1]["tool_calls"][0] == {
        "name": "read_cell",
        "arguments": '{"index":3}',
        "id": "call_read",
    }
    bad = httpx.post(
        f"{origin}/_fake/script", json={"replies": [{"tool_calls": [{"arguments": {}}]}]}
    )
    assert bad.status_code == 400 and "needs a 'name'" in bad.text
    assert fake.pending_replies[0] == "hi"  # a refused script leaves the old one


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (3, "a string or an object"),
        ({"content": "x"}, "non-empty list"),
        ({"tool_calls": []}, "non-empty list"),
        ({"tool_calls": [{"name": "f", "arguments": 3}]}, "an object or a string"),
        ({"tool_calls": [{"name": "f", "args": {}}]}, "unknown keys args"),
        ({"tool_calls": [{"name": "f"}], "extra": 1}, "unknown keys extra"),
        ({"content": 1, "tool_calls": [{"name": "f"}]}, "'content' must be a string"),
    ],
)
def test_malformed_entries_say_what_is_wrong(entry: object, message: str) -> None:
    with pytest.raises(ReplyError, match=message):
        parse_reply(entry, 4)


def test_a_script_file_may_hold_tool_replies(tmp_path: Path) -> None:
    script = tmp_path / "agent.json"
    script.write_text(json.dumps({"replies": [READ_AND_REPLACE, "done"], "faults": ["429"]}))
    replies, faults = load_script(script)
    assert isinstance(replies[0], ToolReply) and replies[1] == "done" and faults == ["429"]
    assert replies[0].tool_calls[1].name == "replace_cell"
