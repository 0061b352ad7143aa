"""list_variables: the kernel variables the client sent with the request (names, types,
short summaries). Read-only: nothing runs in the kernel."""

from __future__ import annotations

from typing import Any

from ..context.redact import REDACTED, is_secret_name
from .base import Permission, Tool, ToolContext, ToolResult


def summary_of(name: str, summary: str) -> str:
    # A secret-looking name's value never goes to the model (as context/prompt.py does).
    return REDACTED if is_secret_name(name) else summary


async def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    variables = ctx.context.variables
    if not variables:
        return ToolResult("The client sent no kernel variables (no kernel, or none defined).")
    lines = []
    for v in variables:
        short = summary_of(v.name, v.summary).splitlines()[0][:120] if v.summary else ""
        lines.append(f"- {v.name}: {v.type}" + (f" — {short}" if short else ""))
    return ToolResult(f"{len(variables)} kernel variables:\n" + "\n".join(lines))


TOOL = Tool(
    name="list_variables",
    description="List the user's kernel variables (name, type, a one-line summary).",
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
    permission=Permission.READ,
    handler=run,
)
