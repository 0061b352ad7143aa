"""AnalysisConversation: code review and architecture analysis with concrete, located
recommendations. Static analysis (syntax, ruff, complexity) runs first and its findings go
to the model as facts; without a model, they are the review."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ..context.prompt import BASE_PROMPT
from .base import EngineInfo, Turn
from .common import (
    CodeTarget,
    code_targets,
    first_code_block,
    known_names,
    retrieve,
    say_no_model,
)
from .line_numbers import numbered

REVIEW_PROMPT = BASE_PROMPT + (
    " You are reviewing code. Give concrete recommendations, most important first, each "
    "as a bullet that starts with its location in bold (e.g. **line 12** or **cell 3, line "
    "4** or **src/io.py:40**), then the problem, then the fix. Use the static analysis "
    "findings you are given as facts; add what they cannot see (logic, naming, data "
    "handling, performance, reproducibility). If a rewrite of the code would help, end "
    "with the full improved version in one Python block."
)
ARCHITECTURE_PROMPT = BASE_PROMPT + (
    " You are analysing the architecture of the user's project from the summary of its "
    "modules, definitions, imports and largest functions. Describe the structure, then "
    "give located recommendations (module or function names in bold): coupling, "
    "responsibilities, duplication, what to split or merge, what to test first."
)
MAX_PROJECT_FILES = 200


def _static_review(target: CodeTarget, known: list[str]) -> dict[str, Any]:
    from ..review.metrics import outline
    from ..review.static import analyze_python

    findings = analyze_python(target.source, filename="cell.py", known_names=known)
    try:
        functions = outline(target.source)
    except SyntaxError:
        functions = []
    return {"findings": findings, "functions": functions}


def _project_sources(root: Path) -> dict[str, str]:
    from ..index.discovery import Candidate, discover

    sources: dict[str, str] = {}
    for found in discover(root):
        if not isinstance(found, Candidate) or found.path.suffix != ".py":
            continue
        if len(sources) >= MAX_PROJECT_FILES:
            break
        try:
            sources[found.rel_path] = found.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return sources


def findings_markdown(findings: list[Any], where: str) -> str:
    if not findings:
        return f"Static analysis found no problems in {where}."
    lines = [f"Static analysis of {where}:"]
    for f in findings:
        fix = f" — {f.fix}" if getattr(f, "fix", None) else ""
        lines.append(f"- **line {f.line}** `{f.code}` ({f.severity}): {f.message}{fix}")
    return "\n".join(lines)


class AnalysisConversation:
    info = EngineInfo(
        name="analysis",
        title="Review",
        description="Code review and architecture analysis with located recommendations.",
        commands=("/review", "/analyze", "/architecture"),
        context_type="code_review",
    )

    async def run(self, turn: Turn) -> None:
        if turn.command == "architecture" or (
            "architecture" in turn.text.lower() and turn.project_root
        ):
            await self._architecture(turn)
            return
        targets = await code_targets(turn, turn.text)
        if not targets:
            found = await retrieve(turn, turn.text or "code review", top_k=3)
            targets = [
                CodeTarget(c.location, c.text, c.path, c.cell) for c in found if c.text.strip()
            ]
        if not targets:
            await turn.answer(
                "There is no code to review: select code, put the cursor in a cell, or name "
                "a file (for example `/review src/model.py`)."
            )
            return
        known = known_names(turn)
        reviews = await asyncio.gather(
            *(asyncio.to_thread(_static_review, t, known) for t in targets)
        )
        if not turn.has_model:
            await say_no_model(turn)
            parts = [
                findings_markdown(r["findings"], t.label)
                for t, r in zip(targets, reviews, strict=True)
            ]
            for t, r in zip(targets, reviews, strict=True):
                long = [f for f in r["functions"] if f.n_lines > 50 or f.complexity > 10]
                for f in long:
                    parts.append(
                        f"- **{t.label}, line {f.start_line}** `{f.name}` is {f.n_lines} lines "
                        f"with complexity {f.complexity}: consider splitting it."
                    )
            await turn.answer("\n\n".join(parts))
            return
        from ..review.findings import format_findings

        blocks = []
        for t, r in zip(targets, reviews, strict=True):
            blocks.append(
                f"Code: {t.label}\n```python\n{numbered(t.source)}\n```\n"
                f"Static analysis findings:\n{format_findings(r['findings']) or 'none'}"
            )
        question = (turn.text or "Review this code.") + "\n\n" + "\n\n".join(blocks)
        call = await turn.ask(turn.messages(REVIEW_PROMPT, question, include_context=False))
        target = targets[0]
        improved = first_code_block(call.text)
        if improved and len(targets) == 1 and target.replaceable:
            await turn.suggest(
                target=target, proposed=improved.rstrip("\n"), title=f"Review of {target.label}"
            )

    async def _architecture(self, turn: Turn) -> None:
        from ..review.metrics import architecture_summary

        if not turn.project_root:
            await turn.answer("Architecture analysis needs a project folder.")
            return
        sources = await asyncio.to_thread(_project_sources, Path(turn.project_root))
        if not sources:
            await turn.answer("The project has no Python modules to analyse.")
            return
        summary = await asyncio.to_thread(architecture_summary, sources)
        import json

        summary_text = json.dumps(summary, indent=1, default=str)[:20_000]
        if not turn.has_model:
            await say_no_model(turn)
            await turn.answer(
                f"Project structure ({len(sources)} modules):\n\n```json\n{summary_text}\n```"
            )
            return
        question = f"{turn.text or 'Analyse the architecture.'}\n\nProject summary:\n{summary_text}"
        await turn.ask(turn.messages(ARCHITECTURE_PROMPT, question, include_context=False))
