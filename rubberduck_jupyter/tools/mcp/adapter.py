"""An MCP server's tool as one of ours: named `<server>__<tool>`, its declared input
schema as our parameters (so the dispatcher validates and truncates it like any tool),
its permission from the server's configuration, and a handler that calls the server
and turns its content blocks into text for the model, with secrets redacted.

A write or run tool asks the user before each call (a `tool` approval: the server, the
tool, its arguments as JSON), through the same door as run_cell (`ToolContext.ask`,
bounded by agent_run_timeout and the turn's time). Only "allow" reaches the server: a
decline, no answer or a client that cannot answer is told to the model, and a Stop
while waiting cancels the handler before the call."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from ..approval import ApprovalAsk, ApprovalKind, ApprovalStatus, ToolCallInfo
from ..base import Permission, Tool, ToolContext, ToolError, ToolResult
from .connection import McpConnection, McpUnavailable

# What the model reads of a tool's description: MCP servers write long ones.
MAX_DESCRIPTION_CHARS = 1_000
# Our dispatcher's timeout wraps the connection's, which fires first with a clearer
# message and marks the server failed.
TIMEOUT_MARGIN_S = 1.0
# A tool that asks first waits for the user (agent_run_timeout, capped by the turn's
# time, ToolContext.run_wait_s), then for the server (the connection's own timeout): the
# dispatcher's timeout is only a net above both, as for run_cell.
ASKING_TOOL_TIMEOUT_S = 24 * 3600.0
# What the approval card shows of the arguments (pretty JSON): a page, not a data dump.
MAX_ARGUMENTS_CHARS = 8_000
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
    the server goes away during a call. A tool that is not `read` asks the user first
    (McpServers offers it only to a turn that can ask; the handler refuses it otherwise,
    as a second guard)."""
    permission = permission_of(connection, tool)
    spec = connection.spec

    async def handle(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        if permission is not Permission.READ:
            refused = await _ask(spec.name, tool.name, permission, args, ctx)
            if refused is not None:
                return refused
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
        timeout_s=(
            spec.timeout_s + TIMEOUT_MARGIN_S
            if permission is Permission.READ
            else ASKING_TOOL_TIMEOUT_S
        ),
    )


async def _ask(
    server: str, name: str, permission: Permission, args: dict[str, Any], ctx: ToolContext
) -> ToolResult | None:
    """Asks the user to allow this call; None when allowed, else what the model reads."""
    label = f"{server}'s {name}"
    if ctx.request_approval is None:
        return ToolResult(
            f"Error: {label} needs the user's approval ({permission.value} permission), "
            "which this client cannot give: it was not called. Tell the user what you "
            "would have done.",
            ok=False,
        )
    outcome = await ctx.ask(
        ApprovalAsk(
            kind=ApprovalKind.TOOL,
            title=f"Call {server}: {name}",
            path=None,
            cell_index=None,
            source=arguments_text(args),
            tool=ToolCallInfo(server, name, permission.value),
        )
    )
    if outcome.status is ApprovalStatus.ALLOWED:
        return None
    data = {"approval": str(outcome.status), "mcp_server": server}
    if outcome.status is ApprovalStatus.DENIED:
        text = (
            f"The user declined the call to {label}: it was not called. Do not ask again "
            "for the same call; go on without it, or say what it would have done."
        )
    elif outcome.status is ApprovalStatus.NO_ANSWER:
        text = (
            f"The user did not answer within {outcome.waited_s:g} s, so {label} was not "
            "called. Go on without it, or finish and tell the user what to do."
        )
    else:
        text = f"Error: {label} could not be approved here: it was not called."
    return ToolResult(text, ok=False, data=data)


def arguments_text(args: dict[str, Any]) -> str:
    """The call's arguments as the card shows them: pretty JSON, cut past a page."""
    text = json.dumps(args, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    if len(text) > MAX_ARGUMENTS_CHARS:
        text = text[:MAX_ARGUMENTS_CHARS] + "\n… [cut]"
    return text


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
