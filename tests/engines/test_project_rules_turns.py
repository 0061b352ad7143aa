"""Project rules in real turns: the rules that apply reach the model's system prompt for
every engine, the others do not, and /rules answers without a model call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine_harness import answer_text, frames_of

from rubberduck_jupyter.protocol import ChatContext

TEAM_RULE = "Always name DataFrames after what they hold; never df."
POLARS_RULE = "Use polars, not pandas, in the notebooks folder."
SQL_RULE = "Every SQL query goes through the warehouse module."


def _write_rules(root: Path) -> None:
    (root / "AGENTS.md").write_text(f"# Team rules\n\n{TEAM_RULE}\n")
    rules = root / ".rubberduck" / "rules"
    rules.mkdir(parents=True)
    (rules / "polars.md").write_text(f'---\napplies_to: "notebooks/**"\n---\n{POLARS_RULE}\n')
    (rules / "sql.md").write_text(f"---\napplies_to: ['sql/*.py', '*.sql']\n---\n{SQL_RULE}\n")


def _system(prompt: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in prompt if m["role"] == "system")


async def test_rules_that_apply_reach_every_engines_system_prompt(make_harness: Any) -> None:
    harness = make_harness(rules=True)
    _write_rules(harness.root)
    in_notebooks = ChatContext(
        notebook_path="notebooks/churn.ipynb", active_cell="sales = load('sales.csv')\n"
    )
    for engine in ("simple", "generation", "analysis", "complex"):
        harness.fake.reset()
        await harness.chat("How do I load sales.csv?", context=in_notebooks, engine=engine)
        assert harness.prompts(), f"{engine} made no model call"
        system = _system(harness.prompts()[-1])
        assert TEAM_RULE in system and POLARS_RULE in system, engine
        assert SQL_RULE not in system, engine
        assert "From AGENTS.md" in system and "From .rubberduck/rules/polars.md" in system

    harness.fake.reset()
    await harness.chat("Write a query", context=ChatContext(notebook_path="sql/report.py"))
    system = _system(harness.prompts()[-1])
    assert SQL_RULE in system and TEAM_RULE in system and POLARS_RULE not in system


async def test_a_request_from_no_notebook_gets_only_the_unscoped_rules(make_harness: Any) -> None:
    harness = make_harness(rules=True)
    _write_rules(harness.root)
    await harness.chat("Explain groupby", engine="simple")
    system = _system(harness.prompts()[-1])
    assert TEAM_RULE in system and POLARS_RULE not in system and SQL_RULE not in system


async def test_an_edited_rule_is_used_at_the_next_turn(make_harness: Any) -> None:
    harness = make_harness(rules=True)
    _write_rules(harness.root)
    await harness.chat("first", engine="simple")
    (harness.root / "AGENTS.md").write_text("Answer in French, always, without exception.\n")
    await harness.chat("second", engine="simple")
    system = _system(harness.prompts()[-1])
    assert "Answer in French" in system and TEAM_RULE not in system


async def test_slash_rules_lists_what_applies_and_why_others_do_not(make_harness: Any) -> None:
    harness = make_harness(rules=True)
    _write_rules(harness.root)
    (harness.root / ".rubberduck" / "rules" / "broken.md").write_text("---\napplies_to: [\n---\nx")
    frames = await harness.chat(
        "/rules", context=ChatContext(notebook_path="notebooks/churn.ipynb")
    )
    text = answer_text(frames)
    assert "- `AGENTS.md`: applies always" in text
    assert "- `.rubberduck/rules/polars.md`: applies `notebooks/**`" in text
    assert (
        "`.rubberduck/rules/sql.md`: applies to `sql/*.py`, `*.sql`, not notebooks/churn.ipynb"
        in text
    )
    assert "`.rubberduck/rules/broken.md`: its front matter is not valid YAML" in text
    assert harness.fake.requests == []  # answered by RubberDuck, not the model
    assert frames_of(frames, "done")


async def test_slash_rules_without_rules_says_where_to_write_them(make_harness: Any) -> None:
    harness = make_harness(rules=True)
    text = answer_text(await harness.chat("/rules"))
    assert "No project rules apply here." in text and "AGENTS.md" in text
    assert 'applies_to: "notebooks/**"' in text


async def test_rules_over_the_budget_are_left_out_not_cut(make_harness: Any) -> None:
    harness = make_harness(rules=True, rules_max_chars=200)
    (harness.root / "AGENTS.md").write_text("Keep answers short. " * 5)
    rules = harness.root / ".rubberduck" / "rules"
    rules.mkdir(parents=True)
    (rules / "long.md").write_text("Explain every step in detail. " * 20)
    await harness.chat("hello", engine="simple")
    system = _system(harness.prompts()[-1])
    assert "Keep answers short." in system and "Explain every step" not in system
    text = answer_text(await harness.chat("/rules"))
    assert "`.rubberduck/rules/long.md`: over the budget" in text
