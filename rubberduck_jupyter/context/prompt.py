"""Builds the messages of a model call: system prompt and preferences, the summary of
older turns, the recent turns that fit the budget, then the notebook context, retrieved
sources and the question. Everything here is about to leave the machine: the LLM
service redacts every message at its door (context.redact.Redactor); what only this module
can know, that a kernel variable's name marks its value as a secret, is handled here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypedDict

from ..protocol import ChatContext
from .redact import REDACTED, is_secret_name

if TYPE_CHECKING:
    from ..domain.models import Conversation, Message
    from .memory import MemoryWindow
    from .mentions import Resolved
    from .retrieval import Citation


class ChatMessage(TypedDict):
    role: str
    content: str


BASE_PROMPT = (
    "You are RubberDuck, a coding assistant inside JupyterLab. Answer precisely, in "
    "Markdown. Put code in fenced blocks with a language tag. When the user's notebook "
    "context is given, ground your answer in it; when you are unsure, say so."
)

# Context strings are trimmed so one huge cell cannot crowd out the question.
MAX_CONTEXT_CHARS = 12_000
MAX_VARIABLES_IN_PROMPT = 60
# The model writes the summary of older turns; it goes into every later prompt, so its
# size is bounded here whatever the model returned.
MAX_SUMMARY_CHARS = 8_000


# The active cell's fence by its type: a markdown cell fenced as python misleads the model.
_FENCES = {"code": "python", "markdown": "markdown", "raw": ""}


def _trim(text: str, limit: int = MAX_CONTEXT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [{len(text) - limit} more characters not shown]"


def _summary(name: str, summary: str) -> str:
    # `aws_secret = "..."` in the kernel: the summary is the value's repr, whatever shape.
    return REDACTED if is_secret_name(name) else summary


def describe_context(context: ChatContext) -> str | None:
    parts: list[str] = []
    if context.notebook_path:
        where = f"Notebook: {context.notebook_path}"
        if context.cell_index is not None:
            # Numbered from 1, as the sidebar's chips and `@cell:N` number cells, so the
            # model's "cell 3" is the user's cell 3.
            kind = f", {context.cell_type}" if context.cell_type else ""
            where += f" (active cell {context.cell_index + 1}{kind})"
        parts.append(where)
    if context.active_cell:
        fence = _FENCES.get(context.cell_type or "code", "python")
        parts.append(f"Active cell:\n```{fence}\n{_trim(context.active_cell)}\n```")
    if context.selection:
        parts.append(f"Selected text:\n```\n{_trim(context.selection)}\n```")
    if context.error:
        parts.append(f"Last error:\n```\n{_trim(context.error)}\n```")
    if context.variables:
        lines = [
            f"- {v.name}: {v.type}" + (f" — {_summary(v.name, v.summary)}" if v.summary else "")
            for v in context.variables[:MAX_VARIABLES_IN_PROMPT]
        ]
        more = len(context.variables) - MAX_VARIABLES_IN_PROMPT
        if more > 0:
            lines.append(f"- … and {more} more")
        parts.append("Kernel variables:\n" + "\n".join(lines))
    return "\n\n".join(parts) or None


def build_turn_messages(
    *,
    system: str,
    preferences: str,
    conversation: Conversation,
    history: Sequence[Message],
    window: MemoryWindow,
    context: ChatContext,
    question: str,
    retrieved: Sequence[Citation] = (),
    include_context: bool = True,
    include_history: bool = True,
    mentioned: Resolved | None = None,
    rules: str = "",
) -> list[ChatMessage]:
    """`rules`: the project rules that apply (context/rules.py), part of the system prompt
    so every engine follows them."""
    from .memory import model_text
    from .mentions import format_attachments
    from .retrieval import format_retrieved

    system_text = "\n\n".join(part for part in (system, preferences, rules) if part)
    messages: list[ChatMessage] = [{"role": "system", "content": system_text}]
    if include_history:
        if conversation.summary:
            messages.append(
                {
                    "role": "system",
                    "content": "Summary of the earlier conversation:\n"
                    + _trim(conversation.summary, MAX_SUMMARY_CHARS),
                }
            )
        for message in window.select(history, conversation.summary_upto):
            role = "assistant" if message.role == "assistant" else "user"
            messages.append({"role": role, "content": model_text(message)})
    parts: list[str] = []
    described = describe_context(context) if include_context else None
    if described:
        parts.append(described)
    # What the user attached with @ goes even where an engine leaves the notebook out:
    # the user asked for it by name.
    attached = format_attachments(mentioned.attachments) if mentioned else None
    if attached:
        parts.append(attached)
    if mentioned and mentioned.refusals:
        parts.append(
            "Not attached (tell the user if it matters):\n"
            + "\n".join(f"- {r}" for r in mentioned.refusals)
        )
    if retrieved:
        parts.append(
            "Sources from the user's project (cite them as [n] where you use them):\n\n"
            + format_retrieved(retrieved)
        )
    parts.append(f"Question:\n{question}" if parts else question)
    messages.append({"role": "user", "content": "\n\n".join(parts)})
    return messages
