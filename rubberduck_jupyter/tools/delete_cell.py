"""delete_cell: offered as a suggestion in `delete` mode: applying it removes the cell
(domain/actions.py, refused if the cell changed since), rejecting it keeps the cell."""

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
    title = f"Delete cell {cell.number}"
    suggestion = await ctx.suggest(target=target, proposed="", title=title, mode="delete")
    if suggestion is None:
        return ToolResult("Not offered: RubberDuck refused this change.", ok=False)
    return ToolResult(
        f"Suggested to the user as {suggestion.id} ({title}): applying it removes the cell "
        "(the cells below move up by one); pending their approval.",
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
