"""read_file: a text file of the project, through ProjectFiles (inside the root after
symlinks, hidden and secret-looking names refused, the size cap), optionally a line range."""

from __future__ import annotations

import asyncio
from typing import Any

from ..domain.actions import ActionError
from .base import Permission, Tool, ToolContext, ToolError, ToolResult

MAX_LINES = 400


async def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    if ctx.files is None:
        raise ToolError("this server has no project folder to read from")
    path = args["path"]
    try:
        code_file = await asyncio.to_thread(ctx.files.read, path)
    except ActionError as exc:
        raise ToolError(f"cannot read {path}: {exc}") from None
    lines = code_file.text.splitlines()
    start = max(1, int(args.get("start_line", 1)))
    end = min(len(lines), int(args.get("end_line", start + MAX_LINES - 1)), start + MAX_LINES - 1)
    if start > max(1, len(lines)):
        raise ToolError(f"{path} has {len(lines)} lines")
    numbered = "\n".join(f"{n:>5}  {lines[n - 1]}" for n in range(start, end + 1))
    more = f"\n… lines {end + 1}-{len(lines)} not shown" if end < len(lines) else ""
    return ToolResult(f"{path} (lines {start}-{end} of {len(lines)}):\n{numbered}{more}")


TOOL = Tool(
    name="read_file",
    description=(
        "Read a text file of the user's project (a path relative to the project root), with "
        "line numbers; at most 400 lines per call (use start_line to page)."
    ),
    parameters={
        "type": "object",
        "properties": {
            "path": {"type": "string", "maxLength": 1000},
            "start_line": {"type": "integer", "minimum": 1},
            "end_line": {"type": "integer", "minimum": 1},
        },
        "required": ["path"],
        "additionalProperties": False,
    },
    permission=Permission.READ,
    handler=run,
)
