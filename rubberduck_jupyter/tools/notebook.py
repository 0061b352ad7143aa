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
