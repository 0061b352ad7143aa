"""Folding older turns into the conversation's summary when the memory window fills.

Split out of `SessionManager` (issue 12). It is handed the conversation as the turn read it
and the turn's history with the new question and answer appended, instead of reading the
conversation and all its messages again after each turn (and the conversation once more
before writing the summary back): the summary columns are written with one UPDATE
(`change_conversation`), so a title renamed meanwhile is kept. Only this conversation's
actor writes the summary, so the turn's copy of it is current.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from ..context.memory import SUMMARY_PROMPT, MemoryWindow, extractive_summary, summary_request
from ..domain.models import Conversation, Message, User
from ..llm.errors import LLMError
from .store import AsyncConversationStore

# (user, model, conversation_id, messages) -> the model's whole reply.
Collect = Callable[[User, str | None, str, list[dict[str, str]]], Awaitable[str]]


class MemorySummariser:
    def __init__(
        self,
        store: AsyncConversationStore,
        collect: Collect,
        history_tokens: Callable[[str | None], int],
    ) -> None:
        self.store = store
        self._collect = collect
        self._history_tokens = history_tokens

    async def summarise_if_full(
        self,
        user: User,
        model: str | None,
        conversation: Conversation,
        history: Sequence[Message],
        has_model: bool,
    ) -> None:
        """`history` is the conversation in `conversation_order`, this turn included."""
        window = MemoryWindow(self._history_tokens(model))
        overflow = window.overflow(history, conversation.summary_upto)
        if not overflow:
            return
        limit = max(400, window.budget_tokens)  # characters: a quarter of the budget
        if has_model:
            request = summary_request(conversation.summary, overflow)
            try:
                summary = await self._collect(
                    user,
                    model,
                    conversation.id,
                    [
                        {"role": "system", "content": SUMMARY_PROMPT},
                        {"role": "user", "content": request},
                    ],
                )
            except LLMError:
                summary = ""
            if not summary.strip():
                summary = extractive_summary(conversation.summary, overflow, limit)
        else:
            summary = extractive_summary(conversation.summary, overflow, limit)
        await self.store.change_conversation(
            conversation.id,
            {"summary": summary.strip(), "summary_upto": conversation.summary_upto + len(overflow)},
        )
