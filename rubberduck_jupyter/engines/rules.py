"""/rules: which project rules apply to this request, answered by RubberDuck itself."""

from __future__ import annotations

from ..context.rules import AGENTS_FILE, RULES_DIR
from .base import EngineInfo, Turn


class RulesEngine:
    info = EngineInfo(
        name="rules",
        title="Project rules",
        description="Shows which project rules (AGENTS.md, .rubberduck/rules) apply here.",
        commands=("/rules",),
    )

    async def run(self, turn: Turn) -> None:
        selection = turn.rules
        where = turn.context.notebook_path
        lines: list[str] = []
        if selection.applied:
            here = f" to `{where}`" if where else ""
            lines.append(f"These project rules apply{here}, and go with every answer:\n")
            # A list, not a table: the sidebar is narrow.
            for rule in selection.applied:
                size = len(rule.text.strip())
                lines.append(f"- `{rule.path}`: applies {rule.scope}, {size:,} characters")
        else:
            lines.append("No project rules apply here.")
        if selection.left_out:
            lines.append("\nLeft out:\n")
            for rule, reason in selection.left_out:
                lines.append(f"- `{rule.path}`: {reason}")
        if not selection.applied and not selection.left_out:
            lines.append(
                f"\nWrite rules for every answer in `{AGENTS_FILE}` at the project's root, or "
                f"one topic per file in `{RULES_DIR}/*.md`; a file there can apply to some "
                "paths only, with front matter such as:\n\n```markdown\n---\napplies_to: "
                '"notebooks/**"\n---\nUse polars, not pandas, in these notebooks.\n```'
            )
        await turn.answer("\n".join(lines))
