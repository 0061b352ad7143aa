"""The fake provider over real HTTP on 127.0.0.1: wire shapes, faults, control API and CLI."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from rubberduck_jupyter.testing.fake_llm import FAULT_MODES, FakeLLM, FakeLLMThread

# litellm would otherwise try to download its cost map on import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

REPO = Path(__file__).resolve().parents[2]
FAKE_LLM_MODULE = "rubberduck_jupyter.testing.fake_llm"
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMThread]:
    with FakeLLMThread() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeLLMThread) -> Iterator[FakeLLMThread]:
    defaults = server.settings()
    server.reset()
    yield server
    server.update_settings(defaults)


@dataclass
class Streamed:
    status: int
    headers: httpx.Headers
    lines: list[str] = field(default_factory=list)
    error: Exception | None = None
    first_byte_after: float = 0.0

    @property
    def data(self) -> list[str]:
        return [line.removeprefix("data: ") for line in self.lines if line.startswith("data: ")]

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [json.loads(data) for data in self.data if data != "[DONE]" and _is_json(data)]

    @property
    def text(self) -> str:
        return "".join(
            choice["delta"].get("content") or ""
            for chunk in self.chunks
            for choice in chunk["choices"]
        )


def stream(
    fake: FakeLLMThread, body: dict[str, Any] | None = None, timeout: float = 10.0
) -> Streamed:
    body = {"model": "fake", "messages": HELLO, "stream": True, **(body or {})}
    started = time.monotonic()
    with httpx.stream(
        "POST", f"{fake.base_url}/chat/completions", json=body, timeout=timeout
    ) as response:
        result = Streamed(response.status_code, response.headers)
        result.first_byte_after = time.monotonic() - started
        try:
            result.lines = []
            for line in response.iter_lines():
                if line:
                    result.lines.append(line)
        except httpx.HTTPError as exc:
            result.error = exc
    return result


def complete(fake: FakeLLMThread, body: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
    body = {"model": "fake", "messages": HELLO, **(body or {})}
    return httpx.post(f"{fake.base_url}/chat/completions", json=body, timeout=10, **kw)


def test_stream_is_openai_sse_ending_in_done(fake: FakeLLMThread) -> None:
    reply = "The quick brown fox jumps over the lazy dog."
    fake.set_replies([reply])
    got = stream(fake, {"stream_options": {"include_usage": True}})

    assert got.status == 200
    assert got.headers["content-type"].startswith("text/event-stream")
    assert got.error is None
    assert got.data[-1] == "[DONE]"
    chunks = got.chunks
    assert len(chunks) == len(got.data) - 1
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["model"] == "fake" and isinstance(c["created"], int) for c in chunks)

    first, *content, finish, usage = chunks
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert len(content) >= 5
    for chunk in content:
        (choice,) = chunk["choices"]
        assert choice["index"] == 0
        assert choice["finish_reason"] is None
        assert set(choice["delta"]) == {"content"}
    assert finish["choices"] == [
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    ]
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 2, "completion_tokens": 9, "total_tokens": 11}
    assert got.text == reply


def test_stream_without_include_usage_has_no_usage_chunk(fake: FakeLLMThread) -> None:
    got = stream(fake)
    assert got.data[-1] == "[DONE]"
    assert got.chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in chunk for chunk in got.chunks)


def test_non_stream_answer_is_a_chat_completion(fake: FakeLLMThread) -> None:
    fake.set_replies(["Just one answer."])
    response = complete(fake, {"model": "gpt-fake"})
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "gpt-fake"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "Just one answer."}
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


def test_default_reply_echoes_the_last_user_message(fake: FakeLLMThread) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second question"}]},
    ]
    assert stream(fake, {"messages": messages}).text == "Echo: second question"


def test_scripted_replies_come_in_order_then_the_echo(fake: FakeLLMThread) -> None:
    fake.set_replies(["one", "two"])
    assert stream(fake).text == "one"
    assert complete(fake).json()["choices"][0]["message"]["content"] == "two"
    assert stream(fake).text == "Echo: hello there"


def test_litellm_streams_the_scripted_reply(fake: FakeLLMThread) -> None:
    import litellm

    reply = "Use df.dropna() to drop rows with missing values."
    fake.set_replies([reply])
    response = litellm.completion(
        model="openai/fake",
        api_base=fake.base_url,
        api_key="sk-test",
        messages=[{"role": "user", "content": "How do I drop missing rows?"}],
        stream=True,
        max_retries=0,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in response)
    assert text == reply
    (request,) = fake.requests
    assert request["model"] == "fake"
    assert request["messages"][-1]["content"] == "How do I drop missing rows?"
    assert request["_fake"]["authorization_present"] is True
    assert "sk-test" not in json.dumps(request)


def test_429_has_retry_after_and_a_rate_limit_body(fake: FakeLLMThread) -> None:
    fake.retry_after_seconds = 2
    fake.add_faults(["429"])
    response = complete(fake, {"stream": True})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert error["code"] == "rate_limit_exceeded"
    assert error["message"]


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [("500", 500, None), ("503", 503, "service_unavailable"), ("401", 401, "invalid_api_key")],
)
def test_error_faults_answer_with_openai_error_bodies(
    fake: FakeLLMThread, fault: str, status: int, code: str | None
) -> None:
    fake.add_faults([fault])
    response = complete(fake, {"stream": True})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["type"] == ("invalid_request_error" if fault == "401" else "server_error")


def test_faults_are_consumed_one_per_request_before_replies(fake: FakeLLMThread) -> None:
    fake.set_replies(["after the fault"])
    fake.add_faults(["500"])
    assert complete(fake).status_code == 500
    assert stream(fake).text == "after the fault"
    assert [r["_fake"]["fault"] for r in fake.requests] == ["500", None]


def test_drop_cuts_the_connection_before_done(fake: FakeLLMThread) -> None:
    fake.set_replies(["one two three four five six"])
    fake.add_faults(["drop"])
    got = stream(fake)
    assert got.status == 200
    assert isinstance(got.error, httpx.RemoteProtocolError)
    assert "[DONE]" not in got.data
    assert got.text == "one two "
    assert all(c["choices"][0]["finish_reason"] is None for c in got.chunks)


def test_no_done_ends_cleanly_without_finish_reason_or_done(fake: FakeLLMThread) -> None:
    fake.set_replies(["one two three"])
    fake.add_faults(["no_done"])
    got = stream(fake)
    assert got.error is None
    assert got.text == "one two three"
    assert "[DONE]" not in got.data
    assert all(c["choices"][0]["finish_reason"] is None for c in got.chunks)


def test_malformed_sends_a_line_that_is_not_json(fake: FakeLLMThread) -> None:
    fake.set_replies(["one two three four"])
    fake.add_faults(["malformed"])
    got = stream(fake)
    assert got.error is None
    bad = [data for data in got.data if data != "[DONE]" and not _is_json(data)]
    assert bad == ["{not json"]
    assert got.data.index("{not json") >= 2
    assert got.text == "one two three four"


def test_slow_first_byte_delays_the_headers(fake: FakeLLMThread) -> None:
    fake.slow_first_byte_seconds = 0.5
    fake.add_faults(["slow_first_byte"])
    slow = stream(fake)
    fast = stream(fake)
    assert slow.first_byte_after >= 0.45
    assert fast.first_byte_after < 0.4
    assert slow.text == fast.text == "Echo: hello there"
    assert slow.data[-1] == "[DONE]"


def test_stall_sends_some_text_then_goes_quiet(fake: FakeLLMThread) -> None:
    fake.set_replies(["one two three four", "one two three four"])
    fake.add_faults(["stall", "stall"])

    # A client with a short read timeout gives up during the stall.
    fake.stall_seconds = 5
    started = time.monotonic()
    timed_out = stream(fake, timeout=0.3)
    assert isinstance(timed_out.error, httpx.ReadTimeout)
    assert timed_out.text == "one two "
    assert time.monotonic() - started < 3

    # A patient one sees the connection close, unfinished, once the stall ends.
    fake.stall_seconds = 0.4
    started = time.monotonic()
    patient = stream(fake)
    assert time.monotonic() - started >= 0.35
    assert isinstance(patient.error, httpx.RemoteProtocolError)
    assert patient.text == "one two "
    assert "[DONE]" not in patient.data


def test_chunk_delay_spaces_the_chunks(fake: FakeLLMThread) -> None:
    fake.chunk_delay = 0.05
    fake.set_replies(["a b c d e"])
    started = time.monotonic()
    got = stream(fake)
    # role + 5 pieces + finish + [DONE]: seven gaps.
    assert time.monotonic() - started >= 7 * 0.05 * 0.9
    assert got.text == "a b c d e"


def test_fault_in_the_model_name_applies_to_every_request_for_it(fake: FakeLLMThread) -> None:
    for _ in range(2):
        assert complete(fake, {"model": "fake-fault-429"}).status_code == 429
        assert complete(fake, {"model": "healthy"}).status_code == 200
    dropped = stream(fake, {"model": "openai/fault-drop"})
    assert isinstance(dropped.error, httpx.RemoteProtocolError)
    assert [r["_fake"]["fault"] for r in fake.requests] == ["429", None, "429", None, "drop"]
    models = httpx.get(f"{fake.base_url}/models").json()
    assert models["object"] == "list"
    ids = [m["id"] for m in models["data"]]
    assert {"fake-fault-429", "healthy", "openai/fault-drop"} <= set(ids)


def test_unknown_fault_names_are_refused_with_the_valid_ones(fake: FakeLLMThread) -> None:
    response = complete(fake, {"model": "fake-fault-teapot"})
    assert response.status_code == 400
    assert "slow_first_byte" in response.json()["error"]["message"]

    response = httpx.post(f"{fake.base_url[:-3]}/_fake/faults", json={"faults": ["drop", "x"]})
    assert response.status_code == 400
    assert "no_done" in response.json()["error"]["message"]
    with pytest.raises(ValueError, match="valid faults"):
        fake.add_faults(["teapot"])
    assert fake.pending_faults == []
    assert len(fake.requests) == 1


def test_control_api_over_http(fake: FakeLLMThread) -> None:
    root = fake.base_url.removesuffix("/v1")
    with httpx.Client(base_url=root, timeout=10) as client:
        assert client.post("/_fake/script", json={"replies": ["r1", "r2"]}).status_code == 200
        assert client.post("/_fake/faults", json={"faults": ["503"]}).status_code == 200
        assert client.get("/_fake/faults").json()["faults"] == ["503"]

        secret = {"Authorization": "Bearer sk-very-secret"}
        assert client.post("/chat/completions", json={"messages": HELLO}).status_code == 503
        answer = client.post("/v1/chat/completions", json={"messages": HELLO}, headers=secret)
        assert answer.json()["choices"][0]["message"]["content"] == "r1"

        requests = client.get("/_fake/requests").json()
        assert [r["_fake"]["path"] for r in requests] == [
            "/chat/completions",
            "/v1/chat/completions",
        ]
        assert [r["_fake"]["authorization_present"] for r in requests] == [False, True]
        assert "sk-very-secret" not in json.dumps(requests)
        assert requests == fake.requests

        settings = client.post("/_fake/settings", json={"stall_seconds": 1.5}).json()
        assert settings["stall_seconds"] == fake.stall_seconds == 1.5
        assert client.post("/_fake/settings", json={"nope": 1}).status_code == 400

        assert client.post("/_fake/reset").status_code == 200
        assert client.get("/_fake/requests").json() == []
        assert fake.pending_replies == []
        assert (
            client.post("/v1/chat/completions", json={"model": "m", "messages": []}).json()[
                "choices"
            ][0]["message"]["content"]
            == "Echo: "
        )


def test_bad_requests_are_recorded_and_refused(fake: FakeLLMThread) -> None:
    url = f"{fake.base_url}/chat/completions"
    assert httpx.post(url, content=b"{oops").status_code == 400
    assert httpx.post(url, json={"model": "m"}).status_code == 400
    assert [r.get("_raw") for r in fake.requests] == ["{oops", None]


def test_in_process_async_server_with_many_concurrent_streams() -> None:
    async def run() -> tuple[str, set[str]]:
        server = FakeLLM(host="127.0.0.1", port=0, chunk_delay=0.01)
        await server.start()
        try:
            base_url = server.base_url
            limits = httpx.Limits(max_connections=250)
            async with httpx.AsyncClient(limits=limits, timeout=20) as client:

                async def one(i: int) -> str:
                    body = {
                        "model": "m",
                        "stream": True,
                        "messages": [{"role": "user", "content": f"n{i}"}],
                    }
                    text = ""
                    async with client.stream(
                        "POST", f"{base_url}/chat/completions", json=body
                    ) as response:
                        async for line in response.aiter_lines():
                            if line.startswith("data: {"):
                                delta = json.loads(line[6:])["choices"][0]["delta"]
                                text += delta.get("content") or ""
                    return text

                texts = await asyncio.gather(*(one(i) for i in range(200)))
            assert len(server.requests) == 200
            return base_url, set(texts)
        finally:
            await server.stop()

    base_url, texts = asyncio.run(run())
    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
    assert texts == {f"Echo: n{i}" for i in range(200)}


def test_thread_stop_closes_a_stalled_stream_promptly() -> None:
    fake = FakeLLMThread(stall_seconds=30).start()
    try:
        fake.add_faults(["stall"])
        url = f"{fake.base_url}/chat/completions"
        body = {"messages": HELLO, "stream": True}
        with httpx.stream("POST", url, json=body, timeout=10) as response:
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")
            started = time.monotonic()
            fake.stop()
            assert time.monotonic() - started < 3
            with pytest.raises(httpx.RemoteProtocolError):
                list(lines)
    finally:
        fake.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)


def test_cli_serves_a_script_and_exits_on_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"replies": ["from the script"]}))
    command = [sys.executable, "-m", FAKE_LLM_MODULE, "--port", "0", "--script", str(script)]
    with subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 20)
            assert ready, "the CLI printed nothing"
            line = proc.stdout.readline().strip()
            prefix = "fake-llm listening on "
            assert line.startswith(prefix), line
            base_url = line.removeprefix(prefix)
            assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
            assert not base_url.endswith(":0/v1")

            response = httpx.post(f"{base_url}/chat/completions", json={"messages": HELLO})
            assert response.json()["choices"][0]["message"]["content"] == "from the script"

            os.kill(proc.pid, signal.SIGTERM)
            _, stderr = proc.communicate(timeout=10)
            assert proc.returncode == 0
            assert stderr == ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_fault_names_are_the_documented_ones() -> None:
    assert set(FAULT_MODES) == {
        "429",
        "500",
        "503",
        "401",
        "context_window",
        "slow_first_byte",
        "stall",
        "drop",
        "malformed",
        "no_done",
    }


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
