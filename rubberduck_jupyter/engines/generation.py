"""GenerationConversation: a plan, then code that follows the project's own patterns
(found through retrieval), checked and corrected before it is offered as a new cell."""

from __future__ import annotations

from ..context.prompt import BASE_PROMPT
from .base import EngineInfo, Turn
from .common import CodeTarget, first_code_block, retrieve, say_no_model, sources_markdown
from .correct import correct_code_answer

PLAN_PROMPT = BASE_PROMPT + (
    " Before writing code, plan it: in at most 8 short bullets, name the functions or "
    "steps, the libraries, and which of the user's existing patterns (from the sources "
    "given) the code should follow. No code in this step."
)
CODE_PROMPT = BASE_PROMPT + (
    " Write the code the plan describes, in one Python block ready to run in a notebook "
    "cell. Follow the conventions of the user's own code shown in the sources (naming, "
    "libraries, helper functions they already have: call them rather than rewriting "
    "them). After the block, at most three sentences on how to use it."
)
CODE_KINDS = ("function", "class", "method", "code_cell", "module")


class GenerationConversation:
    info = EngineInfo(
        name="generation",
        title="Generate code",
        description="A plan, then code in your project's own style, checked before you run it.",
        commands=("/generate",),
        context_type="feature_request",
    )

    async def run(self, turn: Turn) -> None:
        request = turn.text or "Write the code for the active cell's task."
        patterns = await retrieve(turn, request, kinds=CODE_KINDS, top_k=4)
        if not turn.has_model:
            await say_no_model(turn)
            if patterns:
                await turn.answer(
                    "Without a model RubberDuck cannot write new code, but these parts of "
                    "your project look closest to what you asked for:\n\n"
                    + sources_markdown(patterns)
                )
            else:
                await turn.answer("Without a model RubberDuck cannot write new code.")
            return
        async with turn.step("plan", "Plan") as record:
            plan = await turn.ask(
                turn.messages(PLAN_PROMPT, request, retrieved=patterns), to=record
            )
        code_messages = turn.messages(
            CODE_PROMPT, f"{request}\n\nPlan:\n{plan.text}", retrieved=patterns
        )
        call = await turn.ask(code_messages)
        final = await correct_code_answer(turn, call.text, code_messages)
        code = first_code_block(final)
        if code:
            await turn.suggest(
                target=CodeTarget(
                    "a new cell below the active cell",
                    "",
                    turn.context.notebook_path,
                    turn.context.cell_index,
                    turn.context.cell_id,
                ),
                proposed=code.rstrip("\n"),
                title="Insert the generated code",
                mode="insert_after",
            )
