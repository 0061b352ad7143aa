"""Self-correction: check the code a model wrote, show it the problems, let it try again.

The loop knows nothing about models: it takes a `check` (code -> findings, blocking) and a
`reprompt` (answer, findings, round -> new answer, async). Only errors (code that will fail
when run: syntax errors, undefined names...) cost a round; warnings are reported with the
answer but never trigger a re-prompt, so a model is not pushed to churn on advice.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .cells import extract_code_blocks
from .findings import Finding, format_findings, sort_findings

Check = Callable[[str], list[Finding]]
Reprompt = Callable[[str, list[Finding], int], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class RoundReport:
    """The check of one answer: round 0 is the model's first answer, round n its n-th
    correction. `fixed` is True when this answer has no errors left."""

    round: int
    findings: list[Finding]
    fixed: bool

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.is_error]

    def to_json(self) -> dict[str, object]:
        return {
            "round": self.round,
            "fixed": self.fixed,
            "findings": [finding.to_json() for finding in self.findings],
        }


@dataclass(frozen=True, slots=True)
class CorrectionResult:
    """`final_answer` is the first clean answer or, if none got clean, the one with the
    fewest errors (the earliest of equals). `best_round` says which round it came from."""

    final_answer: str
    rounds: list[RoundReport] = field(default_factory=list)
    best_round: int = 0

    @property
    def clean(self) -> bool:
        return self.rounds[self.best_round].fixed if self.rounds else True

    @property
    def findings(self) -> list[Finding]:
        """What is still wrong (or worth a look) in the final answer."""
        return self.rounds[self.best_round].findings if self.rounds else []


def check_answer(answer: str, check: Check) -> list[Finding]:
    """Run `check` on each Python block of a markdown answer; findings carry their block."""
    findings: list[Finding] = []
    for number, block in enumerate(extract_code_blocks(answer)):
        findings.extend(dataclasses.replace(finding, block=number) for finding in check(block.code))
    return sort_findings(findings)


class CorrectionLoop:
    def __init__(self, check: Check, max_rounds: int = 2) -> None:
        if max_rounds < 0:
            raise ValueError("max_rounds must be 0 or more")
        self.check = check
        self.max_rounds = max_rounds

    async def run(
        self,
        answer: str,
        reprompt: Reprompt,
        on_round: Callable[[RoundReport], Awaitable[None]] | None = None,
    ) -> CorrectionResult:
        """Check `answer`; while it has errors and rounds remain, ask `reprompt` for a
        corrected one (given the answer, its errors and the round number, 1-based) and
        check that. Exceptions from `check`, `reprompt` and `on_round` propagate."""
        rounds: list[RoundReport] = []
        answers: list[str] = []
        current = answer
        for number in range(self.max_rounds + 1):
            findings = await asyncio.to_thread(check_answer, current, self.check)
            errors = [finding for finding in findings if finding.is_error]
            report = RoundReport(number, findings, fixed=not errors)
            rounds.append(report)
            answers.append(current)
            if on_round is not None:
                await on_round(report)
            if report.fixed or number == self.max_rounds:
                break
            current = await reprompt(current, errors, number + 1)
        best = min(range(len(rounds)), key=lambda i: len(rounds[i].errors))
        return CorrectionResult(answers[best], rounds, best)


def _code_line(blocks: list[list[str]], finding: Finding) -> str | None:
    """The line of code a finding is about, if the answer's blocks still have it."""
    if finding.block is not None:
        lines = blocks[finding.block] if finding.block < len(blocks) else None
    else:
        lines = blocks[0] if len(blocks) == 1 else None
    if lines is None or not 0 < finding.line <= len(lines):
        return None
    return lines[finding.line - 1].strip() or None


def reprompt_text(answer: str, findings: list[Finding]) -> str:
    """The message that asks a model to fix its answer: each problem with the line of code
    it is about, then the instruction to answer again in full."""
    blocks = [block.code.split("\n") for block in extract_code_blocks(answer)]
    items = []
    for finding in sort_findings(findings):
        item = f"- {format_findings([finding])}"
        if code := _code_line(blocks, finding):
            item += f"\n    `{code}`"
        items.append(item)
    problems = "\n".join(items) if items else "- (no details)"
    return (
        "Your code has these problems (blocks are the Python code blocks of your answer, "
        "counted from 1):\n"
        f"{problems}\n\n"
        "Fix every problem listed. Return the corrected answer in full, with the complete "
        "code blocks, not only the changed lines."
    )
