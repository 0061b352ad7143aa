"""Builds the message list for one turn: system prompt, notebook context, history, question."""

from __future__ import annotations

from collections.abc import Sequence

from ..protocol import ChatContext
from .redact import redact, secret_env_values

SYSTEM_PROMPT = (
    "You are RubberDuck, a coding assistant inside JupyterLab. Answer precisely and briefly, "
    "in Markdown. Put code in fenced blocks with a language tag. When the user's notebook "
    "context is given, ground your answer in it; when you are unsure, say so."
)

# Context strings are trimmed so one huge cell cannot crowd out the question.
MAX_CONTEXT_CHARS = 12_000


def _trim(text: str, limit: int = MAX_CONTEXT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [{len(text) - limit} more characters not shown]"


def describe_context(context: ChatContext) -> str | None:
    parts: list[str] = []
    if context.notebook_path:
        parts.append(f"Notebook: {context.notebook_path}")
    if context.active_cell:
        parts.append(f"Active cell:\n```python\n{_trim(context.active_cell)}\n```")
    if context.selection:
        parts.append(f"Selected text:\n```\n{_trim(context.selection)}\n```")
    if context.error:
        parts.append(f"Last error:\n```\n{_trim(context.error)}\n```")
    return "\n\n".join(parts) or None


def build_messages(
    history: Sequence[tuple[str, str]], text: str, context: ChatContext
) -> list[dict[str, str]]:
    """Everything here is about to leave the machine, so all of it is redacted."""
    secrets = secret_env_values()
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for role, content in history:
        messages.append({"role": role, "content": redact(content, secrets)})
    described = describe_context(context)
    question = text if described is None else f"{described}\n\nQuestion:\n{text}"
    messages.append({"role": "user", "content": redact(question, secrets)})
    return messages
