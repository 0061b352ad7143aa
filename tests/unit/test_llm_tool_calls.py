"""Tool calls through the LLM service, on both streaming paths (the direct
OpenAI-compatible one and litellm) against the fake provider on 127.0.0.1: the tools sent,
deltas streamed, calls assembled, tool messages redacted but whole, no caching, the
estimate counting schemas, and a model that cannot call tools ending in ToolsUnsupported."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rubberduck_jupyter.context.redact import Redactor
from rubberduck_jupyter.llm.client import StreamPiece, says_no_tools
from rubberduck_jupyter.llm.config import build_models_config
from rubberduck_jupyter.llm.errors import ToolsUnsupported
from rubberduck_jupyter.llm.retry import RetryPolicy
from rubberduck_jupyter.llm.service import LLMService, ServiceSettings, estimate_tokens
from rubberduck_jupyter.testing.fake_llm import FakeLLMThread

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

KEY = "sk-tools-test-key-0123456789abcdef"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_cell",
            "description": "Read one cell of the notebook",
            "parameters": {
                "type": "object",
                "properties": {"index": {"type": "integer"}},
                "required": ["index"],
            },
        },
    }
]
ASK = [{"role": "user", "content": "What is in cell 3?"}]
TWO_CALLS = {
    "content": "Looking.",
    "tool_calls": [
        {"name": "read_cell", "arguments": {"index": 3}, "id": "call_a"},
        {"name": "read_cell", "arguments": '{"index": 4, "note": "a long argument text"}'},
    ],
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMThread]:
    with FakeLLMThread() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeLLMThread) -> FakeLLMThread:
    server.reset()
    return server


def _service(base: str, *, direct: bool, model: str = "openai/fake-tools") -> LLMService:
    config = build_models_config(model=model, api_base=base, api_key=KEY, env={})
    return LLMService(
        config,
        settings=ServiceSettings(
            retry=RetryPolicy(max_attempts=1, base_delay=0.01), direct_openai_streaming=direct
        ),
        redactor=Redactor(lambda: [KEY]),
    )


async def _collect(service: LLMService, messages: list[dict[str, Any]], **kw: Any) -> list[Any]:
    pieces = []
    try:
        async for piece in service.stream(user="alice", messages=messages, **kw):
            pieces.append(piece)
    finally:
        await service.aclose()
    return pieces


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "litellm"])
def test_tool_calls_stream_as_deltas_and_end_assembled(fake: FakeLLMThread, direct: bool) -> None:
    fake.set_replies([TWO_CALLS])
    service = _service(fake.base_url, direct=direct)
    pieces = asyncio.run(_collect(service, ASK, tools=TOOLS, tool_choice="auto"))
    sent = fake.requests[-1]
    assert sent["tools"] == TOOLS and sent.get("tool_choice") == "auto"
    deltas = [d for p in pieces[:-1] for d in p.tool_calls]
    # Arguments arrive in several pieces, as OpenAI streams them.
    assert len([d for d in deltas if d.index == 1]) > 2
    assert "".join(p.text for p in pieces) == "Looking."
    final: StreamPiece = pieces[-1]
    assert final.finish_reason == "tool_calls"
    assert [(c.id, c.name, json.loads(c.arguments)) for c in final.calls] == [
        ("call_a", "read_cell", {"index": 3}),
        ("call_fake0_1", "read_cell", {"index": 4, "note": "a long argument text"}),
    ]
    assert final.calls[0].to_message()["function"]["name"] == "read_cell"


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "litellm"])
def test_a_turn_of_tool_calls_only_and_a_transcript_round_trip(
    fake: FakeLLMThread, direct: bool
) -> None:
    fake.set_replies([{"tool_calls": [{"name": "read_cell", "arguments": {"index": 1}}]}, "Done."])
    service = _service(fake.base_url, direct=direct)
    first = asyncio.run(_collect(service, ASK, tools=TOOLS))
    assert first[-1].finish_reason == "tool_calls" and len(first[-1].calls) == 1
    call = first[-1].calls[0]
    secret_result = f"x = 1  # key {KEY}"
    transcript = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [call.to_message()]},
        {"role": "tool", "tool_call_id": call.id, "content": secret_result},
    ]
    second = asyncio.run(_collect(service, transcript, tools=TOOLS))
    assert "".join(p.text for p in second) == "Done."
    assert second[-1].finish_reason == "stop" and second[-1].calls == ()
    sent = fake.requests[-1]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.id
    assert sent[2]["tool_call_id"] == call.id and sent[2]["role"] == "tool"
    assert KEY not in json.dumps(sent) and "[REDACTED]" in sent[2]["content"]


def test_tool_turns_are_never_cached_nor_served_from_cache(fake: FakeLLMThread) -> None:
    service = _service(fake.base_url, direct=True)
    fake.set_replies(["plain answer", {"tool_calls": [{"name": "read_cell"}]}])
    asyncio.run(_collect(service, ASK))
    assert len(service.cache) == 1
    asyncio.run(_collect(service, ASK, tools=TOOLS))
    assert len(service.cache) == 1  # the tool turn added nothing
    # With the breaker open, the plain answer may be served again; a tool turn may not.
    for entry in service.config.entries.values():
        breaker = service.breakers.get(entry.breaker_key)
        while breaker.allow():
            breaker.record_failure()
    cached = asyncio.run(_collect(service, ASK))
    assert cached[-1].cached
    with pytest.raises(Exception) as refused:
        asyncio.run(_collect(service, ASK, tools=TOOLS))
    assert "paused" in str(refused.value)


def test_the_estimate_counts_tool_schemas_and_call_arguments() -> None:
    plain = estimate_tokens(ASK, 100)
    assert estimate_tokens(ASK, 100, TOOLS) > plain + len(json.dumps(TOOLS)) // 5
    with_call = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "x" * 400}}],
        },
    ]
    assert estimate_tokens(with_call, 100) >= plain + 100


def test_redaction_keeps_tool_message_shapes() -> None:
    redactor = Redactor(lambda: [KEY])
    messages = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "edit_file", "arguments": json.dumps({"key": KEY})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": f"wrote {KEY}"},
    ]
    out = redactor(messages)
    assert out[0]["tool_calls"][0]["id"] == "call_1"
    assert json.loads(out[0]["tool_calls"][0]["function"]["arguments"]) == {"key": "[REDACTED]"}
    assert out[1] == {"role": "tool", "tool_call_id": "call_1", "content": "wrote [REDACTED]"}
    assert KEY in messages[1]["content"]  # the caller's messages are not changed


def test_a_model_the_map_knows_without_tools_is_refused_before_any_request(
    fake: FakeLLMThread,
) -> None:
    service = _service(fake.base_url, direct=True, model="openai/gpt-3.5-turbo-instruct")
    with pytest.raises(ToolsUnsupported) as refused:
        asyncio.run(_collect(service, ASK, tools=TOOLS))
    assert refused.value.model_name == "openai/gpt-3.5-turbo-instruct"
    assert fake.requests == []
    # The same model without tools is asked as before.
    fake.set_replies(["fine"])
    service = _service(fake.base_url, direct=True, model="openai/gpt-3.5-turbo-instruct")
    assert "".join(p.text for p in asyncio.run(_collect(service, ASK))) == "fine"


class _NoTools(BaseHTTPRequestHandler):
    """Ollama's answer to a request with tools for a model that has none."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(
            {"error": {"message": "registry.ollama.ai/library/gemma:2b does not support tools"}}
        ).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "litellm"])
def test_a_provider_400_saying_no_tools_is_tools_unsupported(direct: bool) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _NoTools)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        service = _service(base, direct=direct, model="openai/gemma-local")
        with pytest.raises(ToolsUnsupported) as refused:
            asyncio.run(_collect(service, ASK, tools=TOOLS))
        assert "does not support tools" in refused.value.detail
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_no_tools_hints() -> None:
    assert says_no_tools('"auto" tool choice requires --enable-auto-tool-choice to be set')
    assert says_no_tools("tools is not supported in this model")
    assert not says_no_tools("This model's maximum context length is 8192 tokens")


def test_the_assembler_keeps_calls_apart_by_index_and_by_id() -> None:
    from rubberduck_jupyter.llm.client import ToolCallAssembler, ToolCallDelta

    assembler = ToolCallAssembler()
    assembler.add((ToolCallDelta(0, "a", "read_cell", '{"ce'),))
    assembler.add((ToolCallDelta(0, None, None, 'll": 1}'),))
    # A server that sends each call whole at index 0, told apart by its id.
    assembler.add((ToolCallDelta(0, "b", "list_cells", "{}"),))
    assembler.add((ToolCallDelta(1, None, "read_file", '{"path": "a.py"}'),))
    assert [(c.id, c.name, c.arguments) for c in assembler.calls()] == [
        ("a", "read_cell", '{"cell": 1}'),
        ("b", "list_cells", "{}"),
        ("call_2", "read_file", '{"path": "a.py"}'),
    ]
