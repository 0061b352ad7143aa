"""MCP servers' tools in real agent turns: the fake provider scripts the calls, the real
LLMService carries them, and a real MCP server (tests/mcp_fixtures/fixture_server.py,
written with the SDK) answers over stdio or streamable HTTP. Servers that hang at start
or on a call, and one that exits during a call, are timed out or noticed, reported to the
model and the user, and the turn still ends; a write-permission tool is not offered to a
client that cannot answer approvals and, named anyway, never runs; to one that can, each
call asks first (a `tool` approval answered here through the broker, as the sidebar
would) and only "allow" reaches the server; a server's secret never reaches the model or
the browser."""

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
from rubberduck_jupyter.protocol import AgentAbilities, ApproveRequest, ChatContext, ChatRequest
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


# --- write/run tools ask first (a `tool` approval) ---------------------------------------

CAN_ASK = ChatContext(notebook_path="a.ipynb", agent=AgentAbilities(can_run=True))


async def chat_answering(
    harness: Harness,
    text: str,
    decisions: list[str],
    *,
    conversation: str = "conv-1",
) -> list[dict[str, Any]]:
    """A turn whose approvals are answered through the broker as a sidebar would: each
    `approval` frame not marked auto gets the next decision (none left: no answer)."""
    frames: list[dict[str, Any]] = []
    broker = harness.manager.approvals
    left = list(decisions)

    async def emit(frame: dict[str, Any]) -> None:
        frames.append(frame)
        if frame["type"] == "approval" and not frame.get("auto") and left:
            decision = left.pop(0)
            asyncio.get_running_loop().call_soon(
                broker.answer,
                "alice",
                ApproveRequest(frame["id"], frame["approval_id"], decision),
            )

    request = ChatRequest(
        id=f"t-{len(decisions)}-{time.monotonic_ns()}",
        conversation_id=conversation,
        text=text,
        context=CAN_ASK,
    )
    await harness.manager.run_turn("alice", request, emit)
    return frames


def logged(calls: Path) -> list[str]:
    return calls.read_text().splitlines() if calls.exists() else []


async def test_a_write_tool_asks_first_and_is_called_only_when_allowed(
    make_harness: Any, servers: Callable[..., McpServers], tmp_path: Path
) -> None:
    calls = tmp_path / "calls.txt"
    source = servers({"ops": stdio(calls=calls, permission="write", tools=["write_note"])})
    harness = agent_with(make_harness, source)
    harness.fake.set_replies(
        [
            call("ops__write_note", {"text": "first"}),
            call("ops__write_note", {"text": "second"}),
            "Both tried.",
        ]
    )
    frames = await chat_answering(harness, "/agent write notes", ["allow", "deny"])
    assert frames[-1]["type"] == "done"
    offered = {t["function"]["name"] for t in harness.fake.requests[0]["tools"]}
    assert "ops__write_note" in offered  # this client answers approvals
    first, second = frames_of(frames, "approval")
    assert first["kind"] == "tool" and first["title"] == "Call ops: write_note"
    assert first["path"] is None and first["cell_index"] is None
    assert json.loads(first["source"]) == {"text": "first"}
    assert first["tool"] == {"server": "ops", "name": "write_note", "permission": "write"}
    assert "auto" not in second  # "allow" was for that call only
    closed = [f["reason"] for f in frames_of(frames, "approval.closed")]
    assert closed == ["answered", "answered"]
    # Allowed: the server ran it. Declined: it never reached the server, and the model knows.
    assert logged(calls) == ["write_note first"]
    allowed, declined = tool_results(harness.prompts()[-1])
    assert allowed == "written"
    assert "declined the call to ops's write_note" in declined
    assert "needs" not in " ".join(mcp_notices(frames))  # nothing held back this time


async def test_tool_grants_are_kept_apart_from_run_grants_and_read_tools_never_ask(
    make_harness: Any, servers: Callable[..., McpServers], tmp_path: Path
) -> None:
    calls = tmp_path / "calls.txt"
    source = servers(
        {
            "ops": stdio(calls=calls, permission="write", tools=["write_note"]),
            "fx": stdio(calls=calls, permission="read", tools=["add"]),
        }
    )
    harness = agent_with(make_harness, source)
    broker = harness.manager.approvals
    # "Always for this conversation" given to cell runs does not cover an MCP tool.
    broker.grant("alice", "conv-g", "run")
    harness.fake.set_replies(
        [
            call("fx__add", {"a": 1, "b": 2}),
            call("ops__write_note", {"text": "a"}),
            call("ops__write_note", {"text": "b"}),
            "Done.",
        ]
    )
    frames = await chat_answering(
        harness, "/agent go", ["allow_conversation"], conversation="conv-g"
    )
    assert frames[-1]["type"] == "done"
    approvals = frames_of(frames, "approval")
    # The read tool asked nothing; the first write asked despite the run grant; the
    # second went through on the conversation grant (still shown, marked auto).
    assert [a["tool"]["name"] for a in approvals] == ["write_note", "write_note"]
    assert "auto" not in approvals[0] and approvals[1]["auto"] is True
    assert logged(calls) == ["add 1 2", "write_note a", "write_note b"]
    assert broker.allowed_for_conversation("alice", "conv-g", "tool:ops")
    # ... and the reverse: a tool grant is no grant to run cells (nor another server's).
    broker.revoke("alice", "conv-g", "run")
    assert not broker.allowed_for_conversation("alice", "conv-g", "run")
    assert not broker.allowed_for_conversation("alice", "conv-g", "tool:fx")


async def test_an_unanswered_tool_approval_is_told_and_stop_closes_one_uncalled(
    make_harness: Any, servers: Callable[..., McpServers], tmp_path: Path
) -> None:
    calls = tmp_path / "calls.txt"
    source = servers({"ops": stdio(calls=calls, permission="run", tools=["write_note"])})
    agent = AgentConversation(tool_source=source, max_steps=6, run_timeout_s=0.3)
    harness = make_harness(engine_overrides={"agent": agent})
    harness.fake.set_replies([call("ops__write_note", {"text": "late"}), "Nobody answered."])
    frames = await chat_answering(harness, "/agent write", [])
    assert frames[-1]["type"] == "done"
    [result] = tool_results(harness.prompts()[-1])
    assert "did not answer within 0.3 s" in result and "was not called" in result
    assert [f["reason"] for f in frames_of(frames, "approval.closed")] == ["timeout"]
    assert logged(calls) == []

    # Stop while the card waits: it closes "cancelled" and the server never sees the call.
    agent.run_timeout_s = 60.0
    harness.fake.set_replies([call("ops__write_note", {"text": "stopped"}), "never asked"])
    stopped: list[dict[str, Any]] = []

    async def emit(frame: dict[str, Any]) -> None:
        stopped.append(frame)

    request = ChatRequest(id="t-stop-tool", conversation_id="c-s", text="/agent w", context=CAN_ASK)
    task = asyncio.ensure_future(harness.manager.run_turn("alice", request, emit))
    for _ in range(2400):
        if frames_of(stopped, "approval"):
            break
        await asyncio.sleep(0.025)
    assert frames_of(stopped, "approval")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert [f["reason"] for f in frames_of(stopped, "approval.closed")] == ["cancelled"]
    assert harness.manager.approvals.snapshot()["open"] == 0
    assert logged(calls) == []
