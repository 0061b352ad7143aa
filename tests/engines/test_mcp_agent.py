"""MCP servers' tools in real agent turns: the fake provider scripts the calls, the real
LLMService carries them, and a real MCP server (tests/mcp_fixtures/fixture_server.py,
written with the SDK) answers over stdio or streamable HTTP. Servers that hang at start
or on a call, and one that exits during a call, are timed out or noticed, reported to the
model and the user, and the turn still ends; a write-permission tool is not offered and,
named anyway, never runs; a server's secret never reaches the model or the browser."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_harness import Harness, answer_text, frames_of

from rubberduck_jupyter.engines.agent import AgentConversation
from rubberduck_jupyter.protocol import ChatContext, ChatRequest
from rubberduck_jupyter.tools.mcp import McpServers

FIXTURE = str(Path(__file__).parents[1] / "mcp_fixtures" / "fixture_server.py")
SECRET = "fixture-secret-0123456789"
CONTEXT = ChatContext(notebook_path="a.ipynb")


def call(name: str, arguments: Any = None) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments or {}}]}


def tool_results(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "tool"]


def stdio(mode: str = "ok", *, calls: Path | None = None, **extra: Any) -> dict[str, Any]:
    env = {"FIXTURE_SECRET": SECRET}
    if calls is not None:
        env["FIXTURE_CALLS_FILE"] = str(calls)
    # Start-up is bounded generously (a loaded 2-core machine starts Python + the SDK in
    # seconds); the hang tests set their own bounds.
    return {
        "command": [sys.executable, FIXTURE, "--mode", mode],
        "env": env,
        "start_timeout": 60,
        **extra,
    }


@pytest.fixture
def servers(jp_asyncio_loop: Any) -> Iterator[Callable[..., McpServers]]:
    made: list[McpServers] = []

    def make(configured: dict[str, Any], **kwargs: Any) -> McpServers:
        # admin_dirs=[]: this machine's /etc/jupyter has no say in the test.
        m = McpServers(configured, admin_dirs=[], user_file=None, **kwargs)
        made.append(m)
        return m

    yield make
    for m in made:
        jp_asyncio_loop.run_until_complete(m.stop())


def agent_with(make_harness: Any, source: McpServers) -> Harness:
    agent = AgentConversation(tool_source=source, max_steps=6)
    return make_harness(engine_overrides={"agent": agent})


def mcp_notices(frames: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in frames_of(frames, "notice") if f["code"] == "mcp_unavailable"]


async def test_the_agent_calls_an_mcp_tool_over_stdio_and_reads_its_result(
    make_harness: Any, servers: Callable[..., McpServers], tmp_path: Path
) -> None:
    calls = tmp_path / "calls.txt"
    source = servers({"fx": stdio(calls=calls, permission="read")})
    harness = agent_with(make_harness, source)
    harness.fake.set_replies(
        [
            call("fx__add", {"a": 2, "b": 40}),
            call("fx__echo", {"text": "hello", "secret": True}),
            "2 + 40 is 42.",
        ]
    )
    frames = await harness.chat("/agent add 2 and 40 with the fixture", context=CONTEXT)
    assert frames[-1]["type"] == "done"
    offered = {t["function"]["name"] for t in harness.fake.requests[0]["tools"]}
    # Ours and the server's read tools, namespaced; its write tool is held back.
    assert {"list_cells", "fx__add", "fx__echo", "fx__slow"} <= offered
    assert "fx__write_note" not in offered
    [schema] = [t for t in harness.fake.requests[0]["tools"] if t["function"]["name"] == "fx__add"]
    assert schema["function"]["parameters"]["required"] == ["a", "b"]
    results = tool_results(harness.prompts()[-1])
    assert results[0] == "42"
    # The server answered its secret: redacted before the model and the browser saw it.
    assert results[1].startswith("echo: hello key=") and SECRET not in results[1]
    assert SECRET not in json.dumps(frames) and SECRET not in json.dumps(harness.fake.requests)
    assert calls.read_text().splitlines() == ["add 2 40", "echo hello"]
    steps = [f["title"] for f in frames_of(frames, "step") if f["status"] == "started"]
    assert steps == ["fx__add(a=2, b=40)", "fx__echo(text='hello', secret=True)"]
    assert any("write_note (write) need your approval" in n for n in mcp_notices(frames))
    assert answer_text(frames).endswith("2 + 40 is 42.")


async def test_bad_arguments_are_refused_by_our_dispatcher_before_the_server(
    make_harness: Any, servers: Callable[..., McpServers], tmp_path: Path
) -> None:
    calls = tmp_path / "calls.txt"
    source = servers({"fx": stdio(calls=calls, permission="read")})
    harness = agent_with(make_harness, source)
    harness.fake.set_replies([call("fx__add", {"a": "two"}), "I could not add."])
    frames = await harness.chat("/agent add", context=CONTEXT)
    assert frames[-1]["type"] == "done"
    [result] = tool_results(harness.prompts()[-1])
    assert "missing required field 'b'" in result and "'a' must be an integer" in result
    assert not calls.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "http-server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, FIXTURE, "http", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert process.poll() is None, (tmp_path / "http-server.log").read_text()
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)
        log.close()


async def test_an_mcp_tool_over_streamable_http(
    make_harness: Any, servers: Callable[..., McpServers], http_server: str
) -> None:
    source = servers(
        {
            "web": {
                "url": http_server,
                "headers": {"Authorization": f"Bearer {SECRET}"},
                "permission": "read",
                "tools": ["add"],
                "start_timeout": 60,
            }
        }
    )
    harness = agent_with(make_harness, source)
    harness.fake.set_replies([call("web__add", {"a": 1, "b": 2}), "It is 3."])
    frames = await harness.chat("/agent add 1 and 2", context=CONTEXT)
    assert frames[-1]["type"] == "done"
    offered = {t["function"]["name"] for t in harness.fake.requests[0]["tools"]}
    assert "web__add" in offered and "web__echo" not in offered  # the allow-list
    assert tool_results(harness.prompts()[-1]) == ["3"]
    assert SECRET not in json.dumps(frames)


async def test_a_server_that_hangs_at_start_is_timed_out_and_the_turn_goes_on(
    make_harness: Any, servers: Callable[..., McpServers]
) -> None:
    source = servers({"stuck": stdio("hang-start", permission="read", timeout=1, start_timeout=1)})
    harness = agent_with(make_harness, source)
    harness.fake.set_replies([call("list_cells"), "Done without it."])
    frames = await harness.chat("/agent look", context=CONTEXT)
    assert frames[-1]["type"] == "done"
    [notice] = mcp_notices(frames)
    assert "stuck" in notice and "did not start within 1 s" in notice
    offered = {t["function"]["name"] for t in harness.fake.requests[0]["tools"]}
    assert not any(name.startswith("stuck__") for name in offered)
    # The next turn does not wait again: the server is in its backoff, said once.
    harness.fake.set_replies(["Still here."])
    again = await harness.chat("/agent again", context=CONTEXT)
    assert again[-1]["type"] == "done" and mcp_notices(again) == []
    [connection] = source._connections.values()
    assert connection.state == "failed" and connection.retry_at > 0


async def test_a_call_that_hangs_is_timed_out_reported_and_the_server_left_out(
    make_harness: Any, servers: Callable[..., McpServers]
) -> None:
    # A short call timeout, a start-up bound for a loaded machine.
    source = servers({"fx": stdio(permission="read", timeout=2)})
    harness = agent_with(make_harness, source)
    harness.fake.set_replies(
        [call("fx__slow"), call("fx__add", {"a": 1, "b": 1}), "The server is stuck."]
    )
    frames = await harness.chat("/agent be slow", context=CONTEXT)
    assert frames[-1]["type"] == "done"
    slow, add = tool_results(harness.prompts()[-1])
    assert slow.startswith("Error: the MCP server fx is unavailable")
    assert "took longer than 2 s" in slow
    # Once failed, the server's other tools answer at once that it is gone.
    assert add.startswith("Error: the MCP server fx is unavailable")
    # Told once, although two calls found it gone.
    assert [n for n in mcp_notices(frames) if "stopped answering" in n] == [
        "The MCP server fx stopped answering (a call to slow took longer than 2 s); its "
        "tools are left out until it is tried again."
    ]
    assert answer_text(frames).endswith("The server is stuck.")


async def test_a_server_that_exits_during_a_call_is_reported_and_retried_later(
    make_harness: Any, servers: Callable[..., McpServers]
) -> None:
    source = servers({"boom": stdio("crash-call", permission="read")})
    harness = agent_with(make_harness, source)
    harness.fake.set_replies([call("boom__echo", {"text": "x"}), "It crashed."])
    frames = await harness.chat("/agent echo", context=CONTEXT)
    assert frames[-1]["type"] == "done"
    [result] = tool_results(harness.prompts()[-1])
    assert "boom is unavailable" in result and "exited during a call to echo" in result
    assert any("boom stopped answering" in n for n in mcp_notices(frames))
    [connection] = source._connections.values()
    assert connection.state == "failed"
    # After its backoff (and once the dead one is closed), a later turn starts it again.
    for _ in range(400):
        if connection._owner is not None and connection._owner.done():
            break
        await asyncio.sleep(0.025)
    connection.retry_at = 0.0
    harness.fake.set_replies(["Back."])
    await harness.chat("/agent again", context=CONTEXT)
    offered = {t["function"]["name"] for t in harness.fake.requests[-1]["tools"]}
    assert "boom__echo" in offered and connection.state == "ready"


async def test_a_write_permission_tool_is_not_offered_and_never_runs(
    make_harness: Any, servers: Callable[..., McpServers], tmp_path: Path
) -> None:
    calls = tmp_path / "calls.txt"
    # The default permission is run; this one says write: both need the user's approval.
    source = servers({"ops": stdio(calls=calls, permission="write"), "dflt": stdio()})
    harness = agent_with(make_harness, source)
    harness.fake.set_replies(
        [call("ops__write_note", {"text": "hi"}), call("dflt__echo", {"text": "x"}), "No."]
    )
    frames = await harness.chat("/agent write a note", context=CONTEXT)
    assert frames[-1]["type"] == "done"
    offered = {t["function"]["name"] for t in harness.fake.requests[0]["tools"]}
    assert not any(n.startswith(("ops__", "dflt__")) for n in offered)
    for result in tool_results(harness.prompts()[-1]):
        assert result.startswith("Error: there is no tool named")
    assert not calls.exists(), "the server never saw a call"
    notices = mcp_notices(frames)
    assert any("ops's tools" in n and "need your approval" in n for n in notices)
    assert any("dflt's tools" in n and "echo (run)" in n for n in notices)


async def test_no_server_starts_before_the_first_agent_turn(
    make_harness: Any, servers: Callable[..., McpServers]
) -> None:
    source = servers({"fx": stdio(permission="read")})
    harness = agent_with(make_harness, source)
    harness.fake.set_replies(["A plain answer."])
    await harness.chat("what is a list comprehension?", context=CONTEXT)
    assert all(c.state == "idle" for c in source._connections.values())
    harness.fake.set_replies(["An agent answer."])
    await harness.chat("/agent look", context=CONTEXT)
    assert source._connections["fx"].state == "ready"


async def test_stop_during_an_mcp_call_cancels_it_and_the_server_stays_usable(
    make_harness: Any, servers: Callable[..., McpServers], tmp_path: Path
) -> None:
    calls = tmp_path / "calls.txt"
    source = servers({"fx": stdio(calls=calls, permission="read", timeout=30)})
    harness = agent_with(make_harness, source)
    harness.fake.set_replies([call("fx__slow"), "never asked"])
    frames: list[dict[str, Any]] = []

    async def emit(frame: dict[str, Any]) -> None:
        frames.append(frame)

    request = ChatRequest(id="t-stop", conversation_id="c-stop", text="/agent go", context=CONTEXT)
    task = asyncio.ensure_future(harness.manager.run_turn("alice", request, emit))
    for _ in range(600):  # until the server has the call
        if calls.exists() and "slow" in calls.read_text():
            break
        await asyncio.sleep(0.025)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(harness.fake.requests) == 1  # the model is not asked again
    assert source._connections["fx"].state == "ready"  # a cancelled call is no failure
    harness.fake.set_replies([call("fx__add", {"a": 3, "b": 4}), "7."])
    again = await harness.chat("/agent add", context=CONTEXT)
    assert again[-1]["type"] == "done" and tool_results(harness.prompts()[-1]) == ["7"]
