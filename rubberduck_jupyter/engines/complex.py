"""ComplexConversation: chain of thought through requirements, plan, implementation,
tests and review. Each step is its own model call that sees the steps before it; the
reasoning steps stream into collapsible sections, the implementation and tests form the
answer, and the implementation's code goes through the self-correction loop.

Prompt growth is bounded. Each step used to carry the whole message and every earlier
step verbatim, so a 100,000-character message (echoed back by a provider, or answered at
length) doubled the prompt at every step: 0.1 → 1.6 M characters by the review, and the
server went from 388 MB to 3.35 GB RSS. Now a step's question (what this engine adds to
the prompt; the memory window and notebook context are bounded by the prompt builder) is
at most `STEP_QUESTION_CHARS`:

- the user's text, repeated in all five steps, is cut to `PROBLEM_CHARS` (head and tail
  kept, the middle replaced by a marker saying how much was left out);
- the step just before is cut to `LAST_STEP_CHARS`, older steps to `OLDER_STEP_CHARS`
  (the implementation needs the whole plan; the review needs the gist of requirements).

Characters stand for tokens at ~4 a token, the rule the LLM service admits requests by.
"""

from __future__ import annotations

from ..context.prompt import BASE_PROMPT
from .base import EngineInfo, Turn
from .common import answer_from_retrieval, clip_middle, retrieve
from .correct import correct_code_answer

# ~4k tokens: five steps repeat it, so 100k characters would have cost 125k tokens of
# prompts; 16k characters keep a long bug report or spec whole and the rest in outline.
PROBLEM_CHARS = 16_000
# ~2k tokens: the step the current one builds on directly (the plan for the implementation,
# the implementation for the tests); a real model's step answer is usually well under it.
LAST_STEP_CHARS = 8_000
# ~750 tokens each for the steps before that: their gist is what later steps need.
OLDER_STEP_CHARS = 3_000
# The bound on one step's question: problem, up to four earlier steps, the instruction.
STEP_QUESTION_CHARS = PROBLEM_CHARS + LAST_STEP_CHARS + 3 * OLDER_STEP_CHARS + 2_000

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
        problem = clip_middle(turn.text, PROBLEM_CHARS)
        found = await retrieve(turn, problem)
        if not turn.has_model:
            await answer_from_retrieval(turn, found)
            return
        done: list[tuple[str, str]] = []
        answered = False
        for step, instruction in STEP_PROMPTS.items():
            question = step_question(problem, done, instruction)
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


def step_question(problem: str, done: list[tuple[str, str]], instruction: str) -> str:
    """One step's question, at most STEP_QUESTION_CHARS: the (already clipped) problem,
    the earlier steps clipped by age, then the step's instruction."""
    earlier = []
    for i, (title, text) in enumerate(done):
        limit = LAST_STEP_CHARS if i == len(done) - 1 else OLDER_STEP_CHARS
        earlier.append(f"## {title}\n{clip_middle(text, limit)}")
    body = "\n\n".join(earlier)
    question = f"Problem:\n{problem}\n\n{body}\n\n{instruction}".strip()
    # A guard, not the rule: the clips above already keep it under the bound.
    return clip_middle(question, STEP_QUESTION_CHARS)
