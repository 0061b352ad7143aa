"""The request's notebook as the tools see it: its cells from the file on disk (read
through ProjectFiles, so the same containment and name rules as every other read), with
the live active cell the client sent laid over its saved version (unsaved edits win)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from ..domain.actions import ActionError, TargetMissing
from .base import ToolContext, ToolError

# Outputs are the kernel's words, not the user's code: a few lines say whether a cell
# worked; a plot's base64 or a 10,000-row repr says nothing to a model.
MAX_OUTPUT_CHARS = 600
MAX_SOURCE_PREVIEW = 400


@dataclass(frozen=True, slots=True)
class Cell:
    number: int  # 1-based, as the user and the prompt number cells
    cell_type: str
    source: str
    outputs: str
    cell_id: str | None
    live: bool = False  # the text came from the browser, not the saved file


def _source(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _outputs(outputs: Any) -> str:
    parts: list[str] = []
    for output in outputs or ():
        if not isinstance(output, dict):
            continue
        kind = output.get("output_type")
        if kind == "stream":
            parts.append(_source(output.get("text")))
        elif kind == "error":
            parts.append(f"{output.get('ename', 'Error')}: {output.get('evalue', '')}")
        elif kind in ("execute_result", "display_data"):
            data = output.get("data") or {}
            if "text/plain" in data:
                parts.append(_source(data["text/plain"]))
            elif data:
                parts.append("[" + ", ".join(sorted(data)) + " output]")
    text = "\n".join(p.rstrip("\n") for p in parts if p)
    if len(text) > MAX_OUTPUT_CHARS:
        text = text[:MAX_OUTPUT_CHARS] + f"… [{len(text) - MAX_OUTPUT_CHARS} more characters]"
    return text


def parse_cells(text: str) -> list[Cell]:
    try:
        notebook = json.loads(text)
        raw_cells = notebook["cells"]
    except (ValueError, KeyError, TypeError):
        raise ToolError("the notebook file is not valid notebook JSON") from None
    cells = []
    for i, raw in enumerate(raw_cells):
        if not isinstance(raw, dict):
            continue
        cells.append(
            Cell(
                number=i + 1,
                cell_type=str(raw.get("cell_type", "code")),
                source=_source(raw.get("source")),
                outputs=_outputs(raw.get("outputs")),
                cell_id=raw.get("id") if isinstance(raw.get("id"), str) else None,
            )
        )
    return cells


async def notebook_cells(ctx: ToolContext) -> tuple[str, list[Cell]]:
    """The request's notebook path and cells (saved file, live active cell over it)."""
    path = ctx.context.notebook_path
    if not path:
        raise ToolError("no notebook is open in this request")
    cells: list[Cell] = []
    if ctx.files is not None:
        try:
            code_file = await asyncio.to_thread(ctx.files.read, path)
            cells = parse_cells(code_file.text)
        except TargetMissing as exc:
            # An unsaved new notebook has no file yet: the live cell is all there is.
            if ctx.context.active_cell is None:
                raise ToolError(str(exc)) from None
        except ActionError as exc:  # outside the root, a refused name, too large
            raise ToolError(str(exc)) from None
    return path, _with_live_cell(ctx, cells)


def _with_live_cell(ctx: ToolContext, cells: list[Cell]) -> list[Cell]:
    index, live = ctx.context.cell_index, ctx.context.active_cell
    if index is None or live is None:
        return cells
    kind = ctx.context.cell_type or "code"
    if index < len(cells):
        old = cells[index]
        if old.source != live:
            cells[index] = Cell(old.number, old.cell_type, live, old.outputs, old.cell_id, True)
    elif index == len(cells):
        cells.append(Cell(index + 1, kind, live, "", ctx.context.cell_id, True))
    return cells


def other_code(cells: list[Cell], number: int) -> list[str]:
    """The sources of the code cells other than cell `number`."""
    return [c.source for c in cells if c.cell_type == "code" and c.number != number]


def cell_by_number(cells: list[Cell], number: int) -> Cell:
    if not 1 <= number <= len(cells):
        raise ToolError(
            f"there is no cell {number}; the notebook has {len(cells)} cells (1 to {len(cells)})"
        )
    return cells[number - 1]


async def expected_cells(
    ctx: ToolContext, path: str, cells: list[Cell]
) -> list[tuple[Cell, tuple[str, ...]]]:
    """The cells as they will be once this turn's pending suggestions on `path` are
    applied, each with the ids of the suggestions that make it so. A run of a cell the
    agent just inserted or rewrote runs that code: the client applies those suggestions
    first. A suggestion finds its cell by nbformat id, else by its saved position."""
    view: list[tuple[Cell, tuple[str, ...]]] = [(c, ()) for c in cells]
    if ctx.pending_suggestions is None:
        return view
    for suggestion in await ctx.pending_suggestions():
        target = suggestion.get("target") or {}
        if target.get("path") != path or target.get("cell_index") is None:
            continue
        at = _position(view, target)
        if at is None:
            continue
        sid, mode, proposed = suggestion["id"], suggestion.get("mode"), suggestion["proposed"]
        cell, ids = view[at]
        if mode in ("insert_after", "insert_markdown_after"):
            kind = "markdown" if mode == "insert_markdown_after" else "code"
            view.insert(at + 1, (Cell(0, kind, proposed, "", None), (sid,)))
        elif mode == "delete":
            del view[at]
        else:
            view[at] = (Cell(0, cell.cell_type, proposed, "", cell.cell_id), (*ids, sid))
    return [
        (Cell(i + 1, c.cell_type, c.source, c.outputs, c.cell_id, c.live), ids)
        for i, (c, ids) in enumerate(view)
    ]


def _position(view: list[tuple[Cell, tuple[str, ...]]], target: dict[str, Any]) -> int | None:
    cell_id = target.get("cell_id")
    if cell_id:
        for i, (cell, _) in enumerate(view):
            if cell.cell_id == cell_id:
                return i
        return None
    index = target.get("cell_index")
    return index if isinstance(index, int) and 0 <= index < len(view) else None
