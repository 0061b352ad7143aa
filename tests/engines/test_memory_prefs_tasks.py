"""Memory (window + summary), preferences, and multi-step tasks across turns and restarts."""

from __future__ import annotations

from typing import Any

from engine_harness import Harness, answer_text, frames_of, joined

from rubberduck_jupyter.context.memory import MemoryWindow, conversation_order, display_order
from rubberduck_jupyter.domain.models import Message, MessageStatus
from rubberduck_jupyter.domain.preferences import (
    PreferenceError,
    Preferences,
    learn_from_message,
    parse_prefs_command,
)


def _msg(
    i: int, role: str, text: str, turn: str, status: MessageStatus = MessageStatus.COMPLETE
) -> Message:
    return Message(f"m{i}", "c", i, role, text, turn, status=status)


def test_conversation_order_pairs_questions_with_their_answers() -> None:
    stored = [
        _msg(0, "user", "q1", "t1", MessageStatus.ANSWERED),
        _msg(1, "user", "q2", "t2", MessageStatus.ANSWERED),
        _msg(2, "assistant", "a1", "t1"),
        _msg(3, "assistant", "a2", "t2"),
        _msg(4, "user", "q3", "t3", MessageStatus.PENDING),
        _msg(5, "assistant", "oops", "t9", MessageStatus.ERROR),
    ]
    assert [m.content for m in conversation_order(stored)] == ["q1", "a1", "q2", "a2"]
    # What a client is sent keeps the pending question and the error, in the same order.
    assert [m.content for m in display_order(stored)] == ["q1", "a1", "q2", "a2", "q3", "oops"]


def test_window_keeps_the_newest_that_fit_and_overflows_the_oldest() -> None:
    history = [
        _msg(i, "user" if i % 2 == 0 else "assistant", "x" * 400, f"t{i // 2}") for i in range(6)
    ]
    window = MemoryWindow(budget_tokens=350)  # ~100 tokens each: three fit
    assert [m.seq for m in window.select(history, 0)] == [3, 4, 5]
    overflow = window.overflow(history, 0)
    assert [m.seq for m in overflow] == [0, 1, 2, 3]  # down to 60% of the budget
    assert window.overflow(history, 4) == []


async def test_summary_replaces_old_turns_when_the_window_fills(make_harness: Any) -> None:
    h = make_harness(memory_tokens=120)  # ~480 characters of history
    long_answer = "The churn column is the label. " * 8  # ~250 characters
    h.fake.set_replies([long_answer, long_answer])
    await h.chat("Tell me about the churn dataset, first question")
    await h.chat("And the second question about it")
    # The second turn filled the window: a summary call was made after it.
    summary_calls = [p for p in h.prompts() if "keep the memory" in p[0]["content"]]
    assert len(summary_calls) == 1
    assert "first question" in joined(summary_calls[0])
    conversation = h.store.sync.get_conversation("conv-1")
    assert conversation is not None and conversation.summary_upto > 0
    assert conversation.summary  # the fake echoed the request back as the "summary"
    h.fake.set_replies(["third answer"])
    await h.chat("third")
    prompt = h.prompts()[-1]
    assert prompt[1]["role"] == "system"
    assert prompt[1]["content"].startswith("Summary of the earlier conversation:")
    # The oldest question now lives only in the summary, not as a message of its own.
    assert not any(
        m["content"] == "Tell me about the churn dataset, first question" for m in prompt
    )


async def test_summary_without_a_model_is_extractive(make_harness: Any) -> None:
    h = make_harness(with_model=False, memory_tokens=40)
    for i in range(3):
        await h.chat(f"/prefs style=concise  # turn {i}" if i == 0 else f"/help {i}")
    conversation = h.store.sync.get_conversation("conv-1")
    assert conversation is not None
    assert conversation.summary_upto > 0
    assert "- User:" in conversation.summary


def test_preferences_parse_validate_and_learn() -> None:
    prefs = parse_prefs_command(
        'style=concise prefer=polars,plotly notes="metric units"', Preferences()
    )
    assert (prefs.style, prefs.prefer, prefs.notes) == (
        "concise",
        ("polars", "plotly"),
        "metric units",
    )
    try:
        parse_prefs_command("style=shouty", prefs)
    except PreferenceError as exc:
        assert "style must be one of" in str(exc)
    else:
        raise AssertionError("a bad style must be refused")
    learned = learn_from_message("I prefer seaborn over matplotlib. Don't use pandas.", prefs)
    assert learned.prefer[0] == "seaborn"
    assert set(learned.avoid) == {"matplotlib", "pandas"}
    assert learn_from_message("I use it every day", Preferences()) == Preferences()


async def test_preferences_are_remembered_and_reach_the_prompt(make_harness: Any) -> None:
    h = make_harness()
    frames = await h.chat("/prefs style=concise prefer=polars")
    assert "Saved" in answer_text(frames)
    assert h.prompts() == []  # /prefs never calls the model
    h.fake.set_replies(["ok"])
    await h.chat("I prefer plotly over matplotlib, how do I plot a histogram?", conversation="c2")
    system = h.prompts()[-1][0]["content"]
    assert "Keep answers short" in system
    assert "polars" in system and "plotly" in system
    assert "Do not use these libraries unless asked: matplotlib" in system
    # Restart: preferences come back from the database.
    again = make_harness()
    again.fake.set_replies(["ok"])
    await again.chat("another question", conversation="c3")
    assert "plotly" in again.prompts()[-1][0]["content"]


async def test_multi_step_task_without_a_model_persists_across_restart(make_harness: Any) -> None:
    h = make_harness(with_model=False)
    frames = await h.chat("/plan churn model: load the data; clean columns; fit a model")
    task = frames_of(frames, "task")[-1]["task"]
    assert [s["title"] for s in task["steps"]] == ["load the data", "clean columns", "fit a model"]
    assert task["current"] == 0
    frames = await h.chat("next")
    assert frames_of(frames, "route")[0]["engine"] == "multi_step"
    assert frames_of(frames, "task")[-1]["task"]["current"] == 1
    await h.close()
    restarted = make_harness(with_model=False)
    frames = await restarted.chat("skip")
    task = frames_of(frames, "task")[-1]["task"]
    assert [s["status"] for s in task["steps"]] == ["done", "skipped", "todo"]
    assert "Step 3 of 3: fit a model" in answer_text(frames)
    frames = await restarted.chat("done")
    assert "Every step is done" in answer_text(frames)
    conversation = restarted.store.sync.get_conversation("conv-1")
    assert conversation is not None and conversation.task is None


async def test_multi_step_plans_with_the_model_and_works_on_each_step(harness: Harness) -> None:
    harness.fake.set_replies(
        [
            "1. Load the CSV\n2. Engineer features\n3. Train a classifier",
            "Use pd.read_csv",
            "Use get_dummies",
        ]
    )
    frames = await harness.chat("/plan predict churn from the customers table")
    steps = frames_of(frames, "task")[-1]["task"]["steps"]
    assert steps[0]["title"] == "Load the CSV"
    assert "Use pd.read_csv" in answer_text(frames)
    step_prompt = joined(harness.prompts()[1])
    assert "Current step: Load the CSV" in step_prompt
    frames = await harness.chat("next")
    assert "Step 2 of 3: Engineer features" in answer_text(frames)
    assert "Current step: Engineer features" in joined(harness.prompts()[2])
