"""list_cells: the request's notebook, every cell with a preview and trimmed outputs."""

from __future__ import annotations

from typing import Any

from .base import Permission, Tool, ToolContext, ToolResult
from .notebook import MAX_SOURCE_PREVIEW, notebook_cells


async def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    path, cells = await notebook_cells(ctx)
    active = ctx.context.cell_index
    lines = [f"Notebook {path}: {len(cells)} cells."]
    for cell in cells:
        marks = []
        if active is not None and cell.number == active + 1:
            marks.append("active")
        if cell.live:
            marks.append("unsaved edits")
        mark = f" ({', '.join(marks)})" if marks else ""
        source = cell.source
        if len(source) > MAX_SOURCE_PREVIEW:
            source = source[:MAX_SOURCE_PREVIEW] + f"… [read_cell {cell.number} for the rest]"
        lines.append(f"\n## Cell {cell.number} [{cell.cell_type}]{mark}\n{source}")
        if cell.outputs and args.get("outputs", True):
            lines.append(f"Output:\n{cell.outputs}")
    return ToolResult("\n".join(lines), data={"cells": len(cells)})


TOOL = Tool(
    name="list_cells",
    description=(
        "List the cells of the user's open notebook, numbered from 1, with a preview of "
        "each cell's source and its trimmed output."
    ),
    parameters={
        "type": "object",
        "properties": {
            "outputs": {"type": "boolean", "description": "Include outputs (default true)."}
        },
        "additionalProperties": False,
    },
    permission=Permission.READ,
    handler=run,
)
