"""ProjectRules: which rules files apply to a path, and why the others do not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rubberduck_jupyter.context.rules import (
    MAX_RULE_FILE_BYTES,
    MAX_RULE_FILES,
    ProjectRules,
)


def _rule(root: Path, name: str, text: str) -> Path:
    folder = root / ".rubberduck" / "rules"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def _reasons(rules: ProjectRules, where: str | None) -> dict[str, str]:
    return {rule.path: reason for rule, reason in rules.select(where).left_out}


def test_agents_md_first_then_rule_files_by_name(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("team")
    _rule(tmp_path, "b.md", "bee")
    _rule(tmp_path, "a.md", "ay")
    _rule(tmp_path, "notes.txt", "not a rule")
    _rule(tmp_path, ".hidden.md", "hidden")
    selection = ProjectRules(tmp_path).select(None)
    assert [r.path for r in selection.applied] == [
        "AGENTS.md",
        ".rubberduck/rules/a.md",
        ".rubberduck/rules/b.md",
    ]
    assert selection.prompt().index("team") < selection.prompt().index("ay")


@pytest.mark.parametrize(
    ("globs", "path", "applies"),
    [
        ('"notebooks/**"', "notebooks/deep/x.ipynb", True),
        ('"notebooks/**"', "other/x.ipynb", False),
        ('"*.ipynb"', "any/where/x.ipynb", True),  # no slash: the name in any folder
        ("['src/*.py', 'etl/**']", "etl/a/b.py", True),
        ("['src/*.py', 'etl/**']", "src/sub/a.py", False),
        ('"notebooks/**"', None, False),  # a scoped rule needs a path to apply to
    ],
)
def test_applies_to_globs(tmp_path: Path, globs: str, path: str | None, applies: bool) -> None:
    _rule(tmp_path, "r.md", f"---\napplies_to: {globs}\n---\nthe rule\n")
    selection = ProjectRules(tmp_path).select(path)
    assert bool(selection.applied) is applies
    assert not applies or selection.applied[0].text == "the rule\n"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("---\napplies_to: [\n---\nx", "not valid YAML"),
        ("---\napplies_to: x\nno end", "no closing `---`"),
        ("---\n- a\n---\nx", "not a mapping"),
        ("---\napplies_to: 3\n---\nx", "must be a glob or a list of globs"),
        ("---\napplies_to: []\n---\nx", "must be a glob or a list of globs"),
        ("---\napplies_to: '[z-a]'\n---\nx", "'[z-a]'"),
    ],
)
def test_unusable_front_matter_is_reported_not_sent(tmp_path: Path, text: str, reason: str) -> None:
    _rule(tmp_path, "bad.md", text)
    rules = ProjectRules(tmp_path)
    assert rules.select("a.ipynb").applied == ()
    assert reason in _reasons(rules, "a.ipynb")[".rubberduck/rules/bad.md"]


def test_files_that_cannot_be_used(tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text("secret instructions from elsewhere")
    root = tmp_path / "project"
    root.mkdir()
    (root / ".rubberduck" / "rules").mkdir(parents=True)
    os.symlink(outside, root / ".rubberduck" / "rules" / "linked.md")
    _rule(root, "big.md", "x" * (MAX_RULE_FILE_BYTES + 1))
    (root / ".rubberduck" / "rules" / "latin1.md").write_bytes("caf\xe9".encode("latin-1"))
    (root / ".rubberduck" / "rules" / "folder.md").mkdir()
    rules = ProjectRules(root)
    reasons = _reasons(rules, None)
    assert "links outside the project" in reasons[".rubberduck/rules/linked.md"]
    assert "too big" in reasons[".rubberduck/rules/big.md"]
    assert "not UTF-8" in reasons[".rubberduck/rules/latin1.md"]
    assert "not a file" in reasons[".rubberduck/rules/folder.md"]
    assert "secret instructions" not in rules.select(None).prompt()


def test_a_symlink_inside_the_project_is_followed(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "style.md").write_text("house style")
    (tmp_path / ".rubberduck" / "rules").mkdir(parents=True)
    os.symlink(tmp_path / "docs" / "style.md", tmp_path / ".rubberduck" / "rules" / "style.md")
    assert "house style" in ProjectRules(tmp_path).select(None).prompt()


def test_budget_keeps_whole_rules_in_order(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("a" * 60)
    _rule(tmp_path, "1.md", "b" * 50)
    _rule(tmp_path, "2.md", "c" * 10)
    rules = ProjectRules(tmp_path, max_chars=80)
    selection = rules.select(None)
    # The second is too long for what is left; the third still fits.
    assert [r.path for r in selection.applied] == ["AGENTS.md", ".rubberduck/rules/2.md"]
    assert (
        "over the budget (50 characters, 20 left)"
        in _reasons(rules, None)[".rubberduck/rules/1.md"]
    )


def test_changes_are_seen_and_unchanged_files_are_not_reread(tmp_path: Path) -> None:
    path = _rule(tmp_path, "r.md", "first")
    rules = ProjectRules(tmp_path)
    first = rules.select(None).applied[0]
    assert rules.select(None).applied[0] is first  # cached: the same object, not re-read
    path.write_text("second version")
    os.utime(path, ns=(1, 1))
    assert rules.select(None).applied[0].text == "second version"
    path.unlink()
    assert rules.select(None).applied == ()


def test_at_most_max_rule_files_are_read(tmp_path: Path) -> None:
    for i in range(MAX_RULE_FILES + 5):
        _rule(tmp_path, f"{i:03}.md", "r")
    selection = ProjectRules(tmp_path, max_chars=10_000).select(None)
    assert len(selection.applied) == MAX_RULE_FILES
