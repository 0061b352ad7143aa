"""What every tool is made of, and the context a call runs in.

A tool is data (name, description, JSON schema, permission) and one async handler that
takes validated arguments and a `ToolContext`. Handlers raise `ToolError` for anything the
model should hear about (a cell that does not exist, a path outside the project); the
dispatcher turns it into the tool's answer, so no tool failure ends the turn.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..context.retrieval import Citation, Retriever
    from ..domain.actions import ProjectFiles
    from ..protocol import ChatContext
    from .approval import ApprovalAsk, ApprovalOutcome


class Permission(StrEnum):
    READ = "read"  # looks; nothing changes
    WRITE = "write"  # proposes a change the user approves (a CodeSuggestion)
    RUN = "run"  # runs code in the user's kernel, through their client, after they allow it


class ToolError(Exception):
    """A tool could not do what the model asked; the message goes back to the model."""


@dataclass(frozen=True, slots=True)
class EditTarget:
    """Where a write tool's suggestion applies, in the shape `Turn.suggest` reads."""

    label: str
    source: str
    path: str | None = None
    cell_index: int | None = None
    cell_id: str | None = None
    is_selection: bool = False


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool answers: the text the model reads, and facts for the agent and UI."""

    text: str
    ok: bool = True
    data: Mapping[str, Any] = field(default_factory=dict)


# Turn.suggest's shape: keyword arguments target, proposed, title, mode.
Suggest = Callable[..., Awaitable[Any]]
Findings = Callable[[int, list[dict[str, Any]], bool], Awaitable[None]]


@dataclass
class ToolContext:
    """What one turn's tools may use. Built by the agent from its Turn; tests build it
    directly. `suggest` is the only way a write tool changes anything."""

    context: ChatContext
    user: str = ""
    files: ProjectFiles | None = None
    retriever: Retriever | None = None
    suggest: Suggest | None = None
    on_findings: Findings | None = None
    on_citations: Callable[[list[Citation]], Awaitable[None]] | None = None
    # Targets whose edit the review gate already sent back once (one correction round),
    # with that round's number and findings.
    corrected: dict[str, tuple[int, list[dict[str, Any]]]] = field(default_factory=dict)
    review_rounds: int = 0
    cited: int = 0  # sources search_project has cited so far this turn
    # Whether the gate runs (the benchmark measures without it); syntax is always checked.
    review: bool = True
    # The run tools' door to the user (Turn.request_approval); None: nobody can run cells.
    request_approval: Callable[..., Awaitable[ApprovalOutcome]] | None = None
    # How long a run tool waits for the user's decision, and again for the run's result
    # (agent_run_timeout); never past `deadline` (the turn's end, loop time) when set.
    run_timeout_s: float = 120.0
    deadline: float | None = None
    # This turn's suggestions not yet applied or rejected, as stored now (to_json dicts):
    # a run of a cell the agent just inserted or changed applies them first.
    pending_suggestions: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None

    def run_wait_s(self) -> float:
        """The bound of one run wait: the run timeout, or what is left of the turn."""
        if self.deadline is None:
            return self.run_timeout_s
        import asyncio

        left = self.deadline - asyncio.get_running_loop().time()
        return max(0.0, min(self.run_timeout_s, left))

    async def ask(self, ask: ApprovalAsk) -> ApprovalOutcome:
        from .approval import ApprovalOutcome, ApprovalStatus

        if self.request_approval is None:
            return ApprovalOutcome(ApprovalStatus.UNAVAILABLE)
        return await self.request_approval(ask, timeout_s=self.run_wait_s())

    @property
    def known_names(self) -> list[str]:
        return [v.name for v in self.context.variables]


Handler = Callable[[dict[str, Any], ToolContext], Awaitable[ToolResult]]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: Mapping[str, Any]  # a JSON schema of type object (schema.py's subset)
    permission: Permission
    handler: Handler
    # Seconds one call may take; the dispatcher's default when None.
    timeout_s: float | None = None

    def schema(self) -> dict[str, Any]:
        """The OpenAI-style function schema sent to the model."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }
