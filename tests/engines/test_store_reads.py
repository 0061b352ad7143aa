"""How often a turn reads the conversation store (issue 12: it read the conversation five
to six times per turn): once when the message arrives, the conversation and its messages
once when the turn starts; the answer, the kind, the task and the summary are written back
without reading again."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from engine_harness import Harness

from rubberduck_jupyter.domain.models import ContextType, Conversation
from rubberduck_jupyter.sessions.store import ConversationStore

READS = ("get_conversation", "messages")


def count_reads(h: Harness) -> Counter[str]:
    """Counts the store reads the session makes (every async call goes through `sync`)."""
    counts: Counter[str] = Counter()
    for name in READS:
        method: Callable[..., Any] = getattr(h.store.sync, name)

        def counted(*args: Any, _name: str = name, _method: Any = method) -> Any:
            counts[_name] += 1
            return _method(*args)

        setattr(h.store.sync, name, counted)
    return counts


async def test_a_turn_reads_the_conversation_once_it_starts(make_harness: Any) -> None:
    h = make_harness()
    h.fake.set_replies(["first answer", "second answer"])
    await h.chat("What does the churn column mean?")
    reads = count_reads(h)
    await h.chat("And how is it computed?")
    # One read to check who may write to it, then the conversation and its messages once.
    assert reads == Counter({"get_conversation": 2, "messages": 1})


async def test_a_turn_that_summarises_reads_no_more(make_harness: Any) -> None:
    h = make_harness(memory_tokens=120)  # ~480 characters of history
    long_answer = "The churn column is the label. " * 8
    h.fake.set_replies([long_answer, long_answer])
    await h.chat("Tell me about the churn dataset, first question")
    reads = count_reads(h)
    await h.chat("And the second question about it")
    summary_calls = [p for p in h.prompts() if "keep the memory" in p[0]["content"]]
    assert len(summary_calls) == 1  # this turn did summarise
    assert reads == Counter({"get_conversation": 2, "messages": 1})
    conversation = h.store.sync.get_conversation("conv-1")
    assert conversation is not None and conversation.summary_upto > 0 and conversation.summary


def test_change_conversation_sets_only_the_fields_named(tmp_path: Any) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    try:
        store.create_conversation(Conversation("c1", "alice", "p", title="Renamed meanwhile"))
        assert store.change_conversation("c1", {"summary": "s", "summary_upto": 4})
        assert store.change_conversation("c1", {"context_type": ContextType.CODE_REVIEW})
        assert store.change_conversation("c1", {"task": {"steps": ["a"]}})
        got = store.get_conversation("c1")
        assert got is not None
        assert (got.title, got.summary, got.summary_upto) == ("Renamed meanwhile", "s", 4)
        assert got.context_type is ContextType.CODE_REVIEW and got.task == {"steps": ["a"]}
        assert not store.change_conversation("gone", {"summary": "x"})
    finally:
        store.close()
