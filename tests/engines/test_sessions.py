"""Sessions: message stored first, answers persisted, conversations restored after a
restart, in-order turns per conversation, parallel conversations, a bounded mailbox."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from engine_harness import Harness, answer_text, joined

from rubberduck_jupyter.domain.models import MessageStatus
from rubberduck_jupyter.protocol import ChatContext, ChatRequest


async def test_user_message_is_stored_before_the_model_is_called(harness: Harness) -> None:
    seen_at_call: list[list[tuple[str, str]]] = []
    real_stream = harness.llm.stream

    def spying_stream(**kwargs: Any) -> Any:
        # What the database holds the moment the model is asked (read from another thread).
        rows = harness.store.sync.messages("conv-1")
        seen_at_call.append([(m.role, m.content) for m in rows])
        return real_stream(**kwargs)

    harness.manager.model = type("Spy", (), {"stream": staticmethod(spying_stream)})()
    harness.fake.set_replies(["Use a left join."])
    frames = await harness.chat("how do I join two frames?")
    assert frames[-1]["type"] == "done"
    assert seen_at_call == [[("user", "how do I join two frames?")]]
    stored = harness.store.sync.messages("conv-1")
    assert [(m.role, m.status) for m in stored] == [
        ("user", MessageStatus.ANSWERED),
        ("assistant", MessageStatus.COMPLETE),
    ]
    assert stored[1].content == "Use a left join."
    assert stored[1].engine == "simple"
    assert stored[1].meta["route"]["engine"] == "simple"


async def test_a_failed_turn_keeps_the_message_and_records_the_error(harness: Harness) -> None:
    harness.fake.add_faults(["500", "500"])
    frames = await harness.chat("what is a groupby?")
    assert frames[-1]["type"] == "error"
    stored = harness.store.sync.messages("conv-1")
    assert stored[0].content == "what is a groupby?"
    assert stored[1].status is MessageStatus.ERROR
    assert stored[1].meta["error"]["code"] == frames[-1]["code"]
    # The error record is not fed back to the model as something the assistant said.
    harness.fake.set_replies(["A split-apply-combine."])
    await harness.chat("try again please")
    last_prompt = harness.prompts()[-1]
    assert [m["role"] for m in last_prompt] == ["system", "user", "user"]


async def test_conversation_is_restored_after_a_restart(make_harness: Any) -> None:
    first = make_harness()
    first.fake.set_replies(["Call df.dropna(subset=['price'])."])
    await first.chat("How do I drop rows with a missing price?", conversation="c-restart")
    await first.close()

    second = make_harness()  # same database file: a new server process
    listed = second.store.sync.list_conversations("alice")
    assert [c["id"] for c in listed] == ["c-restart"]
    assert listed[0]["title"] == "How do I drop rows with a missing price?"
    second.fake.set_replies(["Pass how='all'."])
    frames = await second.chat("and only when all columns are missing?", conversation="c-restart")
    assert frames[-1]["type"] == "done"
    prompt = joined(second.prompts()[-1])
    assert "How do I drop rows with a missing price?" in prompt
    assert "Call df.dropna(subset=['price'])." in prompt
    assert len(second.store.sync.messages("c-restart")) == 4


async def test_turns_of_one_conversation_run_in_order(harness: Harness) -> None:
    harness.fake.update_settings({"chunk_delay": 0.02})
    harness.fake.set_replies(["first answer " * 5, "second answer"])
    results = await asyncio.gather(harness.chat("question one"), harness.chat("question two"))
    assert [answer_text(r) for r in results] == ["first answer " * 5, "second answer"]
    stored = harness.store.sync.messages("conv-1")
    # The second question waited for the first answer: it saw it in its prompt.
    assert "first answer" in joined(harness.prompts()[1])
    assert [m.role for m in stored] == ["user", "user", "assistant", "assistant"]


async def test_other_conversations_do_not_wait(harness: Harness) -> None:
    harness.fake.add_faults(["slow_first_byte"])
    harness.fake.update_settings({"slow_first_byte_seconds": 5.0})
    slow = asyncio.ensure_future(harness.chat("slow one", conversation="c-slow"))
    # The queued fault goes to the next request the fake sees: wait until that was the
    # slow one (a fixed sleep lost this race on a loaded machine).
    for _ in range(100):
        if harness.fake.requests:
            break
        await asyncio.sleep(0.05)
    assert harness.fake.requests, "the slow question never reached the provider"
    harness.fake.set_replies(["quick answer"])
    fast = await asyncio.wait_for(harness.chat("quick one", conversation="c-fast"), 4)
    assert answer_text(fast) == "quick answer"
    assert not slow.done()
    slow.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await slow


async def test_cancel_keeps_the_partial_answer(harness: Harness) -> None:
    harness.fake.update_settings({"chunk_delay": 0.05})
    harness.fake.set_replies(["word " * 60])
    frames: list[dict[str, Any]] = []
    streaming = asyncio.Event()

    async def emit(frame: dict[str, Any]) -> None:
        frames.append(frame)
        if frame["type"] == "chunk":
            streaming.set()

    request = ChatRequest(id="t-cancel", conversation_id="c-cancel", text="tell me a story")
    task = asyncio.ensure_future(harness.manager.run_turn("alice", request, emit))
    await asyncio.wait_for(streaming.wait(), 10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.2)
    stored = harness.store.sync.messages("c-cancel")
    assert stored[0].content == "tell me a story"
    assert stored[1].status is MessageStatus.INCOMPLETE
    assert stored[1].content.startswith("word")
    assert stored[1].content.rstrip().endswith("word")  # what streamed, nothing appended
    assert harness.fake.active_streams == 0


async def test_a_full_mailbox_answers_busy_and_keeps_the_message(make_harness: Any) -> None:
    h = make_harness()
    h.manager.registry.mailbox_size = 1
    h.fake.update_settings({"chunk_delay": 0.05})
    h.fake.set_replies(["a " * 30, "b", "c"])
    first = asyncio.ensure_future(h.chat("one"))
    await asyncio.sleep(0.2)  # "one" is being answered; the mailbox is empty again
    second = asyncio.ensure_future(h.chat("two"))  # waits in the mailbox
    await asyncio.sleep(0.05)
    third = await h.chat("three")
    assert third[-1]["type"] == "error" and third[-1]["code"] == "busy"
    await asyncio.gather(first, second)
    contents = [(m.role, m.content) for m in h.store.sync.messages("conv-1")]
    assert ("user", "three") in contents


async def test_another_users_conversation_is_not_found(harness: Harness) -> None:
    harness.fake.set_replies(["hello alice"])
    await harness.chat("hi", conversation="c-alice")
    frames = await harness.chat("let me in", conversation="c-alice", user="mallory")
    assert frames == [
        {
            "type": "error",
            "id": frames[0]["id"],
            "code": "not_found",
            "message": "No conversation 'c-alice'.",
        }
    ]
    assert [m.content for m in harness.store.sync.messages("c-alice")] == ["hi", "hello alice"]


async def test_first_turn_sets_title_and_context_type(harness: Harness) -> None:
    harness.fake.set_replies(["steps..."] * 6)
    await harness.chat("/fix it crashes", context=ChatContext(error="ValueError: bad"))
    conversation = harness.store.sync.get_conversation("conv-1")
    assert conversation is not None
    assert conversation.title == "it crashes"
    assert str(conversation.context_type) == "bug_fix"


async def test_messages_left_pending_by_a_crash_are_closed_at_start(make_harness: Any) -> None:
    from rubberduck_jupyter.domain.models import Conversation, Message

    h = make_harness()
    store = h.store.sync
    store.create_conversation(Conversation("c-crash", "alice", "p"))
    # As if the server died mid-turn: the question was stored, no answer followed.
    store.add_message(
        Message("q1", "c-crash", 0, "user", "unanswered?", "t1", status=MessageStatus.PENDING)
    )
    assert store.close_unanswered("The server stopped before this was answered.") == 1
    rows = store.messages("c-crash")
    assert [(m.role, m.status) for m in rows] == [
        ("user", MessageStatus.ANSWERED),
        ("assistant", MessageStatus.ERROR),
    ]
    assert rows[1].meta["error"]["code"] == "interrupted"
    assert store.close_unanswered("again") == 0


async def test_a_store_failure_is_reported_not_swallowed(harness: Harness) -> None:
    harness.store.sync.close()  # the database is gone from under the server
    frames = await harness.chat("will this be saved?")
    assert [f["type"] for f in frames] == ["error"]
    assert frames[0]["code"] == "internal"
    assert "could not save your message" in frames[0]["message"]
    assert harness.fake.requests == []


def test_titles_leave_out_the_slash_command() -> None:
    from rubberduck_jupyter.sessions.manager import title_from

    assert title_from("/review") == "Review"
    assert (
        title_from("/fix", ChatContext(notebook_path="etl.ipynb")) == "Fix the error in etl.ipynb"
    )
    # A command says what it is about, not "this cell".
    cell = ChatContext(notebook_path="work/etl.ipynb", cell_index=2)
    assert title_from("/review this cell", cell) == "Review of cell 3 in etl.ipynb"
    assert title_from("/review", cell) == "Review of cell 3 in etl.ipynb"
    assert title_from("/review calc.py", cell) == "Review of calc.py"
    assert title_from("/review src/pkg/calc.py") == "Review of calc.py"
    assert title_from("/explain this notebook", ChatContext(notebook_path="etl.ipynb")) == (
        "Explanation of etl.ipynb"
    )
    error = "Traceback (most recent call last):\n  ...\nKeyError: 'b'"
    failed = ChatContext(notebook_path="etl.ipynb", cell_index=1, error=error)
    assert title_from("/fix", failed) == "Fix the KeyError in cell 2 in etl.ipynb"
    assert title_from("/review is this loop slow?", cell) == "is this loop slow?"
    assert title_from("  how   do I\npivot? ") == "how do I pivot?"
    assert len(title_from("x" * 500)) == 60


async def test_a_bug_before_the_engine_runs_still_ends_the_turn(harness: Harness) -> None:
    def broken_route(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("router bug")

    harness.manager.router.route = broken_route  # type: ignore[method-assign]
    frames = await harness.chat("anything")
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "internal"
    stored = harness.store.sync.messages("conv-1")
    assert [(m.role, m.status) for m in stored] == [
        ("user", MessageStatus.ANSWERED),
        ("assistant", MessageStatus.ERROR),
    ]
