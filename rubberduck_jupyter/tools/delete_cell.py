"""delete_cell: offered as a suggestion that empties the cell.

A suggestion has no "delete" mode yet (domain/actions.py applies replace and insert
modes; the sidebar's approve/reject UI comes with the next step), so the cell's source is
replaced by nothing and the user removes the empty cell. The seam: a `delete` mode there."""

from __future__ import annotations

from typing import Any

from .base import EditTarget, Permission, Tool, ToolContext, ToolResult
from .notebook import cell_by_number, notebook_cells


async def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    if ctx.suggest is None:
        return ToolResult("Error: this conversation cannot take suggestions.", ok=False)
    path, cells = await notebook_cells(ctx)
    cell = cell_by_number(cells, args["cell"])
    target = EditTarget(f"cell {cell.number}", cell.source, path, cell.number - 1, cell.cell_id)
    title = f"Empty cell {cell.number} (to delete it)"
    suggestion = await ctx.suggest(target=target, proposed="", title=title, mode="replace")
    if suggestion is None:
        return ToolResult("Not offered: RubberDuck refused this change.", ok=False)
    return ToolResult(
        f"Suggested to the user as {suggestion.id} ({title}): applying it empties the cell; "
        "pending their approval.",
        data={"suggestion": suggestion.id},
    )


TOOL = Tool(
    name="delete_cell",
    description="Propose removing a cell of the open notebook (the user approves it).",
    parameters={
        "type": "object",
        "properties": {"cell": {"type": "integer", "minimum": 1}},
        "required": ["cell"],
        "additionalProperties": False,
    },
    permission=Permission.WRITE,
    handler=run,
)
