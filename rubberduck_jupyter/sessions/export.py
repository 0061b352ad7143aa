"""A conversation as Markdown or as a notebook (answers' code blocks become code cells)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence

from ..domain.models import Conversation, Message, MessageStatus

_FENCE_LANG = re.compile(r"[\w+-]{0,40}")


def code_blocks(markdown: str) -> list[tuple[str, str]]:
    """(language, code) of each fenced block, read line by line: a DOTALL `(.*?)```` regex
    rescans the rest of the text from every fence, quadratic on a reply full of them."""
    blocks: list[tuple[str, str]] = []
    lang: str | None = None
    lines: list[str] = []
    for line in markdown.splitlines():
        stripped = line.lstrip()
        if lang is None:
            if stripped.startswith("```"):
                match = _FENCE_LANG.match(stripped, 3)
                lang = match.group() if match else ""
                lines = []
        elif stripped.startswith("```"):
            blocks.append((lang, "\n".join(lines) + "\n"))
            lang = None
        else:
            lines.append(line)
    return blocks


def _text(message: Message) -> str:
    """What a reader of the export sees of a message: a cut-off answer says so."""
    text = message.content.rstrip()
    if message.role == "assistant" and message.status is MessageStatus.INCOMPLETE:
        return f"{text}\n\n_(The answer was cut off.)_" if text else "_(The answer was cut off.)_"
    return text


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _speaker(message: Message) -> str:
    if message.role == "user":
        return "You"
    engine = f", {message.engine}" if message.engine else ""
    model = message.meta.get("model")
    return f"RubberDuck{engine}" + (f" ({model})" if model else "")


def to_markdown(conversation: Conversation, messages: Sequence[Message]) -> str:
    lines = [f"# {conversation.title}", "", f"_Exported {_when(time.time())}_", ""]
    for message in messages:
        lines.append(f"### {_speaker(message)} — {_when(message.created_at)}")
        lines.append("")
        lines.append(_text(message))
        sources = message.meta.get("citations") or []
        if sources:
            lines.append("")
            lines.append("Sources: " + "; ".join(f"[{c['n']}] {_where(c)}" for c in sources))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _where(citation: dict[str, object]) -> str:
    if citation.get("cell") is not None:
        return f"{citation['path']}, cell {citation['cell']}"
    if citation.get("start_line") is not None:
        return f"{citation['path']}:{citation['start_line']}-{citation['end_line']}"
    return str(citation["path"])


def to_notebook(conversation: Conversation, messages: Sequence[Message]) -> str:
    """nbformat 4 JSON: each message a markdown cell, each Python block of an answer
    also a code cell right after it (not run), so the notebook is ready to try."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["rubberduck"] = {"conversation_id": conversation.id, "title": conversation.title}
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# {conversation.title}"))
    for message in messages:
        nb.cells.append(
            nbformat.v4.new_markdown_cell(f"**{_speaker(message)}**\n\n{_text(message)}")
        )
        if message.role == "assistant":
            for lang, code in code_blocks(message.content):
                if lang.lower() in ("python", "py", "ipython", ""):
                    nb.cells.append(nbformat.v4.new_code_cell(code.rstrip("\n")))
    nbformat.validate(nb)
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
