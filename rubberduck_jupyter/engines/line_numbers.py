"""Line numbers in prompts: how code is numbered for a model, and how a copy of that
listing the model sends back loses its numbers again. Apart from common.py because the
suggestion check in base.py needs it and common.py builds on base.py."""

from __future__ import annotations

import re

__all__ = ["numbered", "strip_line_numbers"]


def numbered(source: str) -> str:
    """The code as prompts show it, each line prefixed by its number (see
    strip_line_numbers, which undoes what a model copies of it)."""
    return "\n".join(f"{i:4d}  {line}" for i, line in enumerate(source.splitlines(), start=1))


# A line of a numbered listing: the number, then a separator (spaces or a tab, "|" or ":")
# and the code. Numbers up to 6 digits: a listing longer than that is not one we sent.
_NUMBERED_LINE = re.compile(r"^[ \t]*(\d{1,6})(?:([ \t]*)([|:])[ \t]?|([ \t]+)|$)(.*)$")


def strip_line_numbers(text: str) -> str | None:
    """`text` without the line-number prefixes a model copied from numbered(), or None when
    it is not a numbered listing (some line unnumbered, or numbers not consecutive).

    Blank lines may have lost their number (models trim trailing space). A whitespace
    separator is as wide as the narrowest one among lines with code: numbered() writes two
    spaces, a model may write one, and the least indented line of code starts at column 0,
    so anything wider is the code's own indentation.
    """
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    parsed: list[tuple[str, str] | None] = []  # (separator kind, rest) per numbered line
    expected: int | None = None
    for line in lines:
        if not line.strip():
            parsed.append(None)
            if expected is not None:
                expected += 1  # a blank line that kept no number still takes one
            continue
        match = _NUMBERED_LINE.match(line)
        if match is None:
            return None
        number = int(match[1])
        # After a blank line its number may or may not have been kept.
        if expected is not None and number not in (expected, expected - _blank_run(parsed)):
            return None
        expected = number + 1
        if match[3]:
            parsed.append(("mark", match[5]))
        else:
            parsed.append(("space", (match[4] or "") + match[5]))
    numbered_lines = [p for p in parsed if p is not None]
    if not numbered_lines:
        return None
    widths = [
        len(rest) - len(rest.lstrip(" \t"))
        for kind, rest in numbered_lines
        if kind == "space" and rest.strip()
    ]
    cut = min(widths) if widths else 0
    out = []
    for item in parsed:
        if item is None:
            out.append("")
        else:
            kind, rest = item
            out.append(rest[cut:] if kind == "space" else rest)
    return "\n".join(out)


def _blank_run(parsed: list[tuple[str, str] | None]) -> int:
    """How many blank lines end `parsed`."""
    count = 0
    for item in reversed(parsed):
        if item is not None:
            break
        count += 1
    return count
