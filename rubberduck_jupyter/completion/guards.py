"""Quality guards: a raw completion cut to where it stops being consistent with the cell.

In order (`trim_completion`): special tokens and code fences out (chat models wrap code in
```, FIM models end with their end-of-text tokens); a repeat of the cursor line's own text
dropped (chat models restate what is typed); cut at the first line that starts a new cell
(`# %%`, `In [n]:`); one line unless `multiline`, at most `max_lines`; cut where the
completion starts to repeat the suffix (the text after the cursor is already there); cut
at the first closing bracket nothing opened (it belongs to the suffix's code) and back to
the last balanced point when it leaves brackets open that the suffix does not close; a
whole statement must parse (`ast`), else it is cut to the whole lines that do; and an
empty result, or one that only repeats the lines above, becomes "".

Each rule is linear in the completion plus the part of the prefix it scans (the cursor
line; brackets over the last `BRACKET_SCAN_CHARS`), so the guards cost microseconds for a
completion of a few lines (tests/unit/test_completion_guards.py holds the table).
"""

from __future__ import annotations

import ast
import re
import textwrap

OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {v: k for k, v in OPENERS.items()}
# Open brackets at the cursor are looked for this far back: a statement spanning more than
# a screenful of brackets is rare, and the scan stays cheap on a 100 kB file.
BRACKET_SCAN_CHARS = 4_000
# A suffix overlap shorter than this is only cut when it is punctuation (")" or "]:"),
# so a completion ending in "e" is not cut because the suffix starts with "e".
MIN_WORD_OVERLAP = 4

_SPECIAL_TOKEN = re.compile(r"<\|[a-z_]+\|>|<(?:EOT|EOS|/s|fim_\w+|file_sep)>|<\uff5c[^<>]*>")
# `[ \t]*`, not `\s*`: from every line start `\s*` would rescan a run of blank lines.
_NEW_CELL = re.compile(r"^[ \t]*(?:# ?%%|#\s*In\s*\[\d*\]|In\s*\[\d*\]:)", re.M)
_FENCE = re.compile(r"^\s*```[\w+-]*[ \t]*\n?")


def trim_completion(
    text: str, prefix: str, suffix: str, *, multiline: bool = True, max_lines: int = 10
) -> str:
    """The part of `text` (what the model proposed at the cursor) worth showing."""
    text = _strip_wrapping(text)
    line_start = prefix[prefix.rfind("\n") + 1 :]
    text = _drop_restated_line(text, line_start)
    match = _NEW_CELL.search(text)
    if match is not None:
        text = text[: match.start()]
    text = _limit_lines(text, multiline, max_lines)
    text = _cut_suffix_repeat(text, suffix)
    text = _balance(text, prefix, suffix)
    text = _parses_or_cut(text, prefix, suffix)
    text = text.rstrip() if not suffix.strip() or "\n" in text else text
    if not text.strip() or _repeats_prefix(text, prefix):
        return ""
    return text


def _strip_wrapping(text: str) -> str:
    match = _SPECIAL_TOKEN.search(text)
    if match is not None:
        text = text[: match.start()]
    fence = _FENCE.match(text)
    if fence is not None:
        text = text[fence.end() :]
    end = text.find("```")
    if end != -1:
        text = text[:end]
    return text


def _drop_restated_line(text: str, line_start: str) -> str:
    """A chat model that answers `df = pd.read_` with `df = pd.read_csv(...)`."""
    typed = line_start.strip()
    if len(typed) < 2:
        return text
    body = text.lstrip()
    if not body.startswith(typed):
        return text
    rest = body[len(typed) :]
    if line_start[-1:] in (" ", "\t"):
        rest = rest.lstrip(" \t")  # the space after `total =` is typed already
    return rest


def _limit_lines(text: str, multiline: bool, max_lines: int) -> str:
    if not multiline:
        # One line, but a completion that starts with a line break (a new line below the
        # cursor's) keeps that break and its first line.
        lead = len(text) - len(text.lstrip("\n"))
        if lead and not text[:lead].strip():
            end = text.find("\n", lead)
            return text if end == -1 else text[:end]
        end = text.find("\n")
        return text if end == -1 else text[:end]
    lines = text.split("\n")
    return "\n".join(lines[: max(1, max_lines)])


def _cut_suffix_repeat(text: str, suffix: str) -> str:
    if not suffix or not text:
        return text
    # The suffix's next non-blank line written again inside the completion: everything from
    # that line on is already in the cell.
    first_line = next((ln.strip() for ln in suffix.split("\n") if ln.strip()), "")
    if first_line and "\n" in text:
        lines = text.split("\n")
        for i, line in enumerate(lines[1:], start=1):
            if line.strip() == first_line:
                text = "\n".join(lines[:i]).rstrip()
                break
    # The completion's end overlapping the suffix's start: `foo(a)` before a suffix `)`.
    head = suffix.split("\n", 1)[0]
    for k in range(min(len(head), len(text)), 0, -1):
        overlap = head[:k]
        if not text.endswith(overlap):
            continue
        if k >= MIN_WORD_OVERLAP or not any(c.isalnum() for c in overlap):
            return text[:-k]
        break
    return text


def _open_brackets(prefix: str) -> list[str]:
    """Brackets still open at the end of `prefix`, outside strings and comments."""
    stack: list[str] = []
    _scan(prefix[-BRACKET_SCAN_CHARS:], stack)
    return stack


def _scan(text: str, stack: list[str], on_unmatched: list[int] | None = None) -> list[int]:
    """Walks `text` keeping `stack`; returns the offsets where the completion's own
    brackets are all closed again (depth back to where it started)."""
    start_depth = len(stack)
    balanced: list[int] = []
    quote = ""
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if text.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
            if c == "\n" and len(quote) == 1:
                quote = ""  # an unterminated string ends at the line
        elif c == "#":
            end = text.find("\n", i)
            i = n if end == -1 else end
            continue
        elif c in "'\"":
            quote = c * 3 if text.startswith(c * 3, i) else c
            i += len(quote)
            continue
        elif c in OPENERS:
            stack.append(c)
        elif c in CLOSERS:
            if not stack or stack[-1] != CLOSERS[c]:
                if on_unmatched is not None:
                    on_unmatched.append(i)
                    return balanced
            else:
                stack.pop()
                if len(stack) <= start_depth:
                    balanced.append(i + 1)
        elif c == "\n" and len(stack) <= start_depth:
            balanced.append(i)
        i += 1
    if not quote and len(stack) <= start_depth:
        balanced.append(n)
    return balanced


def _balance(text: str, prefix: str, suffix: str) -> str:
    stack = _open_brackets(prefix)
    outer = len(stack)
    unmatched: list[int] = []
    balanced = _scan(text, stack, unmatched)
    if unmatched:
        # A closer nothing opened: the completion has run into code after the cursor.
        text = text[: unmatched[0]]
        stack = _open_brackets(prefix)
        balanced = _scan(text, stack)
    if len(stack) <= outer:
        return text
    # The completion opened brackets it does not close: fine if the suffix closes them.
    wanted = "".join(OPENERS[b] for b in reversed(stack[outer:]))
    if suffix.lstrip(" \t").startswith(wanted):
        return text
    cut = max((b for b in balanced if b <= len(text)), default=0)
    return text[:cut]


def _parses_or_cut(text: str, prefix: str, suffix: str) -> str:
    """When the completion finishes the cursor's line and the prefix has no bracket open,
    the lines it writes form whole statements: they must parse, or be cut to those that
    do. Statements inside an open bracket, or before more text on the line, are left."""
    if not text.strip() or suffix.split("\n", 1)[0].strip():
        return text
    if _open_brackets(prefix) or prefix.rstrip(" \t").endswith("\\"):
        return text
    line_start = prefix[prefix.rfind("\n") + 1 :]
    lines = (line_start + text).split("\n")
    for keep in range(len(lines), 0, -1):
        if _parses("\n".join(lines[:keep])):
            if keep == len(lines):
                return text
            kept = "\n".join(lines[:keep])
            return kept[len(line_start) :] if len(kept) > len(line_start) else ""
    return ""


def _parses(statement: str) -> bool:
    source = textwrap.dedent(statement)
    if not source.strip():
        return False
    for attempt in (source, source.rstrip() + "\n    pass"):
        try:
            ast.parse(attempt)
        except (SyntaxError, ValueError):
            continue
        return True
    return False


def _repeats_prefix(text: str, prefix: str) -> bool:
    """The completion is only the lines right above the cursor again."""
    lines = [ln.strip() for ln in text.strip().split("\n")]
    above = [ln.strip() for ln in prefix.rstrip().split("\n") if ln.strip()]
    if not above or len(lines) > len(above):
        return False
    return lines == above[-len(lines) :] and len("".join(lines)) >= 2
