"""Runs a model's tool calls: parse the arguments' JSON, validate them against the tool's
schema, run the handler under a timeout, and truncate what goes back. Every failure
becomes a result the model reads (and can correct); nothing here raises out of a turn,
except cancellation (the user's Stop)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from ..llm.client import ToolCall
from .base import Permission, ToolContext, ToolError, ToolResult
from .registry import ToolRegistry
from .schema import problems

log = logging.getLogger(__name__)

# A tool answer goes into every later prompt of the turn: 12,000 characters (~3,000
# tokens) is a long file's worth, and ten of them still fit a 128k window.
MAX_RESULT_CHARS = 12_000
# A read tool reads a file or searches the index (tens of ms); a write tool runs the
# review gate (ruff in a subprocess, ~50-300 ms). Ten seconds means something is stuck.
DEFAULT_TIMEOUT_S = 10.0
MAX_ARGUMENT_CHARS = 200_000


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    call: ToolCall
    result: ToolResult
    permission: Permission | None
    elapsed_s: float
    arguments: dict[str, Any] | None = None
    truncated: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def message(self) -> dict[str, Any]:
        """The `role: "tool"` message that answers the call."""
        return {"role": "tool", "tool_call_id": self.call.id, "content": self.result.text}


def truncate(text: str, limit: int = MAX_RESULT_CHARS) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    cut = len(text) - limit
    return text[:limit] + f"\n… [{cut} more characters not shown; ask for less]", True


class Dispatcher:
    def __init__(
        self,
        registry: ToolRegistry,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_result_chars: int = MAX_RESULT_CHARS,
    ) -> None:
        self.registry = registry
        self.timeout_s = timeout_s
        self.max_result_chars = max_result_chars

    async def run(self, call: ToolCall, ctx: ToolContext) -> ToolOutcome:
        started = time.perf_counter()
        tool = self.registry.get(call.name)
        arguments: dict[str, Any] | None = None
        if tool is None:
            names = ", ".join(self.registry.names())
            result = ToolResult(
                f"Error: there is no tool named {call.name!r}. Tools: {names}.", ok=False
            )
        else:
            arguments, error = parse_arguments(call.arguments, tool.parameters)
            if error is not None:
                result = ToolResult(
                    f"Error: {error}. Call {tool.name} again with valid arguments.", ok=False
                )
            else:
                assert arguments is not None
                result = await self._handle(tool.name, tool.handler, arguments, ctx, tool.timeout_s)
        text, truncated = truncate(result.text, self.max_result_chars)
        if truncated:
            result = ToolResult(text, result.ok, result.data)
        return ToolOutcome(
            call=call,
            result=result,
            permission=tool.permission if tool else None,
            elapsed_s=time.perf_counter() - started,
            arguments=arguments,
            truncated=truncated,
        )

    async def _handle(
        self,
        name: str,
        handler: Any,
        arguments: dict[str, Any],
        ctx: ToolContext,
        tool_timeout_s: float | None,
    ) -> ToolResult:
        limit = tool_timeout_s or self.timeout_s
        try:
            async with asyncio.timeout(limit):
                result: ToolResult = await handler(arguments, ctx)
            return result
        except ToolError as exc:
            return ToolResult(f"Error: {exc}", ok=False)
        except TimeoutError:
            return ToolResult(
                f"Error: {name} took longer than {limit:g} s and was stopped.", ok=False
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("RubberDuck tool %s failed", name)
            return ToolResult(
                f"Error: {name} failed inside RubberDuck (see the server log).", ok=False
            )


def parse_arguments(text: str, schema: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The arguments as an object, or why they are not valid (said for the model)."""
    if len(text) > MAX_ARGUMENT_CHARS:
        return None, f"the arguments are longer than {MAX_ARGUMENT_CHARS} characters"
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        return None, f"the arguments are not valid JSON ({exc})"
    found = problems(schema, value)
    if found:
        return None, "invalid arguments: " + "; ".join(found)
    return value, None
