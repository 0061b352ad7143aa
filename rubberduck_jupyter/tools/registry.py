"""The tools an agent turn may offer, by name, and their schemas (built once)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

from .base import Permission, Tool


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._schemas: list[dict[str, Any]] | None = None
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        self._schemas = None

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def only(self, permissions: Iterable[Permission]) -> ToolRegistry:
        """The tools with these permissions (an agent without `run`, a read-only agent)."""
        allowed = set(permissions)
        return ToolRegistry(t for t in self._tools.values() if t.permission in allowed)

    def extended(self, extra: Iterable[Tool]) -> ToolRegistry:
        """These tools and `extra` (an MCP server's), ours first. An extra whose name is
        taken is left out: a server cannot shadow one of our tools."""
        out = ToolRegistry(self._tools.values())
        for tool in extra:
            if tool.name not in out._tools:
                out.add(tool)
        return out

    def schemas(self) -> list[dict[str, Any]]:
        """Every tool's function schema, in registration order; the same list each call
        (the LLM service serializes it for its estimate and the request)."""
        if self._schemas is None:
            self._schemas = [t.schema() for t in self._tools.values()]
        return self._schemas


# How a tool source tells the user something (Turn.notice's shape: code, message).
Notify = Callable[[str, str], Awaitable[None]]


class ToolSource(Protocol):
    """Tools that join ours per turn (the MCP servers, tools/mcp/). Answers within its
    own bounds: a source that is slow leaves its tools out, it never holds the turn. What
    it could not offer (a server that failed or timed out) it says through `notify`,
    which its tools may also use during the turn. `can_ask`: the turn has a client that
    answers approvals (tools that must ask first may be offered)."""

    async def turn_tools(self, notify: Notify, *, can_ask: bool = False) -> Sequence[Tool]: ...


def default_tools() -> ToolRegistry:
    """RubberDuck's own tools: read the notebook, files, index and variables; propose
    cell and file edits; run a cell and interrupt the kernel (permission `run`: the agent
    offers those only to a client that runs cells). MCP tools join per turn."""
    from . import (
        delete_cell,
        edit_file,
        insert_cell,
        inspect_variable,
        interrupt_kernel,
        list_cells,
        list_variables,
        read_cell,
        read_file,
        replace_cell,
        run_cell,
        search_project,
    )

    return ToolRegistry(
        module.TOOL
        for module in (
            list_cells,
            read_cell,
            read_file,
            search_project,
            list_variables,
            inspect_variable,
            insert_cell,
            replace_cell,
            delete_cell,
            edit_file,
            run_cell,
            interrupt_kernel,
        )
    )
