"""The records every part of the index shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ChunkKind(StrEnum):
    CODE_CELL = "code_cell"
    MARKDOWN_CELL = "markdown_cell"
    CELLS = "cells"  # several short notebook cells packed into one chunk
    FUNCTION = "function"
    CLASS = "class"
    METHOD = "method"
    MODULE = "module"  # module-level code between definitions
    MARKDOWN = "markdown"  # a section of a Markdown file
    TEXT = "text"  # any other text file, by size


@dataclass(frozen=True, slots=True)
class Chunk:
    """One searchable, embeddable piece of a file.

    `text` is exactly what is embedded and matched by BM25; it fits the embedder's window
    (`n_tokens` counts it with the embedder's tokenizer, special tokens included).
    Locations are 1-based inclusive lines for files, 0-based cell indexes for notebooks.
    """

    path: str  # relative to the indexed root, POSIX separators
    kind: ChunkKind
    text: str
    n_tokens: int
    start_line: int | None = None
    end_line: int | None = None
    cells: tuple[int, ...] = field(default_factory=tuple)  # notebook cells it covers, in order
    title: str | None = None  # nearest heading, or qualified name of a definition
    part: int = 0  # index of this piece when one long body was split with overlap

    @property
    def cell(self) -> int | None:
        return self.cells[0] if self.cells else None


class ChunkError(Exception):
    """A file that cannot be chunked (invalid notebook, binary, undecodable); it is skipped."""


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk as the index holds it, with its id in the store."""

    id: int
    path: str
    kind: str
    text: str
    start_line: int | None
    end_line: int | None
    cells: tuple[int, ...]
    title: str | None
    part: int
    n_tokens: int

    @property
    def cell(self) -> int | None:
        return self.cells[0] if self.cells else None


class EmbedderError(RuntimeError):
    """The index's embedder cannot work: misconfigured, or its provider failing. Here, below
    every embedder module, so each can raise it without importing the configuration."""
