"""ComplexConversation: chain of thought through requirements, plan, implementation,
tests and review. Each step is its own model call that sees the steps before it; the
reasoning steps stream into collapsible sections, the implementation and tests form the
answer, and the implementation's code goes through the self-correction loop."""

from __future__ import annotations

from ..context.prompt import BASE_PROMPT
from .base import EngineInfo, Turn
from .common import answer_from_retrieval, retrieve
from .correct import correct_code_answer

STEP_PROMPTS = {
    "requirements": (
        "Step 1 of 5, requirements. List what the solution must do, the inputs and outputs, "
        "constraints and edge cases, and assumptions you make. Bullets only, no code."
    ),
    "plan": (
        "Step 2 of 5, plan. Given the requirements, lay out the approach as numbered steps: "
        "data structures, functions and their signatures, libraries. No full code yet."
    ),
    "implementation": (
        "Step 3 of 5, implementation. Write the code that follows the plan, in one Python "
        "block, with short comments where the reasoning is not obvious."
    ),
    "tests": (
        "Step 4 of 5, tests. Write pytest tests for the implementation: the normal case, the "
        "edge cases from the requirements, and one failure case. One Python block."
    ),
    "review": (
        "Step 5 of 5, review. Check the implementation and tests against the requirements: "
        "anything missed, bugs, performance concerns. Be brief and concrete."
    ),
}
REASONING = {"requirements": "Requirements", "plan": "Plan", "review": "Review"}
ANSWER = {"implementation": "Implementation", "tests": "Tests"}


class ComplexConversation:
    info = EngineInfo(
        name="complex",
        title="Think it through",
        description="Hard or open questions: requirements, plan, implementation, tests, review.",
        commands=("/think", "/design"),
        context_type="feature_request",
    )

    async def run(self, turn: Turn) -> None:
        problem = turn.text
        found = await retrieve(turn, problem)
        if not turn.has_model:
            await answer_from_retrieval(turn, found)
            return
        done: list[tuple[str, str]] = []
        answered = False
        for step, instruction in STEP_PROMPTS.items():
            earlier = "\n\n".join(f"## {title}\n{text}" for title, text in done)
            question = f"Problem:\n{problem}\n\n{earlier}\n\n{instruction}".strip()
            messages = turn.messages(
                BASE_PROMPT, question, retrieved=found if step == "plan" else ()
            )
            if step in REASONING:
                async with turn.step(step, REASONING[step]) as record:
                    call = await turn.ask(messages, to=record)
                done.append((REASONING[step], call.text))
            else:
                await turn.answer(("\n\n" if answered else "") + f"### {ANSWER[step]}\n\n")
                answered = True
                call = await turn.ask(messages)
                text = call.text
                if step == "implementation":
                    text = await correct_code_answer(turn, text, messages)
                done.append((ANSWER[step], text))
