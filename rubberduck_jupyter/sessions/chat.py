"""Runs one chat turn: build the prompt, stream the model, emit protocol frames."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from ..context.prompt import build_messages
from ..llm.client import StreamPiece
from ..llm.errors import LLMError
from ..protocol import ChatRequest, ErrorCode, Usage, chunk_frame, done_frame, error_frame
from .memory import ConversationMemory

Emit = Callable[[dict[str, Any]], Awaitable[None]]
log = logging.getLogger(__name__)

INCOMPLETE_MARK = "\n\n[answer cut off]"


class ChatModel(Protocol):
    def stream(
        self,
        *,
        user: str,
        messages: list[dict[str, str]],
        model: str | None = None,
        conversation_id: str | None = None,
    ) -> AsyncIterator[StreamPiece]: ...


class ChatService:
    """Shared by the WebSocket and REST handlers; owns no transport."""

    def __init__(self, model: ChatModel, memory: ConversationMemory | None = None) -> None:
        self.model = model
        self.memory = memory or ConversationMemory()
        self.active_turns = 0

    async def run_turn(self, user: str, request: ChatRequest, emit: Emit) -> str:
        """Emit chunk frames then one done or error frame; return the text produced."""
        history = self.memory.history(user, request.conversation_id)
        messages = build_messages(history, request.text, request.context)
        # The question is remembered before the model is called, so a failure loses nothing.
        self.memory.append(user, request.conversation_id, "user", request.text)
        parts: list[str] = []
        incomplete = False
        seq = 0
        self.active_turns += 1
        try:
            stream = self.model.stream(
                user=user,
                messages=messages,
                model=request.model,
                conversation_id=request.conversation_id,
            )
            async with contextlib.aclosing(stream):
                async for piece in stream:
                    if piece.text:
                        parts.append(piece.text)
                        await emit(chunk_frame(request.id, seq, piece.text))
                        seq += 1
                    if piece.finish_reason is not None:
                        await emit(
                            done_frame(
                                request.id,
                                piece.usage or Usage(),
                                piece.finish_reason,
                                model=piece.model_name,
                                cost_usd=piece.cost_usd,
                                cached=piece.cached,
                                attempts=list(piece.attempts),
                            )
                        )
        except LLMError as exc:
            incomplete = exc.code is ErrorCode.INCOMPLETE
            await emit(error_frame(request.id, exc.code, exc.message, retry_after=exc.retry_after))
        except Exception:
            log.exception("RubberDuck chat turn %s failed", request.id)
            await emit(
                error_frame(
                    request.id,
                    ErrorCode.INTERNAL,
                    "RubberDuck hit an internal error; the server log has the details.",
                )
            )
        finally:
            self.active_turns -= 1
            if parts:
                answer = "".join(parts) + (INCOMPLETE_MARK if incomplete else "")
                self.memory.append(user, request.conversation_id, "assistant", answer)
        return "".join(parts)
