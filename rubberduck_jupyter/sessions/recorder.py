"""Persisting a turn: the question before anything else, the answer while it streams
(partial) and when it ends (with its route, steps, sources, usage), the record of a turn
that failed, and the conversation fields a turn changes (its kind, its task).

Split out of `SessionManager` (issue 12), which ran turns, summarised memory and persisted
in one class. The fields a turn changes are written with `change_conversation` (one
UPDATE of those columns): it used to read the conversation again to write it back whole,
one more store read per change.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from ..domain.models import ContextType, Conversation, Message, MessageStatus, new_id
from ..engines.base import Engine, Turn
from ..engines.router import Route
from ..protocol import ChatRequest, ErrorCode
from .store import INTERRUPTED, AsyncConversationStore

log = logging.getLogger(__name__)

# What a turn cut short by a server stop says (a crash's leftovers say it at the next start).
STOPPED_NOTE = "The server stopped before this message was answered; send it again."


def _steps(turn: Turn) -> list[dict[str, str]]:
    # answer_at: where the step sits in the answer's text (the UI interleaves them).
    return [
        {"step": s.step, "title": s.title, "text": s.text, "answer_at": s.answer_at}
        for s in turn.steps
    ]


class TurnRecorder:
    """Writes what a turn says to the conversation store; reads nothing back."""

    def __init__(self, store: AsyncConversationStore) -> None:
        self.store = store

    async def store_question(self, conversation: Conversation, request: ChatRequest) -> Message:
        return await self.store.add_message(
            Message(
                id=new_id("msg"),
                conversation_id=conversation.id,
                seq=0,
                role="user",
                content=request.text,
                turn_id=request.id,
                status=MessageStatus.PENDING,
                meta={"context": request.context.to_json(), "model": request.model},
            )
        )

    async def record_failure(self, question: Message, code: ErrorCode, message: str) -> None:
        # The record and the answered question in one transaction (see finish_answer).
        await self.store.finish_answer(
            Message(
                id=new_id("msg"),
                conversation_id=question.conversation_id,
                seq=0,
                role="assistant",
                content=message,
                turn_id=question.turn_id,
                status=MessageStatus.ERROR,
                meta={"error": {"code": str(code), "message": message}},
            ),
            question.id,
        )

    @staticmethod
    def partial_message(answer_id: str, turn: Turn, route: Route, question: Message) -> Message:
        """The answer so far, as `save_partial` stores it while the turn streams."""
        return Message(
            id=answer_id,
            conversation_id=question.conversation_id,
            seq=0,
            role="assistant",
            content=turn.answer_text,
            turn_id=question.turn_id,
            status=MessageStatus.PENDING,
            engine=route.engine,
            meta={
                "route": route.to_json(),
                "steps": _steps(turn),
                "citations": [c.to_json() for c in turn.citations],
                "suggestions": [s["id"] for s in turn.suggestions],
                "corrections": turn.corrections,
                "notices": turn.notices,
                "partial": True,
                # The agent's tool calls and results: the next turn continues from them.
                **({"transcript": turn.transcript} if turn.transcript else {}),
            },
        )

    async def persist_answer(
        self,
        answer_id: str,
        turn: Turn,
        route: Route,
        engine: Engine,
        question: Message,
        status: MessageStatus,
        failure: tuple[ErrorCode, str] | None,
        cancelled: bool,
        conversation: Conversation,
        *,
        stopping: bool,
    ) -> Message | None:
        """The final answer and the question marked answered; the stored answer, or None
        when the store refused (the conversation was deleted meanwhile, the disk failed)."""
        text = turn.answer_text
        interrupted = cancelled and stopping
        # A cut-off answer keeps exactly what streamed: its status says it was cut off.
        if status is not MessageStatus.INCOMPLETE and not text and failure is not None:
            text = STOPPED_NOTE if interrupted else "Stopped." if cancelled else failure[1]
        meta: dict[str, Any] = {
            "route": route.to_json(),
            "steps": _steps(turn),
            "citations": [c.to_json() for c in turn.citations],
            "suggestions": [s["id"] for s in turn.suggestions],
            "corrections": turn.corrections,
            "notices": turn.notices,
            "usage": asdict(turn.total_usage()),
            "model": turn.calls[-1].model_name if turn.calls else None,
            "cost_usd": turn.total_cost(),
        }
        if turn.transcript:
            # The agent's tool calls and results: the next turn continues from them.
            meta["transcript"] = turn.transcript
        if failure is not None:
            meta["error"] = {"code": str(failure[0]), "message": failure[1], "cancelled": cancelled}
        if interrupted:
            # The user did not stop it: say what a crash's leftovers say, so they resend.
            meta["error"] = {"code": INTERRUPTED, "message": STOPPED_NOTE}
            meta[INTERRUPTED] = True
        try:
            stored: Message = await self.store.finish_answer(
                Message(
                    id=answer_id,
                    conversation_id=question.conversation_id,
                    seq=0,
                    role="assistant",
                    content=text,
                    turn_id=question.turn_id,
                    status=status,
                    engine=route.engine,
                    meta=meta,
                ),
                question.id,
            )
        except Exception:
            log.exception("RubberDuck could not save the answer to %s", question.turn_id)
            return None
        if question.seq == 0 and conversation.context_type is ContextType.QUESTION:
            info = getattr(engine, "info", None)
            kind = ContextType(getattr(info, "context_type", "question"))
            if kind is not ContextType.QUESTION:
                try:
                    await self.store.change_conversation(conversation.id, {"context_type": kind})
                except Exception:
                    log.exception("RubberDuck could not save the kind of %s", conversation.id)
        return stored

    async def save_task(self, conversation_id: str, task: dict[str, Any] | None) -> None:
        await self.store.change_conversation(conversation_id, {"task": task})
