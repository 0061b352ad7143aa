"""What gets indexed and what is refused, on a real folder tree."""

from __future__ import annotations

import os
from pathlib import Path

from rubberduck_jupyter.index.discovery import (
    Candidate,
    GitIgnoreRules,
    Skipped,
    check_file,
    discover,
    excluded_by_name,
)


def make_tree(root: Path, outside: Path) -> None:
    files = {
        "analysis.ipynb": "{}",
        "src/model.py": "def fit():\n    pass\n",
        "src/.hidden.py": "x = 1\n",
        ".venv/lib/site.py": "x = 1\n",
        ".env": "OPENAI_API_KEY=sk-secret\n",
        ".env.local": "TOKEN=1\n",
        "data/big.csv": "a,b\n",
        "build/out.py": "x = 1\n",
        "src/generated/gen.py": "x = 1\n",
        "src/keep.log": "log\n",
        "README.md": "# Project\n",
        "notes.txt": "x" * 50,
        "node_modules/pkg/index.js": "x",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / ".gitignore").write_text("build/\n*.log\n")
    (root / "src" / ".gitignore").write_text("generated/\n")
    (root / "src" / "blob.py").write_bytes(b"\x00\x01binary")
    (root / "huge.py").write_text("x = 1\n" * 2000)
    outside.mkdir()
    (outside / "secret.py").write_text("password = 'x'\n")
    os.symlink(outside / "secret.py", root / "src" / "linked.py")
    os.symlink(outside, root / "linked_dir")
    os.symlink(root / "src" / "model.py", root / "alias.py")


def test_discovery_keeps_project_files_and_refuses_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "project"
    make_tree(root, tmp_path / "outside")
    results = list(discover(root, max_file_bytes=5000))
    kept = sorted(r.rel_path for r in results if isinstance(r, Candidate))
    skipped = {r.rel_path: r.reason for r in results if isinstance(r, Skipped)}
    assert kept == ["README.md", "alias.py", "analysis.ipynb", "notes.txt", "src/model.py"]
    assert skipped["src/blob.py"] == "binary file"
    assert skipped["huge.py"].startswith("larger than")
    assert skipped["src/linked.py"] == "links outside the indexed folder"
    assert skipped["linked_dir"] == "links outside the indexed folder"
    assert "not an indexed kind" in skipped["data/big.csv"]
    every_path = " ".join(r.rel_path for r in results)
    for refused in (".env", ".venv", "build/", "generated", "keep.log", "node_modules", "hidden"):
        assert refused not in every_path
    alias = next(r for r in results if isinstance(r, Candidate) and r.rel_path == "alias.py")
    assert alias.path == (root / "src" / "model.py").resolve()


def test_check_file_applies_the_same_rules_to_one_file(tmp_path: Path) -> None:
    root = tmp_path / "project"
    make_tree(root, tmp_path / "outside")
    assert isinstance(check_file(root, root / "src" / "model.py"), Candidate)
    for path, reason in [
        (root / "src" / "generated" / "gen.py", "ignored by .gitignore"),
        (root / "build" / "out.py", "ignored by .gitignore"),
        (root / ".env", "hidden or excluded folder"),
        (root / "src" / "linked.py", "links outside the indexed folder"),
        (tmp_path / "outside" / "secret.py", "outside the indexed folder"),
    ]:
        result = check_file(root, path)
        assert isinstance(result, Skipped), path
        assert result.reason == reason


def test_discovering_under_subpaths_walks_only_them_by_the_same_rules(tmp_path: Path) -> None:
    root = tmp_path / "project"
    make_tree(root, tmp_path / "outside")
    (root / "src" / "deep").mkdir()
    (root / "src" / "deep" / "inner.py").write_text("y = 2\n")
    (root / "src" / "deep" / ".gitignore").write_text("inner.py\n")
    (root / "src" / "deep" / "kept.py").write_text("z = 3\n")

    whole = {r.rel_path: r for r in discover(root, max_file_bytes=5000)}
    under_src = {r.rel_path: r for r in discover(root, max_file_bytes=5000, under=[root / "src"])}
    assert under_src == {rel: r for rel, r in whole.items() if rel.startswith("src/")}
    assert "src/deep/kept.py" in under_src and "src/deep/inner.py" not in under_src

    # A folder an ancestor's .gitignore excludes yields nothing; a single file is checked.
    assert list(discover(root, under=[root / "src" / "generated"])) == []
    (one,) = discover(root, under=[root / "src" / "model.py"])
    assert isinstance(one, Candidate) and one.rel_path == "src/model.py"


def test_gitignore_rules_read_each_file_once_until_cleared(tmp_path: Path) -> None:
    root = tmp_path / "project"
    make_tree(root, tmp_path / "outside")
    rules = GitIgnoreRules(root)
    assert rules.ignores("build/out.py")
    assert rules.ignores("src/generated/gen.py")
    assert not rules.ignores("src/model.py")
    (root / ".gitignore").write_text("src/model.py\n")
    assert not rules.ignores("src/model.py")  # cached until told
    rules.clear()
    assert rules.ignores("src/model.py")
    assert not rules.ignores("build/out.py")
    assert excluded_by_name("notebooks/.ipynb_checkpoints/a-checkpoint.ipynb")
    assert excluded_by_name("web/node_modules/pkg/index.js")
    assert excluded_by_name("config/.env.local")
    assert not excluded_by_name("src/model.py")
