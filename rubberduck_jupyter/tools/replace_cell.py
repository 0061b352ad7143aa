"""replace_cell: a cell's whole new source, offered as a suggestion."""

from __future__ import annotations

from typing import Any

from .base import EditTarget, Permission, Tool, ToolContext, ToolResult
from .gate import offer
from .insert_cell import MAX_SOURCE
from .notebook import cell_by_number, notebook_cells, other_code


async def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    path, cells = await notebook_cells(ctx)
    cell = cell_by_number(cells, args["cell"])
    proposed = args["source"].rstrip("\n")
    if proposed == cell.source.rstrip("\n"):
        return ToolResult(f"Cell {cell.number} already has this source; nothing to suggest.")
    target = EditTarget(f"cell {cell.number}", cell.source, path, cell.number - 1, cell.cell_id)
    return await offer(
        ctx,
        TOOL.name,
        target,
        proposed,
        title=args.get("title") or f"Replace cell {cell.number}",
        neighbours=other_code(cells, cell.number),
    )


TOOL = Tool(
    name="replace_cell",
    description=(
        "Propose new source for a whole cell of the open notebook (give the complete cell). "
        "The user approves it; code is reviewed first and errors come back to you once."
    ),
    parameters={
        "type": "object",
        "properties": {
            "cell": {"type": "integer", "minimum": 1},
            "source": {"type": "string", "maxLength": MAX_SOURCE},
            "title": {"type": "string", "maxLength": 200},
        },
        "required": ["cell", "source"],
        "additionalProperties": False,
    },
    permission=Permission.WRITE,
    handler=run,
)
