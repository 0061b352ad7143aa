"""Cutting a text too long for the embedder into overlapping pieces that each fit its window."""

from __future__ import annotations

from dataclasses import dataclass

from ..tokens import TokenCounter

# A cut moves back to a line break only if that keeps at least this share of the piece.
_LINE_CUT_SHARE = 0.75


@dataclass(frozen=True, slots=True)
class Span:
    start: int  # characters of the text
    end: int
    n_tokens: int  # of the prefix and this span together, as counted


def split_spans(
    text: str,
    counter: TokenCounter,
    overlap_tokens: int = 32,
    *,
    prefix: str = "",
    reserved_tokens: int = 0,
) -> list[Span]:
    """Spans of `text` such that `prefix + span` counts at most `window - reserved_tokens`.

    Consecutive spans share `overlap_tokens` tokens, so a sentence cut in two is still whole
    in one of them. Together they cover every token of `text`: only whitespace (and what the
    tokenizer drops) can fall between two spans. ValueError if not even one token fits.
    """
    limit = counter.window - reserved_tokens
    whole = counter.count(prefix + text)
    if whole <= limit:
        return [Span(0, len(text), whole)]
    offsets = counter.offsets(text)
    budget = limit - (whole - len(offsets))  # what the prefix and special tokens leave
    if budget < 1:
        raise ValueError(f"no room for text in a window of {limit} tokens")
    overlap = max(0, min(overlap_tokens, budget // 2))
    n = len(offsets)
    spans: list[Span] = []
    start = 0
    while True:
        end = min(start + budget, n)
        if end < n:
            end = _line_cut(text, offsets, start, end)
        while True:
            first = 0 if start == 0 else _indent_start(text, offsets[start][0])
            last = len(text) if end == n else offsets[end - 1][1]
            # Counted, not assumed: text cut inside a word is tokenized anew (a word's tail
            # loses its continuation form) and may take more tokens than it did in place.
            n_tokens = counter.count(prefix + text[first:last])
            excess = n_tokens - limit
            if excess <= 0:
                break
            if end == start + 1:
                raise ValueError(f"one token takes more than a window of {limit} tokens")
            end = max(start + 1, end - excess)
        spans.append(Span(first, last, n_tokens))
        if end >= n:
            return spans
        start = _line_start(text, offsets, max(end - overlap, start + 1), start + 1, overlap)


def split_to_window(
    text: str, counter: TokenCounter, overlap_tokens: int = 32, *, reserved_tokens: int = 0
) -> list[str]:
    """`text` as pieces that fit the window, `reserved_tokens` kept free for a header."""
    spans = split_spans(text, counter, overlap_tokens, reserved_tokens=reserved_tokens)
    return [text[span.start : span.end] for span in spans]


def _line_start(
    text: str, offsets: list[tuple[int, int]], start: int, lowest: int, overlap: int
) -> int:
    """`start` moved back to the first token of its line, if that adds at most `overlap`
    tokens: a piece of code reads better from the start of a line."""
    for k in range(start, max(lowest, start - overlap) - 1, -1):
        if k == 0 or "\n" in text[offsets[k - 1][1] : offsets[k][0]]:
            return k
    return start


def _indent_start(text: str, position: int) -> int:
    """The start of the line if only indentation precedes `position` on it."""
    line_start = text.rfind("\n", 0, position) + 1
    return line_start if not text[line_start:position].strip() else position


def _line_cut(text: str, offsets: list[tuple[int, int]], start: int, end: int) -> int:
    """The latest token index in the last quarter of the piece that begins a new line."""
    lowest = start + max(1, int((end - start) * _LINE_CUT_SHARE))
    for k in range(end, lowest - 1, -1):
        if "\n" in text[offsets[k - 1][1] : offsets[k][0]]:
            return k
    return end
