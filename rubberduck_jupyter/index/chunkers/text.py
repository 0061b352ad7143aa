"""Chunks of any other text file, by size: lines packed to the window, huge lines split."""

from __future__ import annotations

from bisect import bisect_right

from ..tokens import TokenCounter
from ..types import Chunk, ChunkKind
from .code import normalize_newlines
from .pack import body_budget, clip_header, fit, pack, with_header


def chunk_text(
    source: str, rel_path: str, counter: TokenCounter, *, overlap_tokens: int = 32
) -> list[Chunk]:
    text = normalize_newlines(source)
    lines = text.split("\n")
    rows = [row for row, line in enumerate(lines) if line.strip()]
    if not rows:
        return []
    header = clip_header(f"# {rel_path}", counter)
    costs = _line_costs(text, lines, rows, counter)

    def render(first: int, stop: int) -> str:
        return with_header(header, "\n".join(lines[rows[first] : rows[stop - 1] + 1]))

    chunks: list[Chunk] = []
    for group in pack(costs, render, counter, body_budget(header, counter)):
        first, last = rows[group.first], rows[group.stop - 1]
        if group.text is not None:
            chunks.append(
                Chunk(rel_path, ChunkKind.TEXT, group.text, group.n_tokens, first + 1, last + 1)
            )
            continue
        for part, piece in enumerate(fit(header, lines[first], counter, overlap_tokens)):
            chunks.append(
                Chunk(
                    rel_path,
                    ChunkKind.TEXT,
                    piece.text,
                    piece.n_tokens,
                    first + 1,
                    first + 1,
                    part=part,
                )
            )
    return chunks


def _line_costs(text: str, lines: list[str], rows: list[int], counter: TokenCounter) -> list[int]:
    """Tokens of each line in `rows`, from one tokenization of the whole text.

    A tokenizer that splits at whitespace (the embedder's does) has no token spanning a line
    break, so a line's share is its own count; one call instead of one per line keeps large
    files cheap. They are estimates all the same: `pack` counts every text it builds.
    """
    line_starts = []
    position = 0
    for line in lines:
        line_starts.append(position)
        position += len(line) + 1
    per_line = [0] * len(lines)
    for token_start, _ in counter.offsets(text):
        per_line[bisect_right(line_starts, token_start) - 1] += 1
    return [per_line[row] for row in rows]
