"""The agent's approvals in flight: an `approval` frame out, the user's answer back.

A run tool asks through its turn (`TurnApprovals.ask`, one per turn); this module sends
the frame through the turn's emit (so it is numbered and kept like every frame, and a
resumed socket sees it again), and waits for the client's `approve` and then, for a cell
the client runs (kinds run, interrupt), its `run_result`. A `tool` approval (an MCP
write/run tool) is answered by the decision alone: the server makes the call. Answers
are looked up by (user, turn id, approval id): any socket of the same user may answer
(the turn outlives a dropped socket), another user's frame finds nothing, the same
refusal as an id that never existed.

Each wait is bounded by the caller (`agent_run_timeout`, capped by what is left of the
turn's time): the decision, then the result. A Stop cancels the waiting turn, which
closes the approval (`approval.closed` reason "cancelled"). `approval.closed` goes out
once per approval, when nothing more is asked of the user: at the decision
("answered"), or when the wait for it ends ("timeout", "cancelled"); an approval that
was allowed already (`auto`) closes when its run_result arrives or its wait ends.

"Allow for this conversation" is remembered here, in memory, per (user, conversation,
scope): a grant to run code without asking is about this server's kernels, so a restart
asks again (the safer default), and it needs no schema change. Grants are kept apart by
scope (`ApprovalAsk.scope`: "run" for cells, "tool:<server>" for one MCP server's
tools): allowing cell runs must not let a server change tickets, nor the reverse; "allow
for this turn" is scoped the same way. Bounded: the oldest grants go past `MAX_GRANTS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..domain.models import new_id
from ..protocol import ApproveRequest, RunResultRequest, approval_closed_frame, approval_frame
from ..tools.approval import ApprovalAsk, ApprovalOutcome, ApprovalStatus

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], Awaitable[None]]

# Conversations with "allow for this conversation": far more than one server's users
# keep open; the oldest grant is dropped (it asks again) past it.
MAX_GRANTS = 4_096
# Approvals open at once across users: a turn asks one at a time, so this is a net for
# a bug, not a limit anyone meets.
MAX_PENDING = 1_024


class ApprovalRefused(Exception):
    """An `approve` or `run_result` frame that cannot be taken; the message says why."""

    def __init__(self, message: str, *, unknown: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unknown = unknown  # no such approval for this user (unknown_id)


@dataclass(eq=False)
class _Pending:
    auto: bool
    needs_result: bool
    # Sends this approval's `approval.closed` once (the turn's own emit).
    close: Callable[[str], Awaitable[None]]
    decision: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    result: asyncio.Future[RunResultRequest] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class ApprovalBroker:
    """Every user's open approvals and conversation-wide grants (one per server)."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str, str], _Pending] = {}
        self._grants: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    def channel(self, user: str, conversation_id: str, turn_id: str, emit: Emit) -> TurnApprovals:
        return TurnApprovals(self, user, conversation_id, turn_id, emit)

    # --- grants ---------------------------------------------------------------------

    def allowed_for_conversation(self, user: str, conversation_id: str, scope: str = "run") -> bool:
        return (user, conversation_id, scope) in self._grants

    def grant(self, user: str, conversation_id: str, scope: str = "run") -> None:
        key = (user, conversation_id, scope)
        self._grants[key] = None
        self._grants.move_to_end(key)
        while len(self._grants) > MAX_GRANTS:
            self._grants.popitem(last=False)

    def revoke(self, user: str, conversation_id: str, scope: str | None = None) -> None:
        """Drops the conversation's grant for `scope` (None: every scope)."""
        for key in [k for k in self._grants if k[:2] == (user, conversation_id)]:
            if scope is None or key[2] == scope:
                del self._grants[key]

    # --- the client's frames ----------------------------------------------------------

    def _find(self, user: str, turn_id: str, approval_id: str) -> _Pending:
        pending = self._pending.get((user, turn_id, approval_id))
        if pending is None:
            raise ApprovalRefused(
                "No open approval has this id (it was answered, timed out or stopped).",
                unknown=True,
            )
        return pending

    def answer(self, user: str, frame: ApproveRequest) -> None:
        pending = self._find(user, frame.id, frame.approval_id)
        if pending.auto or pending.decision.done():
            raise ApprovalRefused("This approval was already answered.")
        pending.decision.set_result(frame.decision)

    def result(self, user: str, frame: RunResultRequest) -> None:
        pending = self._find(user, frame.id, frame.approval_id)
        if not pending.needs_result:
            raise ApprovalRefused("This approval asks for no result: the server acts on it.")
        allowed = pending.auto or (
            pending.decision.done()
            and not pending.decision.cancelled()
            and pending.decision.result() != "deny"
        )
        if not allowed:
            raise ApprovalRefused("This approval was not allowed: nothing should have run.")
        if pending.result.done():
            raise ApprovalRefused("This approval's result was already sent.")
        pending.result.set_result(frame)

    async def close_turn(self, user: str, turn_id: str) -> None:
        """The turn was stopped: close its open approvals now, so `approval.closed` goes
        out before the turn's `done` (the turn's own cleanup runs after that frame)."""
        for (owner, turn, _), pending in list(self._pending.items()):
            if owner == user and turn == turn_id:
                with contextlib.suppress(Exception):
                    await pending.close("cancelled")

    def snapshot(self) -> dict[str, int]:
        return {"open": len(self._pending), "conversation_grants": len(self._grants)}

    # --- the turn's side --------------------------------------------------------------

    def _open(
        self,
        key: tuple[str, str, str],
        auto: bool,
        close: Callable[[str], Awaitable[None]],
        needs_result: bool = True,
    ) -> _Pending:
        if len(self._pending) >= MAX_PENDING:
            raise RuntimeError("too many approvals are open")
        pending = self._pending[key] = _Pending(auto, needs_result, close)
        return pending

    def _close(self, key: tuple[str, str, str]) -> None:
        self._pending.pop(key, None)


class TurnApprovals:
    """One turn's approvals (engines see it as tools.approval.Approvals)."""

    def __init__(
        self, broker: ApprovalBroker, user: str, conversation_id: str, turn_id: str, emit: Emit
    ) -> None:
        self._broker = broker
        self.user = user
        self.conversation_id = conversation_id
        self.turn_id = turn_id
        self._emit = emit
        # The scopes allowed for the rest of this turn ("run", "tool:<server>").
        self.allowed_for_turn: set[str] = set()

    async def ask(self, ask: ApprovalAsk, *, timeout_s: float) -> ApprovalOutcome:
        broker = self._broker
        scope = ask.scope
        auto = scope in self.allowed_for_turn or broker.allowed_for_conversation(
            self.user, self.conversation_id, scope
        )
        approval_id = new_id("apr")
        key = (self.user, self.turn_id, approval_id)
        closed = False
        reason = "cancelled"  # what the frame says if this ends any other way
        started = time.monotonic()

        async def close(why: str) -> None:
            nonlocal closed
            if not closed:
                closed = True
                await self._emit(approval_closed_frame(self.turn_id, approval_id, why))

        pending = broker._open(key, auto, close, ask.needs_result)

        try:
            await self._emit(
                approval_frame(
                    self.turn_id,
                    approval_id,
                    kind=str(ask.kind),
                    title=ask.title,
                    path=ask.path,
                    cell_index=ask.cell_index,
                    cell_id=ask.cell_id,
                    source=ask.source,
                    suggestion_ids=list(ask.suggestion_ids),
                    auto=auto,
                    tool=ask.tool.to_json() if ask.tool is not None else None,
                )
            )
            decision = None
            if not auto:
                try:
                    async with asyncio.timeout(max(0.0, timeout_s)):
                        decision = await pending.decision
                except TimeoutError:
                    reason = "timeout"
                    return ApprovalOutcome(ApprovalStatus.NO_ANSWER, waited_s=timeout_s)
                await close("answered")
                if decision == "deny":
                    return ApprovalOutcome(ApprovalStatus.DENIED, decision=decision)
                if decision == "allow_turn":
                    self.allowed_for_turn.add(scope)
                elif decision == "allow_conversation":
                    self.allowed_for_turn.add(scope)
                    broker.grant(self.user, self.conversation_id, scope)
            if not ask.needs_result:
                # The server acts on the decision itself: nothing more to wait for.
                reason = "answered"
                return ApprovalOutcome(
                    ApprovalStatus.ALLOWED,
                    auto=auto,
                    decision=decision,
                    waited_s=time.monotonic() - started,
                )
            # The result's wait has its own bound, from now: deciding took the user's time.
            try:
                async with asyncio.timeout(max(0.0, timeout_s)):
                    result = await pending.result
            except TimeoutError:
                reason = "timeout"
                return ApprovalOutcome(
                    ApprovalStatus.NO_RESULT, auto=auto, decision=decision, waited_s=timeout_s
                )
            reason = "answered"
            return ApprovalOutcome(
                ApprovalStatus.DONE,
                auto=auto,
                decision=decision,
                result=result,
                waited_s=time.monotonic() - started,
            )
        finally:
            broker._close(key)
            # Also when the turn was stopped: every tab clears the card. The turn's emit
            # does not suspend on the WebSocket path, so this runs inside a cancellation.
            with contextlib.suppress(Exception):
                await close(reason)
