"""The tool dispatcher and schema check with real tools: bad JSON, missing and unknown
fields, wrong types, an unknown tool, a handler that fails or hangs, and a big result
truncated; each comes back as a result the model reads, never an exception."""

from __future__ import annotations

import asyncio
from typing import Any

from rubberduck_jupyter.llm.client import ToolCall
from rubberduck_jupyter.protocol import ChatContext, KernelVariable
from rubberduck_jupyter.tools.base import Permission, Tool, ToolContext, ToolError, ToolResult
from rubberduck_jupyter.tools.dispatch import Dispatcher
from rubberduck_jupyter.tools.registry import ToolRegistry, default_tools
from rubberduck_jupyter.tools.schema import problems

CTX = ToolContext(
    context=ChatContext(
        variables=(
            KernelVariable("df", "DataFrame", "3 rows\ncolumns: a, b"),
            KernelVariable("api_token", "str", "'tok-123456789'"),
        )
    )
)


def _run(dispatcher: Dispatcher, name: str, arguments: str) -> Any:
    return asyncio.run(dispatcher.run(ToolCall("c1", name, arguments), CTX))


def test_default_tools_have_schemas_and_permissions() -> None:
    registry = default_tools()
    by_permission = {t.name: t.permission for t in registry}
    assert by_permission["read_file"] is Permission.READ
    assert by_permission["insert_cell"] is Permission.WRITE
    assert [s["function"]["name"] for s in registry.schemas()] == registry.names()
    assert registry.schemas() is registry.schemas()  # built once
    assert set(registry.only([Permission.READ]).names()) == {
        "list_cells",
        "read_cell",
        "read_file",
        "search_project",
        "list_variables",
        "inspect_variable",
    }


def test_schema_problems_are_written_for_the_model() -> None:
    schema = default_tools().get("read_file").parameters  # type: ignore[union-attr]
    assert problems(schema, {"path": "a.py"}) == []
    assert problems(schema, []) == ["the arguments must be a JSON object"]
    assert problems(schema, {"start_line": 0, "extra": 1}) == [
        "missing required field 'path'",
        "unknown field(s) extra (the fields are: path, start_line, end_line)",
        "'start_line' must be at least 1",
    ]
    assert problems(schema, {"path": 3}) == ["'path' must be a string"]
    assert problems(schema, {"path": "a", "start_line": True}) == [
        "'start_line' must be an integer"
    ]


def test_bad_calls_become_errors_for_the_model() -> None:
    dispatcher = Dispatcher(default_tools())
    broken = _run(dispatcher, "inspect_variable", '{"name": "df"')
    assert not broken.result.ok and "not valid JSON" in broken.result.text
    missing = _run(dispatcher, "inspect_variable", "{}")
    assert "missing required field 'name'" in missing.result.text
    unknown = _run(dispatcher, "rm_rf", "{}")
    assert "no tool named 'rm_rf'" in unknown.result.text and "read_file" in unknown.result.text
    absent = _run(dispatcher, "inspect_variable", '{"name": "nope"}')
    assert absent.result.text.startswith("Error: no kernel variable named 'nope'")
    good = _run(dispatcher, "inspect_variable", '{"name": "df"}')
    assert good.result.ok and good.result.text == "df: DataFrame\n3 rows\ncolumns: a, b"
    assert good.message() == {"role": "tool", "tool_call_id": "c1", "content": good.result.text}


def test_variables_are_read_only_and_secret_names_redacted() -> None:
    dispatcher = Dispatcher(default_tools())
    listing = _run(dispatcher, "list_variables", "").result.text
    assert "- df: DataFrame — 3 rows" in listing
    assert "tok-123456789" not in listing and "[REDACTED]" in listing
    assert (
        "tok-123456789"
        not in _run(dispatcher, "inspect_variable", '{"name": "api_token"}').result.text
    )


async def _slow(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    await asyncio.sleep(5)
    return ToolResult("late")


async def _big(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    return ToolResult("y" * 50_000)


async def _crash(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    raise RuntimeError("boom with internals")


async def _refuse(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    raise ToolError("that cell is not there")


def _tool(name: str, handler: Any, timeout_s: float | None = None) -> Tool:
    schema = {"type": "object", "properties": {}, "additionalProperties": False}
    return Tool(name, name, schema, Permission.READ, handler, timeout_s)


def test_timeouts_failures_and_truncation() -> None:
    registry = ToolRegistry(
        [
            _tool("slow", _slow, 0.1),
            _tool("big", _big),
            _tool("crash", _crash),
            _tool("refuse", _refuse),
        ]
    )
    dispatcher = Dispatcher(registry, max_result_chars=1000)
    slow = _run(dispatcher, "slow", "{}")
    assert slow.result.text == "Error: slow took longer than 0.1 s and was stopped."
    big = _run(dispatcher, "big", "{}")
    assert (
        big.truncated and len(big.result.text) < 1100 and "49000 more characters" in big.result.text
    )
    crash = _run(dispatcher, "crash", "{}")
    assert "failed inside RubberDuck" in crash.result.text and "internals" not in crash.result.text
    assert _run(dispatcher, "refuse", "{}").result.text == "Error: that cell is not there"
