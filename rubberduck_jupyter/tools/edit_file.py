"""edit_file: a change to an existing text file of the project, offered as a suggestion:
either one exact `old` -> `new` replacement (which must match exactly once) or the whole
new `content`. Notebooks are edited cell by cell with the cell tools."""

from __future__ import annotations

import asyncio
from typing import Any

from ..domain.actions import ActionError
from .base import EditTarget, Permission, Tool, ToolContext, ToolError, ToolResult
from .gate import offer

MAX_CONTENT = 200_000


async def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    if ctx.files is None:
        raise ToolError("this server has no project folder")
    path = args["path"]
    if path.lower().endswith(".ipynb"):
        raise ToolError("edit notebooks with insert_cell / replace_cell / delete_cell")
    try:
        current = (await asyncio.to_thread(ctx.files.read, path)).text
    except ActionError as exc:
        raise ToolError(f"cannot edit {path}: {exc}") from None
    if "content" in args:
        if "old" in args or "new" in args:
            raise ToolError("give either 'content', or 'old' and 'new', not both")
        proposed = args["content"]
    else:
        if "old" not in args or "new" not in args:
            raise ToolError("give 'old' and 'new' (an exact replacement) or 'content'")
        count = current.count(args["old"]) if args["old"] else 0
        if count != 1:
            where = "does not occur" if count == 0 else f"occurs {count} times"
            raise ToolError(f"'old' {where} in {path}; it must match exactly once")
        proposed = current.replace(args["old"], args["new"], 1)
    if proposed == current:
        return ToolResult(f"{path} already reads so; nothing to suggest.")
    target = EditTarget(path, current, path)
    return await offer(ctx, TOOL.name, target, proposed, title=args.get("title") or f"Edit {path}")


TOOL = Tool(
    name="edit_file",
    description=(
        "Propose a change to an existing text file of the project: an exact replacement "
        "(`old` must occur exactly once) or the whole new `content`. The user approves it; "
        "Python is reviewed first and errors come back to you once."
    ),
    parameters={
        "type": "object",
        "properties": {
            "path": {"type": "string", "maxLength": 1000},
            "old": {"type": "string", "maxLength": MAX_CONTENT},
            "new": {"type": "string", "maxLength": MAX_CONTENT},
            "content": {"type": "string", "maxLength": MAX_CONTENT},
            "title": {"type": "string", "maxLength": 200},
        },
        "required": ["path"],
        "additionalProperties": False,
    },
    permission=Permission.WRITE,
    handler=run,
)
