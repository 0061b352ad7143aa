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
from rubberduck_jupyter.sessions.store import ConversationStore


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
    assert one[1].content == "Half of it"
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
    assert answer.content == _streamed(frames)
    assert answer.meta["error"]["code"] == "interrupted"
    assert "send it again" in answer.meta["error"]["message"]


def _v1_file(path: Any) -> None:
    """A conversation file as schema 1 left it: cut-off answers carried a text suffix."""
    import sqlite3

    store = ConversationStore(path)
    store.create_conversation(Conversation("c1", "alice", "p"))
    store.add_message(Message("q1", "c1", 0, "user", "why?", "t1", MessageStatus.ANSWERED))
    store.add_message(
        Message("a1", "c1", 0, "assistant", "Because", "t1", MessageStatus.INCOMPLETE)
    )
    # An answer that only quotes the old suffix is not cut off: it must keep its text.
    store.add_message(Message("q2", "c1", 0, "user", "quote it", "t2", MessageStatus.ANSWERED))
    store.add_message(Message("a2", "c1", 0, "assistant", "It said:", "t2", MessageStatus.ANSWERED))
    store.close()
    con = sqlite3.connect(str(path), isolation_level=None)
    con.execute(
        "UPDATE messages SET content = content || ? WHERE id IN ('a1', 'a2')",
        ("\n\n[answer cut off]",),
    )
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.close()


def test_schema_1_files_lose_the_cut_off_suffix_only_where_the_status_says_so(
    tmp_path: Any,
) -> None:
    _v1_file(tmp_path / "c.sqlite3")
    store = ConversationStore(tmp_path / "c.sqlite3")
    texts = {m.id: (m.status, m.content) for m in store.messages("c1")}
    assert texts["a1"] == (MessageStatus.INCOMPLETE, "Because")
    assert texts["a2"] == (MessageStatus.ANSWERED, "It said:\n\n[answer cut off]")
    store.close()
    import sqlite3

    con = sqlite3.connect(str(tmp_path / "c.sqlite3"))
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)
    con.close()
    # Opening again changes nothing more (the migration ran once).
    again = ConversationStore(tmp_path / "c.sqlite3")
    assert [m.content for m in again.messages("c1")][1] == "Because"
    again.close()


def test_a_file_from_a_newer_release_is_refused_untouched(tmp_path: Any) -> None:
    import sqlite3

    import pytest

    ConversationStore(tmp_path / "c.sqlite3").close()
    con = sqlite3.connect(str(tmp_path / "c.sqlite3"), isolation_level=None)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(RuntimeError, match="schema 99 is newer"):
        ConversationStore(tmp_path / "c.sqlite3")
    con = sqlite3.connect(str(tmp_path / "c.sqlite3"))
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("99",)
    con.close()


def _cut_off_history() -> tuple[Conversation, list[Message]]:
    conversation = Conversation("c1", "alice", "p", title="Rates")
    return conversation, [
        Message("q1", "c1", 0, "user", "explain", "t1", MessageStatus.ANSWERED),
        Message("a1", "c1", 1, "assistant", "First the", "t1", MessageStatus.INCOMPLETE),
        Message("q2", "c1", 2, "user", "and this?", "t2", MessageStatus.ANSWERED),
        Message("a2", "c1", 3, "assistant", "Done.", "t2", MessageStatus.ANSWERED),
    ]


def test_the_model_is_told_which_remembered_answer_was_cut_off() -> None:
    from rubberduck_jupyter.context.memory import CUT_OFF_NOTE, MemoryWindow, summary_request
    from rubberduck_jupyter.context.prompt import build_turn_messages
    from rubberduck_jupyter.protocol import ChatContext

    conversation, history = _cut_off_history()
    messages = build_turn_messages(
        system="sys",
        preferences="",
        conversation=conversation,
        history=history,
        window=MemoryWindow(budget_tokens=10_000),
        context=ChatContext(),
        question="go on",
    )
    assert [m["content"] for m in messages[1:5]] == [
        "explain",
        "First the" + CUT_OFF_NOTE,
        "and this?",
        "Done.",
    ]
    assert "First the" + CUT_OFF_NOTE in summary_request("", history)
    assert "Done." + CUT_OFF_NOTE not in summary_request("", history)


def test_exports_say_an_answer_was_cut_off() -> None:
    import json

    from rubberduck_jupyter.sessions.export import to_markdown, to_notebook

    conversation, history = _cut_off_history()
    markdown = to_markdown(conversation, history)
    assert "First the\n\n_(The answer was cut off.)_" in markdown
    assert markdown.count("cut off") == 1
    cells = json.loads(to_notebook(conversation, history))["cells"]
    sources = ["".join(c["source"]) for c in cells]
    assert any(s.endswith("First the\n\n_(The answer was cut off.)_") for s in sources)
    assert sum("cut off" in s for s in sources) == 1
