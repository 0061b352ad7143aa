"""Markdown chunks: one section per heading, its blocks packed to the window, long blocks split.

Each chunk starts with the heading path (`Intro > Install`) so that a short section still
says what it is about. A heading followed directly by a sub-heading is not a chunk of its
own: it joins the section after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from ..tokens import TokenCounter
from ..types import Chunk, ChunkKind
from .code import normalize_newlines
from .outline import Heading, outline
from .pack import body_budget, clip_header, content_tokens, fit, pack, with_header

PATH_SEPARATOR = " > "


@dataclass(frozen=True, slots=True)
class _Section:
    start: int  # 0-based lines, end exclusive
    end: int
    path: tuple[str, ...]  # headings from the top level down to this section's own


def chunk_markdown(
    source: str, rel_path: str, counter: TokenCounter, *, overlap_tokens: int = 32
) -> list[Chunk]:
    text = normalize_newlines(source)
    if not text.strip():
        return []
    lines = text.split("\n")
    parsed = outline(text)
    chunks: list[Chunk] = []
    for section in _sections(parsed.headings, lines):
        starts = [row for row in parsed.block_rows if section.start < row < section.end]
        units = _units([section.start, *starts], section.end, lines)
        chunks += _section_chunks(section, units, lines, rel_path, counter, overlap_tokens)
    return chunks


def _sections(headings: list[Heading], lines: list[str]) -> list[_Section]:
    bounds = [0, *(h.row for h in headings if h.row > 0), len(lines)]
    by_row = {h.row: h for h in headings}
    stack: list[Heading] = []
    sections: list[_Section] = []
    pending_start: int | None = None  # a heading with nothing under it, joining the next
    for start, end in pairwise(bounds):
        heading = by_row.get(start)
        if heading is not None:
            while stack and stack[-1].level >= heading.level:
                stack.pop()
            stack.append(heading)
        first = start if pending_start is None else pending_start
        has_body = any(line.strip() for line in lines[start + (heading is not None) : end])
        if heading is not None and not has_body and end < len(lines):
            pending_start = first
            continue
        pending_start = None
        sections.append(_Section(first, end, tuple(h.title for h in stack)))
    return sections


def _units(starts: list[int], end: int, lines: list[str]) -> list[tuple[int, int]]:
    """Inclusive line ranges of the blocks, each running up to the next block, blank lines
    at the ends left out; every non-blank line of the section is in exactly one."""
    units = []
    for first, stop in zip(starts, [*starts[1:], end], strict=True):
        rows = [row for row in range(first, stop) if lines[row].strip()]
        if rows:
            units.append((rows[0], rows[-1]))
    return units


def _section_chunks(
    section: _Section,
    units: list[tuple[int, int]],
    lines: list[str],
    rel_path: str,
    counter: TokenCounter,
    overlap_tokens: int,
) -> list[Chunk]:
    where = PATH_SEPARATOR.join(section.path)
    header = clip_header(f"# {rel_path}: {where}" if where else f"# {rel_path}", counter)
    title = section.path[-1] if section.path else None

    def body(first: int, last: int) -> str:
        return "\n".join(lines[first : last + 1])

    def render(first: int, stop: int) -> str:
        return with_header(header, body(units[first][0], units[stop - 1][1]))

    costs = [content_tokens(body(first, last), counter) for first, last in units]
    chunks: list[Chunk] = []

    def add(text: str, n_tokens: int, first: int, last: int) -> None:
        # One section is one body: its chunks, packed or split, are numbered as its parts.
        chunks.append(
            Chunk(
                rel_path,
                ChunkKind.MARKDOWN,
                text,
                n_tokens,
                start_line=first + 1,
                end_line=last + 1,
                title=title,
                part=len(chunks),
            )
        )

    for group in pack(costs, render, counter, body_budget(header, counter)):
        first, last = units[group.first][0], units[group.stop - 1][1]
        if group.text is not None:
            add(group.text, group.n_tokens, first, last)
            continue
        text = body(first, last)
        for piece in fit(header, text, counter, overlap_tokens):
            start_row = first + text.count("\n", 0, piece.start)
            end_row = first + text.count("\n", 0, max(piece.start, piece.end - 1))
            add(piece.text, piece.n_tokens, start_row, end_row)
    return chunks
