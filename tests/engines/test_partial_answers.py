"""An answer is saved while it streams (every `partial_save_interval` seconds or
`partial_save_chunks` chunks), so a crash keeps what the user already read; the final
answer replaces the partial one in place, and a restart marks a partial one interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from engine_harness import Harness

from rubberduck_jupyter.domain.models import Conversation, Message, MessageStatus
from rubberduck_jupyter.protocol import ChatRequest
from rubberduck_jupyter.sessions.store import INCOMPLETE_MARK, ConversationStore


async def _stream_until(
    harness: Harness, request: ChatRequest, chunks: int
) -> tuple[asyncio.Future[None], list[dict[str, Any]]]:
    frames: list[dict[str, Any]] = []
    enough = asyncio.Event()

    async def emit(frame: dict[str, Any]) -> None:
        frames.append(frame)
        if sum(f["type"] == "chunk" for f in frames) >= chunks:
            enough.set()

    task = asyncio.ensure_future(harness.manager.run_turn("alice", request, emit))
    await asyncio.wait_for(enough.wait(), 20)
    return task, frames


def _streamed(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "chunk")


async def test_the_answer_so_far_is_saved_every_n_chunks(harness: Harness) -> None:
    harness.manager.partial_save_interval = 60.0  # only the chunk count triggers here
    harness.manager.partial_save_chunks = 5
    harness.fake.update_settings({"chunk_delay": 0.05})
    harness.fake.set_replies(["word " * 80])
    request = ChatRequest(id="t-part", conversation_id="c-part", text="a long story")
    task, frames = await _stream_until(harness, request, 12)
    deadline = time.monotonic() + 5
    stored: list[Message] = []
    while time.monotonic() < deadline:
        stored = harness.store.sync.messages("c-part")
        if len(stored) == 2 and len(stored[1].content) >= len("word ") * 10:
            break
        await asyncio.sleep(0.02)
    partial = stored[1]
    assert partial.status is MessageStatus.PENDING and partial.meta["partial"] is True
    assert partial.meta["route"]["engine"] == "simple"
    assert _streamed(frames).startswith(partial.content)
    assert len(partial.content) >= len("word ") * 10
    await task
    final = harness.store.sync.messages("c-part")
    # Replaced in place: same id and seq, the whole answer, the question answered.
    assert [(m.id, m.seq) for m in final] == [(m.id, m.seq) for m in stored]
    assert final[1].status is MessageStatus.COMPLETE and final[1].content == "word " * 80
    assert "partial" not in final[1].meta
    assert final[0].status is MessageStatus.ANSWERED


async def test_a_paused_stream_is_saved_on_time(harness: Harness) -> None:
    # Two chunks, then the provider goes quiet: the timer saves them without more chunks.
    harness.manager.partial_save_interval = 0.3
    harness.manager.partial_save_chunks = 0
    harness.fake.update_settings({"stall_seconds": 3.0})
    harness.fake.add_faults(["stall"])
    harness.fake.set_replies(["first second third fourth"])
    request = ChatRequest(id="t-quiet", conversation_id="c-quiet", text="and then?")
    task, frames = await _stream_until(harness, request, 2)
    await asyncio.sleep(0.8)
    stored = harness.store.sync.messages("c-quiet")
    assert [m.status for m in stored] == [MessageStatus.PENDING, MessageStatus.PENDING]
    assert stored[1].content == _streamed(frames) == "first second "
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_no_save_when_turned_off_or_short(harness: Harness) -> None:
    harness.manager.partial_save_interval = 0.0
    harness.fake.set_replies(["short answer"])
    frames = await harness.chat("quick?", conversation="c-off")
    assert frames[-1]["type"] == "done"
    rows = harness.store.sync.messages("c-off")
    assert [(m.role, m.status) for m in rows] == [
        ("user", MessageStatus.ANSWERED),
        ("assistant", MessageStatus.COMPLETE),
    ]


async def test_a_late_partial_save_never_overwrites_the_final_answer(harness: Harness) -> None:
    store = harness.store.sync
    store.create_conversation(Conversation("c-late", "alice", "p"))
    question = store.add_message(
        Message("q", "c-late", 0, "user", "q?", "t", status=MessageStatus.PENDING)
    )
    answer = Message("a", "c-late", 0, "assistant", "done.", "t", MessageStatus.COMPLETE)
    store.finish_answer(answer, question.id)
    late = Message("a", "c-late", 0, "assistant", "do", "t", MessageStatus.PENDING)
    assert store.save_partial(late) is False
    assert [(m.content, m.status) for m in store.messages("c-late")][1] == (
        "done.",
        MessageStatus.COMPLETE,
    )


def test_a_partial_answer_left_by_a_crash_is_marked_interrupted(tmp_path: Any) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    store.create_conversation(Conversation("c1", "alice", "p"))
    store.create_conversation(Conversation("c2", "alice", "p"))
    store.add_message(Message("q1", "c1", 0, "user", "long?", "t1", MessageStatus.PENDING))
    store.save_partial(Message("a1", "c1", 0, "assistant", "Half of it", "t1", meta={"x": 1}))
    # Same client turn id in another conversation, with nothing saved: its own record.
    store.add_message(Message("q2", "c2", 0, "user", "other?", "t1", MessageStatus.PENDING))
    store.close()

    store = ConversationStore(tmp_path / "c.sqlite3")
    assert store.close_unanswered("stopped; send it again.") == 2
    one = store.messages("c1")
    assert [(m.role, m.status) for m in one] == [
        ("user", MessageStatus.ANSWERED),
        ("assistant", MessageStatus.INCOMPLETE),
    ]
    assert one[1].content == "Half of it" + INCOMPLETE_MARK
    assert one[1].meta["error"] == {"code": "interrupted", "message": "stopped; send it again."}
    assert one[1].meta["interrupted"] is True and one[1].meta["x"] == 1
    two = store.messages("c2")
    assert [(m.role, m.status, m.content) for m in two][1] == (
        "assistant",
        MessageStatus.ERROR,
        "stopped; send it again.",
    )
    assert store.close_unanswered("again") == 0
    store.close()


def test_a_second_server_leaves_pending_questions_to_the_first(tmp_path: Any) -> None:
    first = ConversationStore(tmp_path / "c.sqlite3")
    assert first.close_unanswered("note") == 0 and not first.shared
    first.create_conversation(Conversation("c1", "alice", "p"))
    first.add_message(Message("q1", "c1", 0, "user", "busy?", "t1", MessageStatus.PENDING))
    # The flock is per open file description, so a second store in this process stands in
    # for a second server process.
    second = ConversationStore(tmp_path / "c.sqlite3")
    assert second.close_unanswered("note") == 0
    assert second.shared
    assert [m.status for m in second.messages("c1")] == [MessageStatus.PENDING]
    first.close()
    second.close()
    # Both gone (a crash releases the lock too): the next server is alone and closes it.
    third = ConversationStore(tmp_path / "c.sqlite3")
    assert third.close_unanswered("note") == 1 and not third.shared
    third.close()


async def test_a_server_stop_mid_answer_says_send_it_again(harness: Harness) -> None:
    # A graceful stop cancels the turn: the record must say the server stopped (as after a
    # crash), not "(stopped)" as if the user had pressed stop.
    harness.fake.update_settings({"chunk_delay": 0.05})
    harness.fake.set_replies(["word " * 80])
    request = ChatRequest(id="t-stop", conversation_id="c-stop", text="long one")
    task, frames = await _stream_until(harness, request, 5)
    await harness.manager.close()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    stored = harness.store.sync.messages("c-stop")
    assert [(m.role, m.status) for m in stored] == [
        ("user", MessageStatus.ANSWERED),
        ("assistant", MessageStatus.INCOMPLETE),
    ]
    answer = stored[1]
    assert answer.content.removesuffix(INCOMPLETE_MARK) == _streamed(frames)
    assert answer.meta["error"]["code"] == "interrupted"
    assert "send it again" in answer.meta["error"]["message"]
