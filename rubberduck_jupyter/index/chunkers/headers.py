"""The one-line header over each code chunk: where it is and what it defines.

    # tornado/httputil.py: url_concat(url, args) — Concatenate url and arguments regardless ...
    # tornado/locks.py: Condition.notify_all() — Wake all waiters. (A condition allows ...)
    # tornado/escape.py: module — Escaping/unescaping methods for HTML, JSON, URLs, and others.

It is part of the chunk's text, so the embedder and BM25 both read it, and every part of a
split definition repeats it: the tail of a long method still says whose tail it is. BM25
weighs its fields (`header_fields`: all but the path) more than the body (bm25.py,
HEADER_TERM_WEIGHT). Line numbers stay the code's (the header is the line before
`start_line`). Kept short, because
every token of it is a token less for the code: the signature is the parameter names up
to MAX_SIGNATURE_CHARS, the summary is the docstring's first sentence up to
MAX_SUMMARY_CHARS, and `pack.clip_header` bounds the whole to a quarter of the window. A
method's summary is followed by its class's in parentheses (code.py): the method's own
rarely says what it acts on (measured, benchmarks/index_quality.py, minilm, hybrid hit@5 /
MRR: tornado 0.825/0.684 -> 0.841/0.698, held-out traitlets 0.946/0.778 -> 0.946/0.783,
stdlib 0.889/0.856 and notebooks 0.981/0.983 unchanged).
"""

from __future__ import annotations

import re

MAX_SIGNATURE_CHARS = 80
MAX_SUMMARY_CHARS = 120
SUMMARY_SEPARATOR = " — "

# A sentence ends at ".", "!" or "?" before a space: "e.g. this" is rare in a first line.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
# What opens or closes a comment line or a string literal, to be stripped before reading it.
# Only the opening is a regex, anchored: an unanchored `\s*\*+/\s*$` for the closing one
# rescans a run of spaces from every position in it (quadratic: 1.3 s on 12,000 spaces).
_COMMENT_OPEN = re.compile(r"^\s*(?:/\*+|\*+/?|//+|#+)\s?")
_STRING_OPEN = re.compile(r"^[rRbBuUfF]*(\"\"\"|'''|\"|')")


def definition_header(
    comment: str, rel_path: str, title: str, signature: str = "", summary: str = ""
) -> str:
    text = f"{comment} {rel_path}: {title}{signature}"
    return f"{text}{SUMMARY_SEPARATOR}{summary}" if summary else text


def header_fields(text: str) -> str:
    """What a code chunk's header says after the path: qualified name, signature and
    summary ("url_concat(url, args) — Concatenate url ..."), "" if the first line of `text`
    is not a header. The path is left out: every chunk of the file repeats it."""
    first = text.split("\n", 1)[0]
    _, colon, fields = first.partition(": ")
    return fields if colon else ""


def clip(text: str, limit: int) -> str:
    """`text` on one line, cut at a word boundary to at most about `limit` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip(" ,;:") + " ..."


def summary(text: str) -> str:
    """The first sentence of the first paragraph of a docstring or comment, clipped."""
    lines: list[str] = []
    for line in text.strip().splitlines():
        line = line.strip()
        if not line:
            if lines:
                break
            continue
        if line.startswith("@") or line.startswith(":"):  # JSDoc tags, reST fields
            break
        lines.append(line)
    paragraph = " ".join(lines)
    first = _SENTENCE_END.split(paragraph, maxsplit=1)[0]
    return clip(first, MAX_SUMMARY_CHARS)


def string_summary(literal: str) -> str:
    """The summary of a string literal's source text (prefix and quotes stripped)."""
    opened = _STRING_OPEN.match(literal)
    if opened is None:
        return ""
    quote = opened.group(1)
    body = literal[opened.end() :]
    if body.endswith(quote):
        body = body[: -len(quote)]
    return summary(body)


def comment_summary(lines: list[str]) -> str:
    """The summary of a comment block given as source lines (`#`, `//`, `/* */`, JSDoc)."""
    return summary("\n".join(_comment_text(line) for line in lines))


def _comment_text(line: str) -> str:
    line = _COMMENT_OPEN.sub("", line, count=1)
    stripped = line.rstrip()
    if stripped.endswith("*/"):
        return stripped[:-2].rstrip("*").rstrip()
    return line


def signature(names: list[str]) -> str:
    """`(a, b, *rest)`: the parameter names alone. Annotations and defaults cost tokens in
    every part of a chunk and matched questions worse on our code question set (tornado,
    BM25 hit@5 0.698 with them, 0.714 without); the code line itself still has them."""
    return clip("(" + ", ".join(names) + ")", MAX_SIGNATURE_CHARS)
