"""The conversation memory a prompt carries: a summary of older turns plus the newest
turns that fit the token budget.

Tokens are estimated at ~4 characters each (the same rule the LLM service admits requests
by): exact counts would need each provider's tokenizer, and a budget only needs to be safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..domain.models import Message, MessageStatus

CHARS_PER_TOKEN = 4
# After summarising, the kept window is trimmed to this share of the budget, so the next
# few turns fit without summarising again at once.
REFILL_SHARE = 0.6


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def conversation_order(messages: Sequence[Message]) -> list[Message]:
    """Finished turns in the order they were asked, each question before its answer.

    Storage order (`seq`) interleaves when a second question arrives while the first is
    being answered; a prompt must pair each question with its own answer. Questions still
    waiting (pending) and error records are not part of the remembered conversation.
    """
    asked = {m.turn_id: m.seq for m in messages if m.role == "user"}
    kept = [m for m in messages if m.status not in (MessageStatus.PENDING, MessageStatus.ERROR)]
    return sorted(kept, key=lambda m: (asked.get(m.turn_id, m.seq), m.role != "user", m.seq))


@dataclass(frozen=True)
class MemoryWindow:
    """`summary_upto` counts the messages of `conversation_order` the summary covers."""

    budget_tokens: int  # for history and summary together

    def select(self, history: Sequence[Message], summary_upto: int) -> list[Message]:
        """The newest messages not covered by the summary that fit the budget, in order."""
        kept: list[Message] = []
        used = 0
        for message in reversed(history[summary_upto:]):
            cost = estimate_tokens(message.content)
            if kept and used + cost > self.budget_tokens:
                break
            kept.append(message)
            used += cost
        return list(reversed(kept))

    def overflow(self, history: Sequence[Message], summary_upto: int) -> list[Message]:
        """Messages to fold into the summary: empty while everything still fits.

        Once the unsummarised messages exceed the budget, the oldest are returned until
        the rest fits in REFILL_SHARE of it.
        """
        open_messages = list(history[summary_upto:])
        total = sum(estimate_tokens(m.content) for m in open_messages)
        if total <= self.budget_tokens:
            return []
        target = int(self.budget_tokens * REFILL_SHARE)
        out: list[Message] = []
        for message in open_messages[:-1]:  # the newest message always stays verbatim
            if total <= target:
                break
            out.append(message)
            total -= estimate_tokens(message.content)
        return out


SUMMARY_PROMPT = (
    "You keep the memory of a conversation between a data scientist and RubberDuck, a "
    "coding assistant in JupyterLab. Write a compact summary of the conversation so far: "
    "the user's goals, facts about their data and code, decisions made, code that was "
    "agreed on (names and signatures, not full listings), and open questions. At most 200 "
    "words, plain sentences or bullets. Output only the summary."
)


def summary_request(previous_summary: str, messages: Sequence[Message]) -> str:
    parts = []
    if previous_summary:
        parts.append(f"Summary so far:\n{previous_summary}")
    lines = [f"{m.role.upper()}: {m.content}" for m in messages]
    parts.append("Newer messages to fold in:\n" + "\n\n".join(lines))
    return "\n\n".join(parts)


def extractive_summary(previous_summary: str, messages: Sequence[Message], limit: int) -> str:
    """Without a model: the first line of each older message, newest kept when too long."""
    lines = [previous_summary] if previous_summary else []
    for message in messages:
        first = message.content.strip().splitlines()[0] if message.content.strip() else ""
        if first:
            who = "User" if message.role == "user" else "RubberDuck"
            lines.append(f"- {who}: {first[:160]}")
    text = "\n".join(lines)
    return text[-limit:] if len(text) > limit else text
