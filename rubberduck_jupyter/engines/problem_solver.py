"""ProblemSolver: from the traceback, the failing cell and the kernel's variables to a
root cause and a fix. The traceback is parsed and diagnosed statically first (the exact
exception, the line in the user's code, close names that do exist), so the model starts
from facts; without a model, that diagnosis is the answer."""

from __future__ import annotations

import asyncio
from typing import Any

from ..context.prompt import BASE_PROMPT
from .base import EngineInfo, Turn
from .common import CodeTarget, first_code_block, known_names, say_no_model
from .correct import correct_code_answer

SOLVER_PROMPT = BASE_PROMPT + (
    " You are debugging. Answer in three parts with these headings: **Root cause** (one "
    "or two sentences naming the exact line and why it fails, using the kernel variables "
    "and the static diagnosis given as facts), **Fix** (the corrected cell in full, in one "
    "Python block), and **Why this works** (at most three sentences). If the information "
    "is not enough to be sure, say what to check."
)


def _diagnose(error: str, cell: str | None, names: list[str]) -> tuple[Any, Any]:
    from ..review.tracebacks import explain_error, parse_traceback

    parsed = parse_traceback(error)
    if parsed is None:
        return None, None
    return parsed, explain_error(parsed, cell, names)


def diagnosis_markdown(diagnosis: Any) -> str:
    lines = [f"**{diagnosis.summary}**"]
    if diagnosis.likely_cause:
        lines.append(f"\n**Likely cause:** {diagnosis.likely_cause}")
    if diagnosis.suggestions:
        lines.append("\n**What to try:**")
        lines.extend(f"- {s}" for s in diagnosis.suggestions)
    if diagnosis.fix_code:
        lines.append(f"\n```python\n{diagnosis.fix_code}\n```")
    return "\n".join(lines)


class ProblemSolver:
    info = EngineInfo(
        name="problem_solver",
        title="Fix",
        description="From the error, the failing cell and the kernel state to a cause and a fix.",
        commands=("/fix", "/debug"),
        context_type="bug_fix",
    )

    async def run(self, turn: Turn) -> None:
        ctx = turn.context
        error = ctx.error or (turn.text if "Traceback" in turn.text or "Error" in turn.text else "")
        cell = ctx.active_cell
        names = known_names(turn)
        parsed, diagnosis = (None, None)
        if error:
            parsed, diagnosis = await asyncio.to_thread(_diagnose, error, cell, names)
        if not turn.has_model:
            await say_no_model(turn)
            if diagnosis is None:
                await turn.answer(
                    "There is no error to explain: run the failing cell first (its traceback "
                    "is picked up automatically) or paste the traceback into the message."
                )
                return
            await turn.answer(diagnosis_markdown(diagnosis))
            if diagnosis.fix_code and cell:
                await self._suggest(turn, cell, diagnosis.fix_code)
            return
        facts = []
        if parsed is not None:
            facts.append(
                f"Parsed error: {parsed.exc_type}: {parsed.message}"
                + (f" (user code line {parsed.user_frame.line})" if parsed.user_frame else "")
            )
        if diagnosis is not None:
            facts.append(f"Static diagnosis: {diagnosis.summary}. {diagnosis.likely_cause}")
            facts.extend(f"- {s}" for s in diagnosis.suggestions)
        question = turn.text or "Why does this fail, and how do I fix it?"
        if facts:
            question += "\n\n" + "\n".join(facts)
        messages = turn.messages(SOLVER_PROMPT, question)
        call = await turn.ask(messages)
        final = await correct_code_answer(turn, call.text, messages)
        fixed = first_code_block(final)
        if fixed and cell:
            await self._suggest(turn, cell, fixed)

    async def _suggest(self, turn: Turn, cell: str, fixed: str) -> None:
        ctx = turn.context
        label = "the failing cell" + (
            f" (cell {ctx.cell_index})" if ctx.cell_index is not None else ""
        )
        await turn.suggest(
            target=CodeTarget(label, cell, ctx.notebook_path, ctx.cell_index, ctx.cell_id),
            proposed=fixed.rstrip("\n"),
            title="Apply the fix",
        )
