"""Self-correction of generated code: check the answer's Python blocks (syntax, ruff),
re-prompt the model with what was found, up to N rounds, each round shown to the user."""

from __future__ import annotations

from ..context.prompt import ChatMessage
from .base import Turn


async def correct_code_answer(
    turn: Turn,
    answer: str,
    messages: list[ChatMessage],
    *,
    max_rounds: int | None = None,
    known_names: list[str] | tuple[str, ...] = (),
) -> str:
    """Returns the corrected answer; when it changed, the corrected code is also shown."""
    from ..review.correction import CorrectionLoop, reprompt_text
    from ..review.static import analyze_python

    known = [v.name for v in turn.context.variables] + list(known_names)

    def check(code: str) -> list:  # type: ignore[type-arg]
        return analyze_python(code, filename="suggestion.py", known_names=known)

    async def reprompt(previous: str, findings: list, round_no: int) -> str:  # type: ignore[type-arg]
        followup = [
            *messages,
            {"role": "assistant", "content": previous},
            {"role": "user", "content": reprompt_text(previous, findings)},
        ]
        call = await turn.ask(followup, visible=False)
        return call.text

    async def on_round(report: object) -> None:
        findings = [f.to_json() for f in report.findings]  # type: ignore[attr-defined]
        await turn.correction(report.round, findings, report.fixed)  # type: ignore[attr-defined]

    rounds = turn.correction_rounds if max_rounds is None else max_rounds
    if rounds <= 0:
        return answer
    loop = CorrectionLoop(check, max_rounds=rounds)
    result = await loop.run(answer, reprompt, on_round)
    if result.final_answer != answer:
        await turn.answer(
            f"\n\n**Corrected after {result.best_round} re-prompt(s)** (the checks found "
            "errors in the code above) — use this version:\n\n" + result.final_answer
        )
    return str(result.final_answer)
