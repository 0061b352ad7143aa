"""inspect_variable: one kernel variable's whole summary, as the client sent it."""

from __future__ import annotations

from typing import Any

from .base import Permission, Tool, ToolContext, ToolError, ToolResult
from .list_variables import summary_of


async def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    name = args["name"]
    for v in ctx.context.variables:
        if v.name == name:
            summary = summary_of(v.name, v.summary) or "(no summary)"
            return ToolResult(f"{v.name}: {v.type}\n{summary}")
    names = ", ".join(v.name for v in ctx.context.variables[:40]) or "none"
    raise ToolError(f"no kernel variable named {name!r} (known: {names})")


TOOL = Tool(
    name="inspect_variable",
    description="Show everything known about one kernel variable (type, shape, columns, repr).",
    parameters={
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 200}},
        "required": ["name"],
        "additionalProperties": False,
    },
    permission=Permission.READ,
    handler=run,
)
