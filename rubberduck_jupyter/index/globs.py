"""Path filters: globs on the relative POSIX path of an indexed file.

A glob compiles to one regex, built so that matching costs O(path length x pattern length)
whatever the pattern: a naive translation (`*` -> `[^/]*`) backtracks exponentially on
patterns like `*a*a*a*a*b` (measured: 0.9 s for one 80-character name, doubling every few
characters), and `re` holds the GIL, so one search would stall the whole server. Every
middle piece between two `*` and every middle run of segments between two `**` is matched
at its leftmost place inside an atomic group (Python 3.11+), which is always a right
answer for globs: moving such a piece left only lengthens the free gap after it.
"""

from __future__ import annotations

import functools
import re

# A glob is typed by a person; these bound the regex built from one.
MAX_GLOB_CHARS = 1024
MAX_GLOB_SEGMENTS = 64


class GlobError(ValueError):
    """A path glob that cannot be used; the message says how to write it."""


@functools.lru_cache(maxsize=256)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a path glob, matched against the whole relative POSIX path.

    `*` and `?` stay inside one path segment, `[abc]`/`[!abc]`/`[a-z]` are character
    classes, and `**` as a whole segment crosses segments: `notebooks/**` is everything
    under notebooks/, `**/x.py` is x.py in any folder including the top, `src/**/*.py` is
    every .py under src/. `**` inside a segment (`a**b`) is a plain `*`, as in .gitignore.
    A pattern without `/` matches the file name in any folder (`*.ipynb` is every
    notebook), like .gitignore and `rg -g`. A trailing `/` means everything under it.
    Matching is case-sensitive. Leading `./` or `/` is ignored, so `/` and `./` alone
    name the root: every file.

    Raises GlobError for an empty or over-long pattern and for a class with a reversed
    range (`[z-a]`).
    """
    if len(pattern) > MAX_GLOB_CHARS:
        raise GlobError(f"path glob is longer than {MAX_GLOB_CHARS} characters")
    pat = pattern.strip()
    if not pat:
        raise GlobError("empty path glob; give one such as '*.ipynb' or 'src/**'")
    if "\0" in pat:
        raise GlobError("path glob holds a NUL character")
    while pat.startswith("./"):
        pat = pat[2:]
    pat = pat.lstrip("/")
    if pat in ("", "."):
        pat = "**"  # `/`, `./` and `.`: the root, so everything in it
    elif pat.endswith("/"):
        pat += "**"
    anywhere = "/" not in pat
    segments = [s for s in pat.split("/") if s not in ("", ".")]
    if len(segments) > MAX_GLOB_SEGMENTS:
        raise GlobError(f"path glob has more than {MAX_GLOB_SEGMENTS} segments")
    if anywhere and segments != ["**"]:
        segments.insert(0, "**")
    try:
        return re.compile(_segments_regex(segments), re.DOTALL)
    except re.error as exc:  # a class `re` reads differently from us; say so, not 500
        raise GlobError(f"path glob cannot be used: {exc}") from None


def _segments_regex(segments: list[str]) -> str:
    # Runs of ordinary segments between `**` segments (consecutive `**` are one).
    runs: list[list[str]] = [[]]
    for segment in segments:
        if segment == "**":
            if runs[-1] or len(runs) == 1:
                runs.append([])
        else:
            runs[-1].append(segment)
    if len(runs) == 1:  # no `**`: segment by segment
        return "/".join(_segment_regex(s) for s in runs[0])
    first, middle, last = runs[0], runs[1:-1], runs[-1]
    out = "/".join(_segment_regex(s) for s in first)
    if first:
        out += "/"
    # `(?:[^/]*/)*?` skips whole folders, fewest first; atomic: the leftmost place of a
    # middle run is kept, never retried.
    for run in middle:
        body = "/".join(_segment_regex(s) for s in run)
        out += f"(?>(?:[^/]*/)*?{body}(?=/))/"
    if last:
        out += "(?:[^/]*/)*?" + "/".join(_segment_regex(s) for s in last)
    else:
        out += ".*"  # a trailing `**`: anything below
    return out


def _segment_regex(segment: str) -> str:
    """One path segment: fixed pieces between `*`; the middle ones matched leftmost."""
    pieces = re.split(r"\*+", segment)
    if len(pieces) == 1:
        return _piece_regex(pieces[0])
    head, middle, tail = pieces[0], pieces[1:-1], pieces[-1]
    out = _piece_regex(head)
    for piece in middle:
        if piece:
            out += f"(?>[^/]*?{_piece_regex(piece)})"
    return out + "[^/]*" + _piece_regex(tail)


def _piece_regex(piece: str) -> str:
    """Characters, `?` and classes: a fixed-length regex that never matches `/`."""
    out: list[str] = []
    i, n = 0, len(piece)
    while i < n:
        c = piece[i]
        if c == "?":
            out.append("[^/]")
        elif c == "[" and (end := _class_end(piece, i)) > 0:
            out.append(_class_regex(piece[i + 1 : end]))
            i = end + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _class_end(pat: str, start: int) -> int:
    """Index of the `]` closing the class opened at `start`, or -1 (then `[` is literal)."""
    i = start + 1
    if i < len(pat) and pat[i] in "!^":
        i += 1
    if i < len(pat) and pat[i] == "]":
        i += 1  # a `]` first in the class is a member, as in fnmatch
    return pat.find("]", i)


def _class_regex(body: str) -> str:
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    for i in range(1, len(body) - 1):
        if body[i] == "-" and body[i - 1] > body[i + 1]:
            raise GlobError(
                f"path glob class has a reversed range {body[i - 1]}-{body[i + 1]}; "
                f"write [{body[i + 1]}-{body[i - 1]}]"
            )
    members = "".join(c if c == "-" else re.escape(c) for c in body)
    # A class never matches `/`, so `[!a]` cannot jump into another folder.
    return f"[^/{members}]" if negate else f"(?!/)[{members}]"
