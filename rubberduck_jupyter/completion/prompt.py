"""The prompt of one completion: fill-in-the-middle text, or chat messages.

FIM: the context goes before the code as comments (what a code model has seen above code
in its training data: a path line, notes, other files' code), then the earlier cells, then
the prefix; the suffix is sent as `suffix`. Chat: one system message with the rules (only
the inserted text, no fences, no repeat of what is there, at most `max_lines` lines) and one
user message with the context and the code around a `<CURSOR>` mark.
"""

from __future__ import annotations

from ..llm.completion import CompletionPrompt
from .context import CompletionContext

CURSOR = "<CURSOR>"

CHAT_RULES = (
    "You are a code completion engine inside a Jupyter notebook. Reply with only the text "
    f"to insert at {CURSOR}: no explanation, no Markdown, no code fences, nothing that is "
    f"already before or after {CURSOR}. If nothing useful fits, reply with nothing."
)


def _comment(text: str, language: str) -> str:
    mark = "#" if language in ("python", "r", "julia", "shell", "bash", "") else "//"
    return "\n".join(f"{mark} {line}".rstrip() for line in text.split("\n"))


def _notes(context: CompletionContext, path: str, language: str) -> list[str]:
    notes: list[str] = []
    if path:
        notes.append(_comment(f"Path: {path}", language))
    if context.variables:
        notes.append(
            _comment("Variables in the kernel:\n" + "\n".join(context.variables), language)
        )
    for s in context.snippets:
        notes.append(_comment(f"From {s.location}:\n{s.text}", language))
    return notes


def build_prompt(
    context: CompletionContext,
    *,
    fim: bool,
    path: str,
    language: str,
    multiline: bool,
    max_lines: int,
    max_tokens: int,
) -> CompletionPrompt:
    notes = _notes(context, path, language)
    if fim:
        head = "\n\n".join([*notes, *context.cells])
        prompt = f"{head}\n\n{context.prefix}" if head else context.prefix
        stop = ("\n",) if not multiline else ("\n\n\n", "\n# %%")
        return CompletionPrompt(
            fim=True, prompt=prompt, suffix=context.suffix, max_tokens=max_tokens, stop=stop
        )
    lines = "one line" if not multiline else f"at most {max_lines} lines"
    parts = []
    if notes:
        parts.append("Context:\n" + "\n\n".join(notes))
    if context.cells:
        parts.append(
            "Earlier cells of this notebook, oldest first:\n\n" + "\n\n".join(context.cells)
        )
    where = f" ({path})" if path else ""
    parts.append(
        f"Complete the {language} code at {CURSOR}{where}, {lines}:\n"
        f"{context.prefix}{CURSOR}{context.suffix}"
    )
    messages = (
        {"role": "system", "content": CHAT_RULES},
        {"role": "user", "content": "\n\n".join(parts)},
    )
    return CompletionPrompt(fim=False, messages=messages, max_tokens=max_tokens)
