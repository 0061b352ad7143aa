"""Scripted replies of the fake provider: plain text, or an assistant turn that calls tools.

A script entry is either a string (the answer's text) or an object::

    {"content": "I'll look at the cells first.",          # optional
     "tool_calls": [{"name": "read_cells", "arguments": {"limit": 5}, "id": "call_1"}]}

`arguments` is an object (sent as its JSON) or a string sent as it is, so a test can script
a model that writes broken JSON; `id` is optional (a stable one is made up). Streamed, a
tool call arrives as OpenAI sends it: a first delta with the call's index, id, type and
name and empty arguments, then the arguments in several pieces, and the choice ends with
finish_reason "tool_calls".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Arguments are cut into pieces of about this many characters, as providers stream them.
ARGUMENT_PIECE_CHARS = 12


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: str  # the JSON text the model "wrote", possibly invalid on purpose
    id: str


@dataclass(frozen=True, slots=True)
class ToolReply:
    content: str
    tool_calls: tuple[ToolCall, ...]


Reply = str | ToolReply


class ReplyError(ValueError):
    pass


def parse_reply(value: object, position: int = 0) -> Reply:
    """A script entry as a reply; ReplyError says what is wrong with a malformed one."""
    if isinstance(value, str | ToolReply):
        return value
    where = f"reply {position}"
    if not isinstance(value, dict):
        raise ReplyError(f"{where}: a reply is a string or an object with 'tool_calls'")
    unknown = set(value) - {"content", "tool_calls"}
    if unknown:
        raise ReplyError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    content = value.get("content", "")
    if not isinstance(content, str):
        raise ReplyError(f"{where}: 'content' must be a string")
    raw_calls = value.get("tool_calls")
    if not isinstance(raw_calls, list) or not raw_calls:
        raise ReplyError(f"{where}: 'tool_calls' must be a non-empty list")
    calls = []
    for index, raw in enumerate(raw_calls):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
            raise ReplyError(f"{where}, tool call {index}: needs a 'name'")
        unknown = set(raw) - {"name", "arguments", "id"}
        if unknown:
            raise ReplyError(
                f"{where}, tool call {index}: unknown keys {', '.join(sorted(unknown))}"
            )
        arguments = raw.get("arguments", {})
        if isinstance(arguments, dict):
            arguments = json.dumps(arguments, separators=(",", ":"))
        elif not isinstance(arguments, str):
            raise ReplyError(f"{where}, tool call {index}: 'arguments' is an object or a string")
        call_id = raw.get("id", f"call_fake{position}_{index}")
        if not isinstance(call_id, str) or not call_id:
            raise ReplyError(f"{where}, tool call {index}: 'id' must be a non-empty string")
        calls.append(ToolCall(raw["name"], arguments, call_id))
    return ToolReply(content, tuple(calls))


def parse_replies(value: object) -> list[Reply]:
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise ReplyError("'replies' must be a list of strings or tool-call objects")
    return [parse_reply(item, i) for i, item in enumerate(value)]


def reply_json(reply: Reply) -> str | dict[str, Any]:
    """The script form of a reply (what GET /_fake/script shows)."""
    if isinstance(reply, str):
        return reply
    calls = [{"name": c.name, "arguments": c.arguments, "id": c.id} for c in reply.tool_calls]
    return {"content": reply.content, "tool_calls": calls}


def reply_text(reply: Reply) -> str:
    """What the reply "costs" in completion tokens: its text and its calls' arguments."""
    if isinstance(reply, str):
        return reply
    return reply.content + "".join(c.name + c.arguments for c in reply.tool_calls)


def finish_reason(reply: Reply) -> str:
    return "stop" if isinstance(reply, str) else "tool_calls"


def assistant_message(reply: Reply) -> dict[str, Any]:
    """The assistant message of a non-streamed completion."""
    if isinstance(reply, str):
        return {"role": "assistant", "content": reply}
    return {
        "role": "assistant",
        # OpenAI sends null, not "", when a turn is only tool calls.
        "content": reply.content or None,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in reply.tool_calls
        ],
    }


def stream_deltas(reply: Reply, split: Callable[[str], list[str]]) -> list[dict[str, Any]]:
    """The deltas after the opening {"role": "assistant"} one, in order."""
    if isinstance(reply, str):
        return [{"content": piece} for piece in split(reply)]
    deltas: list[dict[str, Any]] = [{"content": piece} for piece in split(reply.content)]
    for index, call in enumerate(reply.tool_calls):
        deltas.append(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
        )
        text = call.arguments
        for start in range(0, len(text), ARGUMENT_PIECE_CHARS):
            piece = text[start : start + ARGUMENT_PIECE_CHARS]
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    return deltas
