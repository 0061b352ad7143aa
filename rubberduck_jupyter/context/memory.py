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


# An answer cut off (provider failure, stop, server restart) is stored as exactly what
# streamed; the model is told, so it neither takes the fragment as finished nor repeats it.
CUT_OFF_NOTE = "\n\n[this answer was cut off before it finished]"


def model_text(message: Message) -> str:
    """A remembered message as the model reads it: cut-off answers say so."""
    if message.role == "assistant" and message.status is MessageStatus.INCOMPLETE:
        return message.content + CUT_OFF_NOTE
    return message.content


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def conversation_order(messages: Sequence[Message]) -> list[Message]:
    """Finished turns in the order they were asked, each question before its answer.

    Storage order (`seq`) interleaves when a second question arrives while the first is
    being answered; a prompt must pair each question with its own answer. Questions still
    waiting (pending) and error records are not part of the remembered conversation.
    """
    kept = [m for m in messages if m.status not in (MessageStatus.PENDING, MessageStatus.ERROR)]
    return display_order(kept)


def display_order(messages: Sequence[Message]) -> list[Message]:
    """Every message, each question followed by its own answer, questions as asked.

    What a client shows, pending questions and error records included: the client draws
    a conversation in the order the server sends it, and this is that order.
    """
    asked = {m.turn_id: m.seq for m in messages if m.role == "user"}
    return sorted(messages, key=lambda m: (asked.get(m.turn_id, m.seq), m.role != "user", m.seq))


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


# A summary request is bounded like every other prompt: a 100,000-character message that
# overflows the memory window would otherwise be sent whole to be summarised (and the
# request grows with every message folded in). ~6k tokens in all; each message keeps its
# head and tail, which is what a 200-word summary can use of it anyway.
SUMMARY_REQUEST_CHARS = 24_000
SUMMARY_MESSAGE_CHARS = 4_000
SUMMARY_MESSAGE_MIN_CHARS = 400
SUMMARY_PREVIOUS_CHARS = 4_000


def clip_text(text: str, limit: int) -> str:
    """`text` in at most about `limit` characters: head and tail, with a marker between."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = max(0, limit - head - 40)
    return f"{text[:head]}\n[… {len(text) - head - tail} characters left out …]\n" + (
        text[len(text) - tail :] if tail else ""
    )


def summary_request(previous_summary: str, messages: Sequence[Message]) -> str:
    """What the summariser is asked to fold in, at most ~SUMMARY_REQUEST_CHARS."""
    parts = []
    if previous_summary:
        parts.append(f"Summary so far:\n{clip_text(previous_summary, SUMMARY_PREVIOUS_CHARS)}")
    share = SUMMARY_REQUEST_CHARS // max(1, len(messages))
    each = max(SUMMARY_MESSAGE_MIN_CHARS, min(SUMMARY_MESSAGE_CHARS, share))
    lines = [f"{m.role.upper()}: {clip_text(model_text(m), each)}" for m in messages]
    body = "\n\n".join(lines)
    # Many small messages at the floor can still add up: keep the newest that fit.
    body = body[-SUMMARY_REQUEST_CHARS:] if len(body) > SUMMARY_REQUEST_CHARS else body
    parts.append("Newer messages to fold in:\n" + body)
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
