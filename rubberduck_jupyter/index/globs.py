"""Path filters: globs on the relative POSIX path of an indexed file."""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=256)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a path glob, matched against the whole relative POSIX path.

    `*` and `?` stay inside one path segment, `[abc]`/`[!abc]` are character classes, and
    `**` crosses segments: `notebooks/**` is everything under notebooks/, `**/x.py` is
    x.py in any folder including the top, `src/**/*.py` is every .py under src/.
    A pattern without `/` matches the file name in any folder (`*.ipynb` is every
    notebook), like .gitignore and `rg -g`. A trailing `/` means everything under it.
    Matching is case-sensitive. Leading `./` or `/` is ignored.
    """
    pat = pattern.strip()
    while pat.startswith("./"):
        pat = pat[2:]
    pat = pat.lstrip("/")
    if pat.endswith("/"):
        pat += "**"
    if not pat:
        raise ValueError("empty path glob")
    out: list[str] = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if c == "*":
            j = i
            while j < n and pat[j] == "*":
                j += 1
            if j - i == 1:
                out.append("[^/]*")
            elif (i == 0 or pat[i - 1] == "/") and j < n and pat[j] == "/":
                out.append("(?:.*/)?")  # `**/` may also stand for no folder at all
                j += 1
            else:
                out.append(".*")
            i = j
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "[" and (end := _class_end(pat, i)) > 0:
            out.append(_class_regex(pat[i + 1 : end]))
            i = end + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    body = "".join(out)
    return re.compile(body if "/" in pat else "(?:.*/)?" + body, re.DOTALL)


def _class_end(pat: str, start: int) -> int:
    """Index of the `]` closing the class opened at `start`, or -1 (then `[` is literal)."""
    i = start + 1
    if i < len(pat) and pat[i] in "!^":
        i += 1
    if i < len(pat) and pat[i] == "]":
        i += 1  # a `]` first in the class is a member, as in fnmatch
    end = pat.find("]", i)
    return end


def _class_regex(body: str) -> str:
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    members = "".join(c if c == "-" else re.escape(c) for c in body)
    # A class never matches `/`, so `[!a]` cannot jump into another folder.
    return f"[^/{members}]" if negate else f"(?!/)[{members}]"
