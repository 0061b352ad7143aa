"""Resuming a turn after its WebSocket drops, against a real server and the fake provider.

Two users (header tokens, as JupyterHub's identity provider maps them) so a resume of
another user's turn is tried through real sockets. "Dropping" is closing the client's
socket mid-answer without reading what is in flight: the frames the server already wrote
to it are lost, exactly as on a network drop, so the resume must send them again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest
from jupyter_server.auth.identity import IdentityProvider, User
from server_fixtures import eventually

READ_S = 15.0
REPLY = "".join(f"word{i} " for i in range(120)).strip()


class TwoUsers(IdentityProvider):
    async def get_user(self, handler: Any) -> User | None:  # type: ignore[override]
        auth = handler.request.headers.get("Authorization", "")
        name = auth.removeprefix("token ").removesuffix("-token")
        return User(username=name) if name in ("alice", "bob") else None


@pytest.fixture
def jp_server_config(rubberduck_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"rubberduck_jupyter": True},
            "identity_provider_class": TwoUsers,
        },
        "RubberDuckApp": rubberduck_config,
    }


@pytest.fixture
def app(jp_serverapp: Any) -> Any:
    return jp_serverapp.web_app.settings["rubberduck_jupyter"]


@pytest.fixture
def slow(fake_llm: Any) -> Any:
    """The next reply streams at ~50 chunks/s, so a test can drop the socket mid-answer."""
    fake_llm.chunk_delay = 0.02
    fake_llm.set_replies([REPLY])
    yield fake_llm
    fake_llm.chunk_delay = 0


def set_limits(app: Any, **changes: Any) -> None:
    app.replay.limits = dataclasses.replace(app.replay.limits, **changes)


class Client:
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def read(self) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.read_message(), READ_S)
        assert raw is not None, "socket closed"
        return json.loads(raw)

    def send(self, **frame: Any) -> None:
        self.ws.write_message(json.dumps(frame))

    def chat(self, msg_id: str, text: str = "Tell me a lot.", conv: str = "c-1") -> None:
        self.send(type="chat", id=msg_id, conversation_id=conv, text=text)

    async def until(self, msg_id: str, stop: Any) -> list[dict[str, Any]]:
        """Frames of `msg_id` up to the first for which `stop(frame)` holds."""
        frames = []
        while True:
            frame = await self.read()
            if frame.get("id") != msg_id:
                continue
            frames.append(frame)
            if stop(frame):
                return frames

    async def to_end(self, msg_id: str) -> list[dict[str, Any]]:
        return await self.until(msg_id, lambda f: f["type"] in ("done", "error"))

    async def chunks(self, msg_id: str, count: int) -> list[dict[str, Any]]:
        seen = 0

        def stop(frame: dict[str, Any]) -> bool:
            nonlocal seen
            seen += frame["type"] == "chunk"
            return seen >= count

        return await self.until(msg_id, stop)


@pytest.fixture
def connect(jp_ws_fetch: Any) -> Any:
    async def open_as(user: str = "alice") -> Client:
        ws = await jp_ws_fetch("rubberduck", "ws", headers={"Authorization": f"token {user}-token"})
        client = Client(ws)
        assert (await client.read())["type"] == "hello"
        return client

    return open_as


def text_of(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "chunk")


def assert_exactly_once(frames: list[dict[str, Any]]) -> None:
    """Every frame of the turn, numbered 1..N without a gap or a repeat, chunks in order."""
    assert [f["n"] for f in frames] == list(range(1, len(frames) + 1))
    chunks = [f for f in frames if f["type"] == "chunk"]
    assert [c["seq"] for c in chunks] == list(range(len(chunks)))


async def test_a_dropped_answer_resumes_with_nothing_lost_or_repeated(
    connect: Any, slow: Any, jp_fetch: Any
) -> None:
    first = await connect()
    first.chat("t1")
    before = await first.chunks("t1", 5)
    first.ws.close()  # whatever the server wrote after the 5th chunk is lost with it
    await asyncio.sleep(0.3)  # the turn streams on, detached; health shows it
    response = await jp_fetch(
        "rubberduck", "api", "health", headers={"Authorization": "token alice-token"}
    )
    resume = json.loads(response.body)["subsystems"]["sessions"]["resume"]
    assert (resume["running"], resume["detached"]) == (1, 1)
    assert resume["frames"] > 5

    second = await connect()
    second.send(type="resume", id="t1", after=before[-1]["n"])
    after = await second.to_end("t1")

    frames = before + after
    assert_exactly_once(frames)
    assert text_of(frames) == REPLY
    assert frames[-1]["type"] == "done" and frames[-1]["finish_reason"] == "stop"
    second.ws.close()


async def test_a_turn_that_ended_while_disconnected_is_replayed_to_its_end(
    connect: Any, slow: Any, app: Any
) -> None:
    first = await connect()
    first.chat("t2")
    before = await first.chunks("t2", 3)
    first.ws.close()

    async def finished() -> bool:
        return app.replay.snapshot()["running"] == 0

    await eventually(finished, "the detached turn to finish")
    second = await connect()
    second.send(type="resume", id="t2", after=before[-1]["n"])
    frames = before + await second.to_end("t2")
    assert_exactly_once(frames)
    assert text_of(frames) == REPLY
    # Resuming from the start replays every frame again, for a client that lost them all.
    second.send(type="resume", id="t2", after=0)
    again = await second.to_end("t2")
    assert again == frames
    second.ws.close()


async def test_nobody_resuming_within_the_grace_period_cancels_the_turn(
    connect: Any, slow: Any, app: Any
) -> None:
    set_limits(app, grace_s=0.5)
    slow.set_replies(["word " * 2000])  # ~40 s of streaming: only a cancel ends it soon
    first = await connect()
    first.chat("t3")
    before = await first.chunks("t3", 2)
    first.ws.close()

    async def upstream_closed() -> bool:
        return slow.active_streams == 0

    await eventually(upstream_closed, "the provider stream to close after the grace period", 10)
    second = await connect()
    second.send(type="resume", id="t3", after=before[-1]["n"])
    frames = before + await second.to_end("t3")
    assert_exactly_once(frames)
    assert frames[-1]["type"] == "done" and frames[-1]["finish_reason"] == "cancelled"
    assert len(text_of(frames)) < len("word " * 2000)
    second.ws.close()


async def test_a_resumed_socket_can_stop_the_turn(connect: Any, slow: Any) -> None:
    slow.set_replies(["word " * 2000])
    first = await connect()
    first.chat("t4")
    before = await first.chunks("t4", 2)
    first.ws.close()
    second = await connect()
    second.send(type="resume", id="t4", after=before[-1]["n"])
    await second.chunks("t4", 1)
    second.send(type="cancel", id="t4")
    frames = await second.to_end("t4")
    assert frames[-1]["finish_reason"] == "cancelled"
    second.ws.close()


async def test_frames_past_the_limit_are_dropped_and_resuming_them_is_refused(
    connect: Any, slow: Any, app: Any
) -> None:
    set_limits(app, max_frames=5)
    client = await connect()
    client.chat("t5")
    seen = await client.chunks("t5", 10)
    assert seen[-1]["n"] > 5
    # Frame 1 has been dropped: a resume that needs it gets a clear refusal, not a gap.
    client.send(type="resume", id="t5", after=0)
    refusal = await client.until("t5", lambda f: f["type"] == "error")
    assert refusal[-1]["code"] == "resume_unavailable"
    assert "send the message again" in refusal[-1]["message"]
    assert app.replay.snapshot()["frames"] <= 5
    client.ws.close()


async def test_only_the_newest_turns_are_kept(connect: Any, fake_llm: Any, app: Any) -> None:
    set_limits(app, max_turns=2)
    client = await connect()
    for msg_id in ("a", "b", "c"):
        fake_llm.set_replies([f"answer {msg_id}"])
        client.chat(msg_id)
        await client.to_end(msg_id)
    client.send(type="resume", id="a", after=0)
    assert (await client.to_end("a"))[-1]["code"] == "resume_unavailable"
    client.send(type="resume", id="c", after=0)
    replayed = await client.to_end("c")
    assert text_of(replayed) == "answer c"
    assert app.replay.snapshot()["turns"] == 2
    client.ws.close()


async def test_another_user_can_neither_resume_nor_stop_your_turn(connect: Any, slow: Any) -> None:
    alice = await connect("alice")
    alice.chat("mine")
    await alice.chunks("mine", 2)
    bob = await connect("bob")
    bob.send(type="resume", id="mine", after=0)
    refusal = await bob.read()
    # Exactly what an id nobody ever used gets: existence does not leak.
    assert (refusal["type"], refusal["id"], refusal["code"]) == (
        "error",
        "mine",
        "resume_unavailable",
    )
    bob.send(type="cancel", id="mine")
    assert (await bob.read())["code"] == "unknown_id"
    bob.send(type="resume", id="never-used", after=0)
    assert (await bob.read())["message"] == refusal["message"]
    # Bob got none of Alice's frames, and her answer went on whole on her socket.
    bob.ws.close()
    rest = await alice.to_end("mine")
    assert rest[-1]["finish_reason"] == "stop"
    alice.ws.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "resume", "id": "x"}, "bad_frame"),
        ({"type": "resume", "id": "x", "after": -1}, "bad_frame"),
        ({"type": "resume", "id": "x", "after": "3"}, "bad_frame"),
        ({"type": "resume", "id": "x", "after": True}, "bad_frame"),
        ({"type": "resume", "id": "x", "after": 1.5}, "bad_frame"),
        ({"type": "resume", "id": "x", "after": 10**12}, "bad_frame"),
        ({"type": "resume", "after": 0}, "bad_frame"),
        ({"type": "resume", "id": "x" * 129, "after": 0}, "bad_frame"),
        ({"type": "resume", "id": "bad\x1bid", "after": 0}, "bad_frame"),
        ({"type": "resume", "id": "unknown", "after": 0}, "resume_unavailable"),
    ],
)
async def test_bad_resume_frames_get_an_error_and_the_socket_keeps_working(
    connect: Any, fake_llm: Any, frame: dict[str, Any], code: str
) -> None:
    client = await connect()
    client.send(**frame)
    error = await client.read()
    assert (error["type"], error["code"]) == ("error", code)
    assert error["message"]
    fake_llm.set_replies(["still here"])
    client.chat("after-bad")
    assert text_of(await client.to_end("after-bad")) == "still here"
    client.ws.close()


async def test_resuming_past_the_last_frame_is_refused(connect: Any, fake_llm: Any) -> None:
    fake_llm.set_replies(["short"])
    client = await connect()
    client.chat("t6")
    frames = await client.to_end("t6")
    client.send(type="resume", id="t6", after=frames[-1]["n"] + 1)
    error = await client.read()
    assert (error["code"], error["id"]) == ("bad_frame", "t6")
    # After the last frame exactly is fine: nothing is missing, nothing is sent.
    client.send(type="resume", id="t6", after=frames[-1]["n"])
    client.send(type="cancel", id="t6")
    assert (await client.read())["code"] == "unknown_id"
    client.ws.close()
