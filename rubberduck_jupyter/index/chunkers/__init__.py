"""Cutting files into chunks that each fit the embedder's window, whole.

Every chunk's text counts at most `counter.window` tokens, so everything indexed reaches the
embedder: long bodies are split with overlap, never truncated. The chunker is chosen by
suffix; what no grammar covers (TypeScript included) is chunked as plain text by size.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..tokens import TokenCounter
from ..types import Chunk, ChunkError
from .javascript import chunk_javascript
from .markdown import chunk_markdown
from .notebook import chunk_notebook
from .python import chunk_python
from .split import split_to_window
from .text import chunk_text

__all__ = [
    "chunk_bytes",
    "chunk_file",
    "chunk_javascript",
    "chunk_markdown",
    "chunk_notebook",
    "chunk_python",
    "chunk_source",
    "chunk_text",
    "chunker_for",
    "split_to_window",
]

Chunker = Callable[..., list[Chunk]]

_BY_SUFFIX: dict[str, Chunker] = {
    ".ipynb": chunk_notebook,
    ".py": chunk_python,
    ".js": chunk_javascript,
    ".mjs": chunk_javascript,
    ".cjs": chunk_javascript,
    ".jsx": chunk_javascript,
    ".md": chunk_markdown,
    ".markdown": chunk_markdown,
}


def chunker_for(rel_path: str) -> Chunker:
    return _BY_SUFFIX.get(Path(rel_path).suffix.lower(), chunk_text)


def chunk_source(
    source: str, rel_path: str, counter: TokenCounter, *, overlap_tokens: int = 32
) -> list[Chunk]:
    """Chunks of a file's decoded text, e.g. a notebook's content at save time."""
    return chunker_for(rel_path)(source, rel_path, counter, overlap_tokens=overlap_tokens)


def chunk_file(
    path: Path, rel_path: str, counter: TokenCounter, *, overlap_tokens: int = 32
) -> list[Chunk]:
    """Chunks of the file at `path`; ChunkError if it is binary, not UTF-8 or malformed.

    OSError (the file vanished or is unreadable) is left to the caller.
    """
    return chunk_bytes(path.read_bytes(), rel_path, counter, overlap_tokens=overlap_tokens)


def chunk_bytes(
    data: bytes, rel_path: str, counter: TokenCounter, *, overlap_tokens: int = 32
) -> list[Chunk]:
    """Chunks of a file's raw content, for a caller that has read (and hashed) it already."""
    return chunk_source(_decode(data), rel_path, counter, overlap_tokens=overlap_tokens)


def _decode(data: bytes) -> str:
    if b"\0" in data:
        raise ChunkError("binary or non-UTF-8 file")
    try:
        return data.decode("utf-8-sig")  # a byte-order mark is not content
    except UnicodeDecodeError as exc:
        raise ChunkError("binary or non-UTF-8 file") from exc
