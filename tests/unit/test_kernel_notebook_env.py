"""The notebook a kernel belongs to, as the server tells %duck: relative to the root."""

from __future__ import annotations

from pathlib import Path

from rubberduck_jupyter.app import notebook_below_root


def test_session_paths_become_root_relative_or_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    assert notebook_below_root(str(root / "sub" / "a b.ipynb"), str(root)) == "sub/a b.ipynb"
    assert notebook_below_root(str(root / "sub" / ".." / "c.ipynb"), str(root)) == "c.ipynb"
    assert notebook_below_root(str(tmp_path / "elsewhere.ipynb"), str(root)) is None
    assert notebook_below_root(str(root / ".." / "root2" / "x.ipynb"), str(root)) is None
    assert notebook_below_root(str(root), str(root)) is None
    assert notebook_below_root(None, str(root)) is None
    assert notebook_below_root("", str(root)) is None
