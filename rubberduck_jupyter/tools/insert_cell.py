"""insert_cell: a new code or Markdown cell below a cell, offered as a suggestion."""

from __future__ import annotations

from typing import Any

from .base import EditTarget, Permission, Tool, ToolContext, ToolResult
from .gate import offer
from .notebook import cell_by_number, notebook_cells, other_code

MAX_SOURCE = 60_000


async def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    path, cells = await notebook_cells(ctx)
    after = cell_by_number(cells, args["after"])
    markdown = args.get("cell_type", "code") == "markdown"
    target = EditTarget(
        f"a new cell below cell {after.number}",
        after.source,
        path,
        after.number - 1,
        after.cell_id,
    )
    return await offer(
        ctx,
        TOOL.name,
        target,
        args["source"].rstrip("\n"),
        title=args.get("title") or f"Insert a cell below cell {after.number}",
        mode="insert_markdown_after" if markdown else "insert_after",
        neighbours=other_code(cells, 0),
    )


TOOL = Tool(
    name="insert_cell",
    description=(
        "Propose a new cell below cell `after` of the open notebook. The user approves it; "
        "code is reviewed first (syntax, lint) and errors come back to you to fix once."
    ),
    parameters={
        "type": "object",
        "properties": {
            "after": {"type": "integer", "minimum": 1, "description": "The cell to insert below."},
            "source": {"type": "string", "maxLength": MAX_SOURCE},
            "cell_type": {"type": "string", "enum": ["code", "markdown"]},
            "title": {"type": "string", "maxLength": 200},
        },
        "required": ["after", "source"],
        "additionalProperties": False,
    },
    permission=Permission.WRITE,
    handler=run,
)
