"""SimpleConversation: a direct answer, grounded in the notebook context and the project."""

from __future__ import annotations

from ..context.prompt import BASE_PROMPT
from .base import EngineInfo, Turn
from .common import answer_from_retrieval, retrieve

EXPLAIN_PROMPT = (
    " The user wants an explanation: say what the code does and why, line by line where it "
    "helps, in plain words, before any improvement."
)


class SimpleConversation:
    info = EngineInfo(
        name="simple",
        title="Answer",
        description="Direct answers, grounded in your notebook and project.",
        commands=("/ask", "/explain"),
    )

    async def run(self, turn: Turn) -> None:
        question = turn.text or "Explain the active cell."
        found = await retrieve(turn, question)
        if not turn.has_model:
            await answer_from_retrieval(turn, found)
            return
        system = BASE_PROMPT + (EXPLAIN_PROMPT if turn.command == "explain" else "")
        await turn.ask(turn.messages(system, question, retrieved=found))
