"""Chunks of source code by definition, the part the language chunkers share.

A language chunker turns its syntax tree into `Item`s: top-level statements and definitions,
classes holding their members. This module turns items into chunks of whole lines, so a
chunk's text is always a run of the file's own lines under a one-line header (headers.py:
path, qualified name, signature and summary, a method's followed by its class's; for
module code, the module's summary).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tree_sitter import Node

from ..tokens import TokenCounter
from ..types import Chunk, ChunkKind
from .headers import comment_summary, definition_header
from .pack import body_budget, clip_header, content_tokens, fit, pack, with_header

MODULE_TITLE = "module"


@dataclass(frozen=True, slots=True)
class Item:
    kind: ChunkKind  # FUNCTION, CLASS, METHOD, or MODULE for any other statement
    name: str | None
    start: int  # 0-based first line
    end: int  # 0-based last line, inclusive
    # First line of the body, which an enclosing class's chunk leaves out (the member has
    # its own chunk); None when the body shares the signature's line.
    body_start: int | None = None
    members: tuple[Item, ...] = ()  # a class's methods and nested classes
    is_comment: bool = False
    is_punctuation: bool = False  # an unnamed token such as a statement's trailing ";"
    signature: str = ""  # "(a, b=1) -> int" of a function, "(Base)" of a class
    summary: str = ""  # its docstring's first sentence
    # First line of the definition itself: `start` moves up to the comments above it
    # (`arrange`), whose first sentence is the summary when there is no docstring.
    head: int | None = None


def normalize_newlines(source: str) -> str:
    # Tree-sitter counts rows by "\n" only; a lone "\r" would shift every later line number.
    return source.replace("\r\n", "\n").replace("\r", "\n")


def last_row(node: Node) -> int:
    end = node.end_point
    return end.row - 1 if end.column == 0 and end.row > node.start_point.row else end.row


def arrange(items: list[Item]) -> list[Item]:
    """Sibling items made line-disjoint, each definition taking the comments just above it.

    Chunks are whole lines, so statements sharing a line (minified code, `x = 1  # note`)
    cannot be told apart: they merge into one plain statement, definitions included.
    """
    arranged: list[Item] = []
    for item in items:
        if arranged and item.is_punctuation and item.end <= arranged[-1].end:
            continue  # its line is already in the previous item's chunk
        if arranged and item.start <= arranged[-1].end:
            previous = arranged.pop()
            item = Item(ChunkKind.MODULE, None, previous.start, max(previous.end, item.end))
        elif item.kind is not ChunkKind.MODULE:
            start = item.start
            while arranged and arranged[-1].is_comment and arranged[-1].end == start - 1:
                start = arranged.pop().start
            item = replace(item, start=start)
        arranged.append(item)
    return arranged


def code_chunks(
    items: list[Item],
    lines: list[str],
    rel_path: str,
    counter: TokenCounter,
    *,
    comment: str,
    overlap_tokens: int,
    module_summary: str = "",
) -> list[Chunk]:
    """Chunks of top-level `items`: each definition alone, runs of other statements packed.

    `module_summary` (the module docstring's first sentence) heads every chunk of module
    code."""
    items = _with_gaps_filled(items, lines)
    builder = _Builder(lines, rel_path, counter, comment, overlap_tokens, module_summary)
    chunks: list[Chunk] = []
    i = 0
    while i < len(items):
        if items[i].kind is ChunkKind.MODULE:
            stop = i
            while stop < len(items) and items[stop].kind is ChunkKind.MODULE:
                stop += 1
            chunks += builder.module(items[i:stop])
            i = stop
        else:
            chunks += builder.definition(items[i], "")
            i += 1
    return chunks


def _with_gaps_filled(items: list[Item], lines: list[str]) -> list[Item]:
    """`items` with plain items for any text between them that no syntax node holds.

    Error recovery can leave bytes of a broken file outside every top-level node; they are
    still part of the file and must reach the index.
    """
    filled: list[Item] = []
    next_row = 0
    for item in [*items, Item(ChunkKind.MODULE, None, len(lines), len(lines))]:
        text_rows = [row for row in range(next_row, item.start) if lines[row].strip()]
        if text_rows:
            filled.append(Item(ChunkKind.MODULE, None, text_rows[0], text_rows[-1]))
        filled.append(item)
        next_row = item.end + 1
    return filled[:-1]


@dataclass(frozen=True, slots=True)
class _Builder:
    lines: list[str]
    rel_path: str
    counter: TokenCounter
    comment: str
    overlap_tokens: int
    module_summary: str

    def header(self, title: str, signature: str = "", summary: str = "") -> str:
        text = definition_header(self.comment, self.rel_path, title, signature, summary)
        return clip_header(text, self.counter)

    def definition(self, item: Item, prefix: str, owner_summary: str = "") -> list[Chunk]:
        """Chunks of a definition and its members. A method's header adds its class's
        summary in parentheses (`owner_summary`): "notify_all(n) — Wake all waiters."
        says little until "(A condition allows coroutines to wait until notified.)"."""
        title = f"{prefix}{item.name}"
        hidden: set[int] = set()
        for member in item.members:
            if member.body_start is not None:
                hidden.update(range(member.body_start, member.end + 1))
        rows = [row for row in range(item.start, item.end + 1) if row not in hidden]
        summary = item.summary
        if not summary and item.head is not None and item.head > item.start:
            summary = comment_summary(self.lines[item.start : item.head])
        shown = summary
        if owner_summary and item.kind is ChunkKind.METHOD:
            shown = f"{summary} ({owner_summary})" if summary else f"({owner_summary})"
        header = self.header(title, item.signature, shown)
        chunks = self.pieces(item.kind, title, rows, header)
        for member in item.members:
            chunks += self.definition(member, f"{title}.", summary)
        return chunks

    def module(self, run: list[Item]) -> list[Chunk]:
        header = self.header(MODULE_TITLE, summary=self.module_summary)

        def render(first: int, stop: int) -> str:
            return with_header(header, self.text(run[first].start, run[stop - 1].end))

        costs = [content_tokens(self.text(item.start, item.end), self.counter) for item in run]
        chunks: list[Chunk] = []
        for group in pack(costs, render, self.counter, body_budget(header, self.counter)):
            start, end = run[group.first].start, run[group.stop - 1].end
            if group.text is None:
                rows = list(range(start, end + 1))
                chunks += self.pieces(ChunkKind.MODULE, None, rows, header)
            else:
                chunks.append(
                    Chunk(
                        self.rel_path,
                        ChunkKind.MODULE,
                        group.text,
                        group.n_tokens,
                        start_line=start + 1,
                        end_line=end + 1,
                    )
                )
        return chunks

    def pieces(
        self, kind: ChunkKind, title: str | None, rows: list[int], header: str
    ) -> list[Chunk]:
        """The lines `rows` under `header`, split into overlapping parts if they are long;
        every part carries the header."""
        body = "\n".join(self.lines[row] for row in rows)
        chunks = []
        for part, piece in enumerate(fit(header, body, self.counter, self.overlap_tokens)):
            first = body.count("\n", 0, piece.start)
            last = body.count("\n", 0, max(piece.start, piece.end - 1))
            chunks.append(
                Chunk(
                    self.rel_path,
                    kind,
                    piece.text,
                    piece.n_tokens,
                    start_line=rows[first] + 1,
                    end_line=rows[last] + 1,
                    title=title,
                    part=part,
                )
            )
        return chunks

    def text(self, start: int, end: int) -> str:
        return "\n".join(self.lines[start : end + 1])
