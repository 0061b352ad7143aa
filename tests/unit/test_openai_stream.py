"""The direct OpenAI-compatible stream: its SSE parser, Retry-After, and the gateway itself
run side by side with LiteLLMGateway against real servers on 127.0.0.1 (the fake provider
for its fault modes, a small HTTP server for the statuses the fake does not send), so each
fault is proven to end in the same pieces or the same ProviderFailure on both paths."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rubberduck_jupyter.llm.client import (
    FailureKind,
    LiteLLMGateway,
    ProviderFailure,
    StreamPiece,
    Timeouts,
)
from rubberduck_jupyter.llm.config import ModelEntry
from rubberduck_jupyter.llm.openai_stream import OpenAICompatibleGateway, build_plan
from rubberduck_jupyter.llm.sse import MAX_EVENT_BYTES, SSEError, SSEParser, parse_retry_after
from rubberduck_jupyter.testing.fake_llm import FakeLLMThread

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

KEY = "sk-direct-test-key-0123456789"
MESSAGES = [{"role": "user", "content": "one two three four five six"}]
TIMEOUTS = Timeouts(connect=1.0, first_token=1.0, idle=0.4, total=10.0)


# --- SSE -----------------------------------------------------------------------------


def _feed_all(parts: list[bytes]) -> list[tuple[bytes, bytes]]:
    parser = SSEParser()
    events: list[tuple[bytes, bytes]] = []
    for part in parts:
        events += parser.feed(part)
    return events


def _data(parts: list[bytes]) -> list[bytes]:
    return [data for _event, data in _feed_all(parts)]


def test_sse_events_split_at_every_byte_come_out_whole() -> None:
    stream = b'data: {"a": 1}\n\ndata: {"b": 2}\r\n\r\ndata: [DONE]\r\r'
    expected = [b'{"a": 1}', b'{"b": 2}', b"[DONE]"]
    assert _data([stream]) == expected
    assert _data([stream[i : i + 1] for i in range(len(stream))]) == expected
    for cut in range(len(stream)):
        assert _data([stream[:cut], stream[cut:]]) == expected, cut


def test_sse_crlf_split_between_reads_is_one_line_ending() -> None:
    # "data: a\r" | "\ndata: b\r\n\r\n": one event with two data lines, not two events.
    assert _data([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [b"a\nb"]
    assert _data([b"data: a\r", b"", b"\n\r\n"]) == [b"a"]


def test_sse_data_without_space_multi_line_and_event_names() -> None:
    assert _data([b"data:x\n\n"]) == [b"x"]
    assert _data([b"data:  two spaces\n\n"]) == [b" two spaces"]
    assert _data([b"data: first\ndata: second\ndata:\n\n"]) == [b"first\nsecond\n"]
    assert _feed_all([b"event: error\ndata: {}\n\n"]) == [(b"error", b"{}")]
    # The name belongs to its event only.
    assert _feed_all([b"event: e\ndata: 1\n\ndata: 2\n\n"]) == [(b"e", b"1"), (b"", b"2")]


def test_sse_comments_keep_alives_ids_and_unknown_lines_are_ignored() -> None:
    stream = b": keep-alive\n\n:ping\nid: 7\nretry: 100\ngarbage\ndata: kept\n\n\n\n"
    assert _data([stream]) == [b"kept"]
    assert _data([b": only comments\n\n: more\n\n"]) == []


def test_sse_unterminated_event_is_not_dispatched() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: half") == []
    assert parser.feed(b" more\n") == []
    assert parser.feed(b"\n") == [(b"", b"half more")]


def test_sse_garbage_and_unbounded_lines_are_errors_not_growth() -> None:
    assert _data([b"\x00\xff\xfe not sse at all \x01\n\n"]) == []
    parser = SSEParser()
    with pytest.raises(SSEError):
        parser.feed(b"data: " + b"x" * (MAX_EVENT_BYTES + 1))
    parser = SSEParser()
    line = b"data: " + b"y" * 1000 + b"\n"
    with pytest.raises(SSEError):
        for _ in range(MAX_EVENT_BYTES // 1000 + 2):
            parser.feed(line)


# --- Retry-After -----------------------------------------------------------------------


def test_retry_after_seconds_milliseconds_and_http_dates() -> None:
    now = datetime(2026, 12, 2, 0, 0, 0, tzinfo=UTC)
    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after": " 0.25 "}) == 0.25
    assert parse_retry_after({"retry-after": "-3"}) == 0.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "soon", "retry-after": "9"}) == 9.0
    date = "Wed, 02 Dec 2026 00:00:30 GMT"
    assert parse_retry_after({"retry-after": date}, now=now) == 30.0
    assert parse_retry_after({"retry-after": "Tue, 01 Dec 2026 23:00:00 GMT"}, now=now) == 0.0
    for bad in ("soon", "", "nan", "inf", "Mon, 99 Foo 2026"):
        assert parse_retry_after({"retry-after": bad}, now=now) is None, bad
    assert parse_retry_after({}) is None


# --- which entries go direct -----------------------------------------------------------


def _entry(model: str, base: str | None = "http://127.0.0.1:9/v1", **params: Any) -> ModelEntry:
    return ModelEntry(name="m", model=model, api_base=base, api_key=KEY, extra_params=params)


def test_only_openai_entries_with_known_params_go_direct() -> None:
    assert build_plan(_entry("openai/gpt-4o-mini"), {}) is not None
    assert build_plan(_entry("anthropic/claude-3-5-haiku-latest"), {}) is None
    assert build_plan(_entry("ollama/llama3.1"), {}) is None
    assert build_plan(_entry("gpt-4o-mini"), {}) is None  # litellm guesses the provider
    assert build_plan(_entry("openai/x", api_version="2024-01"), {}) is None
    plan = build_plan(
        _entry(
            "openai/x",
            temperature=0.2,
            timeout=5,
            extra_headers={"X-Team": "a"},
            organization="org-1",
            extra_body={"top_k": 5},
        ),
        {},
    )
    assert plan is not None
    assert plan.url == "http://127.0.0.1:9/v1/chat/completions"
    assert plan.body == {
        "temperature": 0.2,
        "top_k": 5,
        "model": "x",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert plan.headers["X-Team"] == "a"
    assert plan.headers["OpenAI-Organization"] == "org-1"
    assert plan.headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(plan.where)


def test_the_key_and_endpoint_resolve_as_litellm_does() -> None:
    bare = ModelEntry(name="m", model="openai/gpt-4o-mini")
    plan = build_plan(bare, {"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": "http://h/v1"})
    assert plan is not None and plan.url == "http://h/v1/chat/completions"
    assert plan.headers["Authorization"] == "Bearer sk-env"
    assert build_plan(bare, {}).key_missing  # type: ignore[union-attr]
    local = ModelEntry(name="m", model="openai/qwen", api_base="http://127.0.0.1:8000/v1")
    assert "Authorization" in build_plan(local, {}).headers  # type: ignore[union-attr]


# --- both gateways, side by side -------------------------------------------------------


@dataclass
class Outcome:
    text: str
    kind: FailureKind | None = None
    started: bool | None = None
    retry_after: float | None = None
    final: StreamPiece | None = None
    detail: str = ""


async def _run(gateway: Any, entry: ModelEntry, timeouts: Timeouts = TIMEOUTS) -> Outcome:
    parts: list[str] = []
    try:
        async for piece in gateway.stream(entry, MESSAGES, timeouts=timeouts):
            if piece.finish_reason is None:
                parts.append(piece.text)
            else:
                return Outcome("".join(parts), final=piece)
    except ProviderFailure as failure:
        return Outcome(
            "".join(parts), failure.kind, failure.started, failure.retry_after, None, failure.detail
        )
    raise AssertionError("the stream ended without a final piece or a failure")


async def _both(entry: ModelEntry, before: Any = None) -> tuple[Outcome, Outcome]:
    outcomes = []
    litellm = LiteLLMGateway()
    await litellm.load()
    direct = OpenAICompatibleGateway(env={})
    for gateway in (litellm, direct):
        if before is not None:
            before()
        outcomes.append(await _run(gateway, entry))
    await direct.aclose()
    return outcomes[0], outcomes[1]


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeLLMThread]:
    with FakeLLMThread() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeLLMThread) -> Iterator[FakeLLMThread]:
    defaults = fake_server.settings()
    fake_server.reset()
    fake_server.update_settings(
        {"retry_after_seconds": 0.2, "slow_first_byte_seconds": 3.0, "stall_seconds": 3.0}
    )
    yield fake_server
    fake_server.update_settings(defaults)


def _fake_entry(fake: FakeLLMThread, model: str = "openai/fake-direct") -> ModelEntry:
    return ModelEntry(name="m", model=model, api_base=fake.base_url, api_key=KEY)


def test_a_whole_answer_is_the_same_pieces_and_usage_on_both_paths(fake: FakeLLMThread) -> None:
    def script() -> None:
        fake.set_replies(["Use categorical keys, then groupby."])

    litellm, direct = asyncio.run(_both(_fake_entry(fake), script))
    assert direct.text == litellm.text == "Use categorical keys, then groupby."
    assert direct.final is not None and litellm.final is not None
    assert direct.final.usage == litellm.final.usage
    assert direct.final.usage.total_tokens > 0  # type: ignore[union-attr]
    assert direct.final.finish_reason == litellm.final.finish_reason == "stop"
    first, second = fake.requests[0], fake.requests[1]
    for key in ("model", "messages", "stream", "stream_options"):
        assert first[key] == second[key], key
    assert second["_fake"]["authorization_present"]


@pytest.mark.parametrize(
    ("fault", "kind", "started"),
    [
        ("429", FailureKind.RATE_LIMITED, False),
        ("500", FailureKind.SERVER, False),
        ("503", FailureKind.SERVER, False),
        ("401", FailureKind.AUTH, False),
        ("slow_first_byte", FailureKind.FIRST_TOKEN_TIMEOUT, False),
        ("stall", FailureKind.IDLE_TIMEOUT, True),
        ("drop", FailureKind.INCOMPLETE, True),
        ("malformed", FailureKind.INCOMPLETE, True),
        ("no_done", FailureKind.INCOMPLETE, True),
    ],
)
def test_each_fake_fault_fails_the_same_way_on_both_paths(
    fake: FakeLLMThread, fault: str, kind: FailureKind, started: bool
) -> None:
    def arm() -> None:
        fake.add_faults([fault])
        fake.set_replies(["one two three four five six seven"])

    litellm, direct = asyncio.run(_both(_fake_entry(fake), arm))
    assert (litellm.kind, litellm.started) == (kind, started)
    assert (direct.kind, direct.started) == (kind, started)
    assert direct.text == litellm.text  # the partial text kept is the same
    assert direct.retry_after == litellm.retry_after
    assert KEY not in direct.detail
    if fault == "429":
        assert direct.retry_after == pytest.approx(0.2)


def test_connection_refused_is_a_connection_error_on_both_paths() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    entry = ModelEntry(
        name="m", model="openai/x", api_base=f"http://127.0.0.1:{port}/v1", api_key=KEY
    )
    litellm, direct = asyncio.run(_both(entry))
    assert litellm.kind == direct.kind == FailureKind.CONNECTION


class _Statuses(BaseHTTPRequestHandler):
    """/<case>/v1/chat/completions: a status with an OpenAI error body, or a broken stream
    before any text."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        case = self.path.split("/")[1]
        if case.isdigit():
            body = json.dumps(
                {"error": {"message": f"status {case} for {KEY}", "type": "x", "code": None}}
            ).encode()
            self.send_response(int(case))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if case == "429":
                self.send_header("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")
            self.end_headers()
            self.wfile.write(body)
            return
        # Chunked, so closing the socket early is a cut body, not a clean HTTP/1.0 end.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        role = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
        self._chunk(f"data: {json.dumps(role)}\n\n".encode())
        if case == "predrop":
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if case == "premalformed":
            self._chunk(b"data: {not json\n\n")
        if case == "error_event":
            self._chunk(b'data: {"error": {"message": "overloaded"}}\n\n')
        if case == "done_no_finish":
            self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def statuses() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Statuses)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("case", "kind"),
    [
        ("400", FailureKind.BAD_REQUEST),
        ("404", FailureKind.BAD_REQUEST),
        ("413", FailureKind.BAD_REQUEST),
        ("422", FailureKind.BAD_REQUEST),
        ("403", FailureKind.AUTH),
        ("408", FailureKind.FIRST_TOKEN_TIMEOUT),
        ("429", FailureKind.RATE_LIMITED),
        ("502", FailureKind.SERVER),
        ("504", FailureKind.FIRST_TOKEN_TIMEOUT),
        ("predrop", FailureKind.SERVER),
        ("premalformed", FailureKind.SERVER),
        ("error_event", FailureKind.SERVER),
        ("done_no_finish", FailureKind.INCOMPLETE),
    ],
)
def test_statuses_and_streams_broken_before_text_map_as_litellm_maps_them(
    statuses: str, case: str, kind: FailureKind
) -> None:
    entry = ModelEntry(name="m", model="openai/x", api_base=f"{statuses}/{case}/v1", api_key=KEY)
    litellm, direct = asyncio.run(_both(entry))
    assert litellm.kind == kind, litellm.detail
    assert direct.kind == kind, direct.detail
    assert litellm.started is direct.started is False
    assert KEY not in direct.detail
    # litellm reads only delta-seconds; the direct path also reads the HTTP date (past: 0).
    if case == "429":
        assert direct.retry_after == 0.0


def test_max_tokens_and_entry_params_reach_the_provider_on_both_paths(fake: FakeLLMThread) -> None:
    entry = ModelEntry(
        name="m",
        model="openai/fake-params",
        api_base=fake.base_url,
        api_key=KEY,
        extra_params={"temperature": 0.1, "seed": 7},
    )

    async def both() -> None:
        litellm = LiteLLMGateway()
        direct = OpenAICompatibleGateway(env={})
        for gateway in (litellm, direct):
            async for _piece in gateway.stream(
                entry, MESSAGES, timeouts=TIMEOUTS, max_output_tokens=33
            ):
                pass
        await direct.aclose()

    asyncio.run(both())
    via_litellm, via_direct = fake.requests
    for request in (via_litellm, via_direct):
        assert request["max_tokens"] == 33
        assert request["temperature"] == 0.1
        assert request["seed"] == 7
        assert request["stream_options"] == {"include_usage": True}


def test_the_total_timeout_cuts_a_long_answer_and_keeps_its_text(fake: FakeLLMThread) -> None:
    fake.update_settings({"chunk_delay": 0.05})
    fake.set_replies(["word " * 200])
    timeouts = Timeouts(connect=1.0, first_token=1.0, idle=1.0, total=0.4)

    async def run() -> Outcome:
        direct = OpenAICompatibleGateway(env={})
        try:
            return await _run(direct, _fake_entry(fake), timeouts)
        finally:
            await direct.aclose()

    outcome = asyncio.run(run())
    assert outcome.kind == FailureKind.INCOMPLETE and outcome.started
    assert "0.4 s in all" in outcome.detail
    assert outcome.text.startswith("word word")
    for _ in range(50):
        if fake.active_streams == 0:
            break
        threading.Event().wait(0.02)
    assert fake.active_streams == 0, "the provider connection is still open"
