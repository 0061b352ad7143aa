"""An MCP server's tool as one of ours: named `<server>__<tool>`, its declared input
schema as our parameters (so the dispatcher validates and truncates it like any tool),
its permission from the server's configuration, and a handler that calls the server
and turns its content blocks into text for the model, with secrets redacted."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from ..base import Permission, Tool, ToolContext, ToolError, ToolResult
from .connection import McpConnection, McpUnavailable

# What the model reads of a tool's description: MCP servers write long ones.
MAX_DESCRIPTION_CHARS = 1_000
# Our dispatcher's timeout wraps the connection's, which fires first with a clearer
# message and marks the server failed.
TIMEOUT_MARGIN_S = 1.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

Notify = Callable[[str, str], Awaitable[None]]


def tool_name(server: str, tool: str) -> str:
    """`<server>__<tool>`, in the characters and length function names allow (64)."""
    return f"{server}__{_UNSAFE.sub('_', tool)}"[:64]


def permission_of(connection: McpConnection, tool: Any) -> Permission:
    """The server's configured permission; a tool the server itself says changes things
    (readOnlyHint false, destructiveHint true) is raised to `write` from `read`. A
    server's claim to only read is never believed over its configuration."""
    configured = connection.spec.permission
    hints = getattr(tool, "annotations", None)
    changes = hints is not None and (
        hints.read_only_hint is False or hints.destructive_hint is True
    )
    if configured is Permission.READ and changes:
        return Permission.WRITE
    return configured


def parameters_of(tool: Any) -> dict[str, Any]:
    schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
    if schema.get("type") != "object":
        schema = {"type": "object", "properties": {}}
    return schema


def adapt(
    connection: McpConnection,
    tool: Any,
    *,
    notify: Notify,
    code: str,
    redact: Callable[[str], str],
) -> Tool:
    """Our Tool for `tool` of `connection`. `notify(code, message)` tells the user when
    the server goes away during a call. Only read tools are offered today (see
    McpServers): the handler refuses any other as a second guard."""
    permission = permission_of(connection, tool)
    spec = connection.spec

    async def handle(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        if permission is not Permission.READ:
            raise ToolError(
                f"{spec.name}'s {tool.name} needs your approval ({permission.value} "
                "permission), which the agent cannot ask for yet: it was not run"
            )
        try:
            result = await connection.call(tool.name, args)
        except McpUnavailable as exc:
            if not connection.reported:
                connection.reported = True
                await notify(code, _notice(connection))
            raise ToolError(str(exc)) from None
        text = redact(result_text(result))
        if getattr(result, "is_error", False):
            return ToolResult(f"Error from {spec.name}: {text}", ok=False)
        return ToolResult(text or "(no content)", data={"mcp_server": spec.name})

    description = (tool.description or tool.name).strip()
    if len(description) > MAX_DESCRIPTION_CHARS:
        description = description[:MAX_DESCRIPTION_CHARS] + "…"
    return Tool(
        name=tool_name(spec.name, tool.name),
        description=f"[MCP server {spec.name}] {description}",
        parameters=parameters_of(tool),
        permission=permission,
        handler=handle,
        timeout_s=spec.timeout_s + TIMEOUT_MARGIN_S,
    )


def result_text(result: Any) -> str:
    """A CallToolResult as text: text blocks as they are, a resource's text, a link's
    URI, other media named; structured content as JSON when there is nothing else."""
    parts: list[str] = []
    for block in getattr(result, "content", None) or ():
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[{resource.uri}: binary content]")
        elif kind == "resource_link":
            parts.append(f"[resource {block.uri}]")
        elif kind in ("image", "audio"):
            parts.append(f"[{block.mime_type} {kind}]")
        else:
            parts.append(f"[{kind or 'unknown'} content]")
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False, default=str))
    return "\n".join(parts)


def _notice(connection: McpConnection) -> str:
    return (
        f"The MCP server {connection.spec.name} stopped answering ({connection.error}); "
        "its tools are left out until it is tried again."
    )
