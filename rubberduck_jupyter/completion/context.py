"""What a completion knows besides the cursor: earlier cells, kernel variables, project code.

All of it is assembled on the event loop from what the client sent (no I/O): the prefix
is kept to its last `PREFIX_CHARS` and the suffix to its first `SUFFIX_CHARS` (the model
needs the code near the cursor most); then one budget (`completion_context_chars`)
is filled in order of use per character: the variables (names, types, shapes: a line
each), the project chunks found for the cell's imports and called names (project.py),
then the notebook's earlier cells, nearest first, each whole or not at all (a cell cut
in the middle misleads more than a missing one; only the nearest, when it is too big to
fit, gives its last whole lines), shown oldest first so they read like the notebook.
Measured: ~0.1 ms for 50 cells of 4,000 characters (benchmarks/completion.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..protocol import CompletionRequest

PREFIX_CHARS = 6_000
SUFFIX_CHARS = 2_000
# The variables' share of the budget, at most: 200 variables can fill a prompt on their own.
VARIABLES_SHARE = 0.2
PROJECT_SHARE = 0.35
# The nearest earlier cell, when too big to fit whole, gives its tail if this much fits.
MIN_TAIL_CHARS = 400

# Linear on any text (tests/security/test_regex_linear.py): the indent is `[ \t]*`, not
# `\s*`, which from every line start would rescan a run of blank lines; a called name must
# start a word, so a long identifier is scanned once, not once from each of its letters.
_IMPORT = re.compile(
    r"^[ \t]*(?:from\s+([\w.]+)\s+import\s+([\w., ()]+)|import\s+([\w., ]+))", re.M
)
_CALL = re.compile(r"(?<![\w.])([A-Za-z_][\w.]*)\s*\(")
# Calls too common to say anything about the project.
_COMMON = frozenset(
    "print len range str int float list dict set tuple open isinstance enumerate zip sorted "
    "super type min max sum any all map filter format append items keys values get".split()
)


@dataclass(frozen=True, slots=True)
class Snippet:
    """A chunk of the project's code, found in the index."""

    path: str
    location: str
    text: str


@dataclass(frozen=True, slots=True)
class CompletionContext:
    prefix: str
    suffix: str
    cells: tuple[str, ...]  # the earlier cells kept, oldest first
    variables: tuple[str, ...]  # "name: type shape", one per variable kept
    snippets: tuple[Snippet, ...] = ()

    def key(self) -> str:
        """What makes two requests the same beside prefix and suffix (the cache's key)."""
        h = hashlib.blake2b(digest_size=16)
        for part in (*self.cells, "\x00", *self.variables):
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\x01")
        return h.hexdigest()


def assemble(request: CompletionRequest, budget_chars: int) -> CompletionContext:
    """The budgeted context of `request`, without project snippets (`with_snippets` adds
    them once found)."""
    budget = max(0, budget_chars)
    variables: list[str] = []
    used = 0
    for v in request.variables:
        line = f"{v.name}: {v.type}" + (f" {v.shape}" if v.shape else "")
        if used + len(line) > budget * VARIABLES_SHARE:
            break
        variables.append(line)
        used += len(line) + 1
    left = budget - used - int(budget * PROJECT_SHARE)
    cells: list[str] = []
    for cell in request.cells:  # nearest first
        source = cell.source.strip()
        if not source:
            continue
        if cell.cell_type != "code":
            source = "\n".join(f"# {line}" for line in source.split("\n"))
        if len(source) > left:
            if not cells and left >= MIN_TAIL_CHARS:
                # The nearest cell matters most: its last whole lines, rather than nothing.
                tail = source[-left:]
                cells.append(tail[tail.find("\n") + 1 :] if "\n" in tail else tail)
            break  # nearer cells matter more: a farther one never jumps a gap
        cells.append(source)
        left -= len(source) + 2
    cells.reverse()
    return CompletionContext(
        prefix=request.prefix[-PREFIX_CHARS:],
        suffix=request.suffix[:SUFFIX_CHARS],
        cells=tuple(cells),
        variables=tuple(variables),
    )


def with_snippets(
    context: CompletionContext, snippets: Sequence[Snippet], budget_chars: int
) -> CompletionContext:
    room = int(max(0, budget_chars) * PROJECT_SHARE)
    kept: list[Snippet] = []
    for s in snippets:
        if len(s.text) > room:
            continue
        kept.append(s)
        room -= len(s.text)
    if not kept:
        return context
    return CompletionContext(
        context.prefix, context.suffix, context.cells, context.variables, tuple(kept)
    )


def project_query(prefix: str, cells: Sequence[str] = (), max_terms: int = 12) -> str:
    """The index query for the code at the cursor: imported names first, then called
    names, most recent first, each once; "" when there is nothing specific to look for."""
    terms: list[str] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        for part in name.replace(",", " ").replace("(", " ").replace(")", " ").split():
            part = part.strip(". ")
            if part in ("as", "import") or part in seen or part in _COMMON or len(part) < 3:
                continue
            seen.add(part)
            terms.append(part)

    recent = prefix[-PREFIX_CHARS:]
    for text in (recent, *cells[:3]):
        for match in reversed(list(_IMPORT.finditer(text))):
            for group in match.groups():
                if group:
                    add(group)
    for match in reversed(list(_CALL.finditer(recent))):
        name = match.group(1)
        add(name.rsplit(".", 1)[-1] if "." in name else name)
        if len(terms) >= max_terms:
            break
    return " ".join(terms[:max_terms])
