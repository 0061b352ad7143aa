"""What a run tool asks the user, and what comes back.

The tools ask through `ToolContext.request_approval` (the agent binds it to its Turn); the
session layer (sessions/approvals.py) sends the `approval` frame, waits for the client's
`approve` and `run_result`, and answers with an `ApprovalOutcome`. Defined here, below the
engines and sessions, so a tool needs neither.
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


class ApprovalStatus(StrEnum):
    DONE = "done"  # allowed (or allowed already) and the client sent its run_result
    DENIED = "denied"  # the user declined
    NO_ANSWER = "no_answer"  # the user did not decide in time
    NO_RESULT = "no_result"  # allowed, but no run_result came in time
    UNAVAILABLE = "unavailable"  # nobody can answer approvals in this turn


@dataclass(frozen=True, slots=True)
class ApprovalAsk:
    kind: ApprovalKind
    title: str
    path: str | None
    cell_index: int | None  # 1-based, as the user and the model number cells
    cell_id: str | None = None
    source: str = ""  # the cell's code as the agent expects it (pending edits applied)
    suggestion_ids: tuple[str, ...] = field(default_factory=tuple)


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
