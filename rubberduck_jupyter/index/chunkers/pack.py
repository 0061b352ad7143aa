"""Fitting texts to the embedder's window: one body split under a repeated header, or many
small units packed together."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ..tokens import TokenCounter
from ..types import ChunkError
from .split import split_spans

# A header (file, heading, qualified name) may take at most this share of a window; it is
# context, the body is what must get through.
_MAX_HEADER_SHARE = 4


@dataclass(frozen=True, slots=True)
class Piece:
    text: str  # header line included
    n_tokens: int
    start: int  # character span of the piece's body within the whole body
    end: int


def content_tokens(text: str, counter: TokenCounter) -> int:
    """Tokens of `text` without the special tokens every embedded text carries."""
    return counter.count(text) - counter.count("")


def clip_header(header: str, counter: TokenCounter) -> str:
    header = " ".join(header.split())  # one line, whatever the heading held
    limit = counter.window // _MAX_HEADER_SHARE
    offsets = counter.offsets(header)
    if len(offsets) <= limit:
        return header
    return header[: offsets[limit - 1][1]] + " ..."


def with_header(header: str, body: str) -> str:
    return f"{header}\n{body}" if header else body


def fit(header: str, body: str, counter: TokenCounter, overlap_tokens: int) -> list[Piece]:
    """`body` under `header`, split with overlap into as many pieces as the window needs."""
    prefix = with_header(header, "")
    try:
        spans = split_spans(body, counter, overlap_tokens, prefix=prefix)
    except ValueError as exc:
        raise ChunkError(f"cannot fit the window: {exc}") from exc
    return [Piece(prefix + body[s.start : s.end], s.n_tokens, s.start, s.end) for s in spans]


@dataclass(frozen=True, slots=True)
class Group:
    """Units `first`..`stop - 1` packed into `text`, or one unit too long alone (`text` None)."""

    first: int
    stop: int
    text: str | None
    n_tokens: int


def pack(
    costs: Sequence[int],
    render: Callable[[int, int], str],
    counter: TokenCounter,
    budget: int,
    *,
    max_units: int | None = None,
) -> Iterator[Group]:
    """Greedily packs consecutive units while their summed `costs` stay within `budget`.

    `render(first, stop)` builds the text of units first..stop-1 (header included). Costs are
    only an estimate (tokens are nearly additive across line breaks), so each packed text is
    counted and shrunk by a unit at a time until it really fits the window.
    """
    i, n = 0, len(costs)
    while i < n:
        total, stop = costs[i], i + 1
        if total <= budget:
            while (
                stop < n
                and total + costs[stop] <= budget
                and (max_units is None or stop - i < max_units)
            ):
                total += costs[stop]
                stop += 1
            while True:
                text = render(i, stop)
                n_tokens = counter.count(text)
                if n_tokens <= counter.window:
                    yield Group(i, stop, text, n_tokens)
                    break
                if stop == i + 1:
                    yield Group(i, stop, None, n_tokens)
                    break
                stop -= 1
        else:
            yield Group(i, stop, None, 0)
        i = stop


def body_budget(header: str, counter: TokenCounter) -> int:
    """Tokens left for a body under `header`, special tokens set aside."""
    header_tokens = content_tokens(with_header(header, ""), counter) if header else 0
    return counter.window - counter.count("") - header_tokens
