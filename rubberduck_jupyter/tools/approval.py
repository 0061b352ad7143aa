"""What a tool asks the user before it acts, and what comes back.

The tools ask through `ToolContext.request_approval` (the agent binds it to its Turn); the
session layer (sessions/approvals.py) sends the `approval` frame, waits for the client's
`approve` (and, for a cell the client runs, its `run_result`), and answers with an
`ApprovalOutcome`. Defined here, below the engines and sessions, so a tool needs neither.

Two families: `run`/`interrupt` are carried out by the client (it runs the cell and sends
the result); `tool` (an MCP server's write or run tool) is answered by the decision alone,
and the server makes the call itself. A grant ("allow for this turn / conversation")
covers one `scope` only, so allowing cell runs never allows an MCP server's calls, nor
one server's the other's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..protocol import RunResultRequest


class ApprovalKind(StrEnum):
    RUN = "run"
    INTERRUPT = "interrupt"
    TOOL = "tool"  # call an MCP tool (write or run permission)


class ApprovalStatus(StrEnum):
    DONE = "done"  # allowed (or allowed already) and the client sent its run_result
    ALLOWED = "allowed"  # allowed (or allowed already); nothing to wait for (kind tool)
    DENIED = "denied"  # the user declined
    NO_ANSWER = "no_answer"  # the user did not decide in time
    NO_RESULT = "no_result"  # allowed, but no run_result came in time
    UNAVAILABLE = "unavailable"  # nobody can answer approvals in this turn


@dataclass(frozen=True, slots=True)
class ToolCallInfo:
    """Which MCP tool a `tool` approval would call (sent to the client as `tool`)."""

    server: str
    name: str
    permission: str  # "write" or "run"

    def to_json(self) -> dict[str, str]:
        return {"server": self.server, "name": self.name, "permission": self.permission}


@dataclass(frozen=True, slots=True)
class ApprovalAsk:
    kind: ApprovalKind
    title: str
    path: str | None
    cell_index: int | None  # 1-based, as the user and the model number cells
    cell_id: str | None = None
    source: str = ""  # the cell's code as the agent expects it (pending edits applied)
    suggestion_ids: tuple[str, ...] = field(default_factory=tuple)
    tool: ToolCallInfo | None = None  # kind tool: the server and tool asked for

    @property
    def needs_result(self) -> bool:
        """Whether the client carries it out and sends a run_result (cells do)."""
        return self.kind is not ApprovalKind.TOOL

    @property
    def scope(self) -> str:
        """What a grant for it covers: "run" (cell runs and interrupts) or
        "tool:<server>" (that MCP server's write and run tools)."""
        if self.kind is ApprovalKind.TOOL:
            return f"tool:{self.tool.server if self.tool is not None else ''}"
        return "run"


@dataclass(frozen=True, slots=True)
class ApprovalOutcome:
    status: ApprovalStatus
    auto: bool = False  # allowed earlier for the turn or the conversation: nobody was asked
    decision: str | None = None  # the user's decision when they were asked
    result: RunResultRequest | None = None
    waited_s: float = 0.0  # the bound of the wait that ran out (NO_ANSWER, NO_RESULT)


class Approvals(Protocol):
    """One turn's way to ask its user (the session layer implements it)."""

    async def ask(self, ask: ApprovalAsk, *, timeout_s: float) -> ApprovalOutcome: ...
