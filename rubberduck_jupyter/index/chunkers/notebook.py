"""Notebook chunks: cells packed under their section heading, long cells split with overlap."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..tokens import TokenCounter
from ..types import Chunk, ChunkError, ChunkKind
from .outline import headings
from .outputs import DEFAULT_MAX_OUTPUT_CHARS, OUTPUT_MARKER, joined_text, output_text
from .pack import body_budget, clip_header, content_tokens, fit, pack, with_header

SECTION_PREFIX = "# Section: "
CELL_SEPARATOR = "\n\n"

_KINDS = {"code": ChunkKind.CODE_CELL, "markdown": ChunkKind.MARKDOWN_CELL}


@dataclass(frozen=True, slots=True)
class _Cell:
    index: int  # in the notebook, empty cells counted
    kind: ChunkKind
    text: str  # the source, and for code cells their trimmed text outputs
    heading: str | None  # the nearest heading, this cell's own last one if it has any
    opens_section: bool


def chunk_notebook(
    source: str,
    rel_path: str,
    counter: TokenCounter,
    *,
    overlap_tokens: int = 32,
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    pack_cells: bool = True,
) -> list[Chunk]:
    """Chunks of a notebook's JSON text; ChunkError if it is not a valid notebook.

    `pack_cells=False` gives one cell per chunk (long cells still split), the baseline that
    packing is measured against.
    """
    cells = _read_cells(source, max_output_chars)
    chunks: list[Chunk] = []
    start = 0
    for stop in range(1, len(cells) + 1):
        if stop == len(cells) or cells[stop].opens_section:
            chunks += _section_chunks(
                cells[start:stop], rel_path, counter, overlap_tokens, pack_cells
            )
            start = stop
    return chunks


def _read_cells(source: str, max_output_chars: int) -> list[_Cell]:
    import nbformat  # its schema validator takes seconds to import; pay that on first use

    try:
        notebook = nbformat.reads(source, as_version=4)
    except Exception as exc:  # nbformat raises JSON, schema, key and type errors alike
        raise ChunkError(f"invalid notebook: {exc}") from exc
    raw_cells = notebook.get("cells")
    if not isinstance(raw_cells, list):
        raise ChunkError("invalid notebook: no list of cells")
    cells: list[_Cell] = []
    heading: str | None = None
    for index, raw in enumerate(raw_cells):
        if not isinstance(raw, Mapping):
            raise ChunkError(f"invalid notebook: cell {index} is not an object")
        cell_type = raw.get("cell_type")
        text = joined_text(raw.get("source")).strip()
        found = headings(text) if cell_type == "markdown" else []
        if found:
            heading = found[-1].title
        if not text:
            continue
        if cell_type == "code":
            printed = output_text(raw.get("outputs") or [], max_output_chars)
            if printed:
                text = f"{text}\n{OUTPUT_MARKER}\n{printed}"
        # Raw cells, and cell types this reader does not know, are indexed as plain text.
        kind = _KINDS.get(str(cell_type), ChunkKind.TEXT)
        cells.append(_Cell(index, kind, text, heading, bool(found)))
    return cells


def _section_chunks(
    cells: list[_Cell],
    rel_path: str,
    counter: TokenCounter,
    overlap_tokens: int,
    pack_cells: bool,
) -> list[Chunk]:
    if not cells:
        return []
    heading = cells[0].heading
    header = clip_header(SECTION_PREFIX + heading, counter) if heading else ""

    def render(first: int, stop: int) -> str:
        return with_header(header, CELL_SEPARATOR.join(cell.text for cell in cells[first:stop]))

    costs = [content_tokens(cell.text, counter) for cell in cells]
    chunks: list[Chunk] = []
    budget = body_budget(header, counter)
    for group in pack(costs, render, counter, budget, max_units=None if pack_cells else 1):
        members = cells[group.first : group.stop]
        if group.text is not None:
            kind = ChunkKind.CELLS if len(members) > 1 else members[0].kind
            indexes = tuple(cell.index for cell in members)
            chunks.append(
                Chunk(rel_path, kind, group.text, group.n_tokens, cells=indexes, title=heading)
            )
            continue
        cell = members[0]
        for part, piece in enumerate(fit(header, cell.text, counter, overlap_tokens)):
            chunks.append(
                Chunk(
                    rel_path,
                    cell.kind,
                    piece.text,
                    piece.n_tokens,
                    cells=(cell.index,),
                    title=heading,
                    part=part,
                )
            )
    return chunks
