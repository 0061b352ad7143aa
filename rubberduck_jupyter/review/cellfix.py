"""One notebook cell's static review, with each finding's fix as the whole fixed cell.

What the cell's findings widget shows (POST /rubberduck/api/review/cell): the findings of
`analyze_python`, and for a finding whose checker knows the edits, the cell's source with
them applied, offered only when it still parses (a change that breaks the cell is never
offered) and only when no edit touches a line holding IPython syntax (the checkers saw
those lines masked, so their columns mean nothing there).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from .cells import mask_magics, parse_cell
from .findings import Finding, TextEdit
from .static import analyze_python, names_bound

# Each offered fix is the whole cell again, applied and parsed: a 50 KB cell of 3,000
# unused imports took 51 s and answered 140 MB. Nobody reviews past a few dozen fixes in one
# cell; with 50, a 256 KiB body answers at most ~13 MB and parses at most 50 times a cell.
MAX_FIXES_PER_CELL = 50


@dataclass(frozen=True, slots=True)
class CellReview:
    findings: list[Finding]
    # Parallel to `findings`: the fixed cell, or None when there is no checked fix.
    replacements: list[str | None]

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {**finding.to_json(), "replacement": replacement}
            for finding, replacement in zip(self.findings, self.replacements, strict=True)
        ]


def review_cell(
    source: str, *, known_names: Collection[str] = (), above: Sequence[str] = ()
) -> CellReview:
    """Blocking (ruff runs in a subprocess): call it from a thread in the server.

    Names the cells `above` bind count as known, like `known_names`."""
    known = set(known_names)
    for cell in above:
        known |= names_bound(cell)
    return with_fixes(source, analyze_python(source, known_names=known, cell=True))


def with_fixes(source: str, findings: list[Finding]) -> CellReview:
    """`findings` of `source`, each with its checked fix (the batch review shares it).

    At most `MAX_FIXES_PER_CELL` findings get one; the others keep their `fix` text."""
    masked = set(mask_magics(source).masked_lines) if "%" in source or "!" in source else set()
    replacements: list[str | None] = []
    budget = MAX_FIXES_PER_CELL  # counts tries, not successes: it bounds the work
    for finding in findings:
        if finding.edits and budget > 0:
            budget -= 1
            replacements.append(fixed_source(source, finding.edits, avoid_lines=masked))
        else:
            replacements.append(None)
    return CellReview(findings, replacements)


def fixed_source(
    source: str, edits: Sequence[TextEdit], *, avoid_lines: Collection[int] = ()
) -> str | None:
    """`source` with `edits` applied, if that changes it and the result parses."""
    if not edits:
        return None
    if any(line in avoid_lines for e in edits for line in range(e.line, e.end_line + 1)):
        return None
    try:
        fixed = apply_edits(source, edits)
    except ValueError:
        return None
    if fixed == source:
        return None
    try:
        parse_cell(fixed)
    except (SyntaxError, ValueError):
        return None
    return fixed


def apply_edits(source: str, edits: Sequence[TextEdit]) -> str:
    """Apply non-overlapping edits; ValueError when one points outside the text or two
    overlap (a fix we cannot apply exactly is not applied at all)."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(line: int, col: int, byte_columns: bool) -> int:
        if line == len(lines) + 1 and col == 1:
            return len(source)  # just past the last line (ruff deletes up to there)
        if not 1 <= line <= len(lines):
            raise ValueError(f"line {line} is outside the cell")
        text = lines[line - 1]
        if byte_columns:
            col = len(text.encode("utf-8")[: col - 1].decode("utf-8", "strict")) + 1
        if not 1 <= col <= len(text) + 1:
            raise ValueError(f"column {col} is outside line {line}")
        return starts[line - 1] + col - 1

    spans = sorted(
        (offset(e.line, e.col, e.byte_columns), offset(e.end_line, e.end_col, e.byte_columns), e)
        for e in edits
    )
    out, at = [], 0
    for start, end, edit in spans:
        if start < at or end < start:
            raise ValueError("overlapping edits")
        out.append(source[at:start])
        out.append(edit.content)
        at = end
    out.append(source[at:])
    return "".join(out)
