"""The review gate every write tool passes before its change becomes a suggestion.

Python (cells and .py files) goes through review/'s static checks (syntax, then ruff);
JSON and TOML are parsed. Errors go back to the model once per target, for ONE correction
round; what the second try still gets wrong travels with the suggestion (in the tool's
answer and the turn's correction record), except code that does not parse, which is never
offered. Warnings and advice never block: they travel with the suggestion."""

from __future__ import annotations

import asyncio
import json
import tomllib
from dataclasses import dataclass
from typing import Any

from .base import EditTarget, ToolContext, ToolResult


@dataclass(frozen=True, slots=True)
class Verdict:
    offer: bool
    findings: list[dict[str, Any]]
    message: str  # for the model: why not offered, or what travels with the suggestion


def language_of(target: EditTarget) -> str | None:
    if target.cell_index is not None or target.cell_id is not None or not target.path:
        return "cell"
    low = target.path.lower()
    if low.endswith((".py", ".pyi")):
        return "python"
    if low.endswith(".json"):
        return "json"
    if low.endswith(".toml"):
        return "toml"
    return None


def _findings(
    language: str | None, code: str, known: list[str], full: bool, neighbours: list[str]
) -> list[Any]:
    from ..review.findings import Finding
    from ..review.static import analyze_python, names_bound, prepare_python

    if language in ("cell", "python"):
        cell = language == "cell"
        if not full:  # syntax only
            return list(prepare_python(code, filename="edit.py", cell=cell).early)
        # A cell may use what the notebook's other cells define, run or not yet run.
        names = set(known)
        for source in neighbours:
            try:
                names |= names_bound(source)
            except (SyntaxError, ValueError):
                continue  # a cell with IPython syntax or a typo defines nothing we can see
        return analyze_python(code, filename="edit.py", known_names=sorted(names), cell=cell)
    try:
        if language == "json":
            json.loads(code)
        elif language == "toml":
            tomllib.loads(code)
    except ValueError as exc:
        return [Finding("syntax", "SyntaxError", str(exc), 1, 1, severity="error")]
    return []


def _lines(findings: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"- line {f.get('line')}: {f.get('code')} {f.get('message')}"
        + ("" if f.get("severity") == "error" else f" ({f.get('severity')})")
        for f in findings
    )


async def review(
    ctx: ToolContext,
    key: str,
    target: EditTarget,
    code: str,
    tool: str,
    neighbours: list[str] | None = None,
) -> Verdict:
    language = language_of(target)
    found = await asyncio.to_thread(
        _findings, language, code, ctx.known_names, ctx.review, neighbours or []
    )
    as_json = [f.to_json() for f in found]
    errors = [f for f in found if f.is_error]
    earlier = ctx.corrected.get(key)
    if not errors:
        if earlier is not None and ctx.on_findings is not None:
            await ctx.on_findings(earlier[0], earlier[1], True)
        note = f"\nThe review noted (not blocking):\n{_lines(as_json)}" if as_json else ""
        return Verdict(True, as_json, note)
    if earlier is None:
        ctx.review_rounds += 1
        ctx.corrected[key] = (ctx.review_rounds, as_json)
        if ctx.on_findings is not None:
            await ctx.on_findings(ctx.review_rounds, as_json, False)
        return Verdict(
            False,
            as_json,
            "Not offered: the review gate found errors in this change:\n"
            f"{_lines(as_json)}\nFix them and call {tool} again with the corrected code "
            "(one correction round).",
        )
    if any(f.source == "syntax" for f in errors):
        return Verdict(
            False,
            as_json,
            "Not offered: the corrected change still does not parse:\n"
            f"{_lines(as_json)}\nDo not try again; tell the user what you meant to change.",
        )
    return Verdict(
        True,
        as_json,
        "\nOffered with the review's remaining findings (the user sees them):\n" + _lines(as_json),
    )


async def offer(
    ctx: ToolContext,
    tool: str,
    target: EditTarget,
    proposed: str,
    *,
    title: str,
    mode: str = "replace",
    neighbours: list[str] | None = None,
) -> ToolResult:
    """Reviews `proposed` and, when it passes, makes it a suggestion through the turn.
    `neighbours`: the notebook's other code cells, whose names the change may use."""
    if ctx.suggest is None:
        return ToolResult("Error: this conversation cannot take suggestions.", ok=False)
    key = (
        f"{target.path}#{target.cell_index}" if target.cell_index is not None else str(target.path)
    )
    if mode == "insert_markdown_after":
        verdict = Verdict(True, [], "")  # prose: nothing to check
    else:
        verdict = await review(ctx, f"{tool}:{key}", target, proposed, tool, neighbours)
    if not verdict.offer:
        return ToolResult(verdict.message, ok=False, data={"findings": verdict.findings})
    suggestion = await ctx.suggest(target=target, proposed=proposed, title=title, mode=mode)
    if suggestion is None:
        return ToolResult(
            "Not offered: RubberDuck refused this change (the user was told why); do not "
            "repeat it.",
            ok=False,
            data={"findings": verdict.findings},
        )
    return ToolResult(
        f"Suggested to the user as {suggestion.id!s} ({title}); it is pending their "
        f"approval and nothing is changed until they apply it.{verdict.message}",
        data={"suggestion": suggestion.id, "findings": verdict.findings},
    )
