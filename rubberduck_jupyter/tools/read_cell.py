"""read_cell: one cell of the request's notebook, whole, with its output."""

from __future__ import annotations

from typing import Any

from .base import Permission, Tool, ToolContext, ToolResult
from .notebook import cell_by_number, notebook_cells


async def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    _path, cells = await notebook_cells(ctx)
    cell = cell_by_number(cells, args["cell"])
    text = f"Cell {cell.number} [{cell.cell_type}]:\n{cell.source}"
    if cell.outputs:
        text += f"\n\nOutput:\n{cell.outputs}"
    return ToolResult(text)


TOOL = Tool(
    name="read_cell",
    description="Read one cell of the open notebook in full (source and trimmed output).",
    parameters={
        "type": "object",
        "properties": {
            "cell": {"type": "integer", "minimum": 1, "description": "The cell's number, from 1."}
        },
        "required": ["cell"],
        "additionalProperties": False,
    },
    permission=Permission.READ,
    handler=run,
)
