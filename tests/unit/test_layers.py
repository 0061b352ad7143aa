"""The house rules of docs/ARCHITECTURE.md that imports can break, checked on the source:
every import counts, lazy and TYPE_CHECKING ones included (an arrow is an arrow)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "rubberduck_jupyter"


def _imported(path: Path) -> set[str]:
    """The rubberduck_jupyter subpackages a module imports ("llm", "sessions", ...)."""
    module = path.relative_to(PACKAGE.parent).with_suffix("").parts
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(module[: len(module) - node.level])
                target = base + (node.module.split(".") if node.module else [])
            else:
                target = (node.module or "").split(".")
            names = [target] if node.module else [[*target, a.name] for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        for parts in names:
            if len(parts) > 1 and parts[0] == "rubberduck_jupyter":
                found.add(parts[1])
    return found


FORBIDDEN = {
    "engines": {"sessions", "handlers", "app"},
    "index": {"llm", "engines", "sessions", "handlers", "app", "cli"},
    "llm": {"engines", "sessions", "handlers", "app"},
    "domain": {"engines", "sessions", "handlers", "app", "llm", "index", "context"},
    "sessions": {"handlers", "app", "plugin_host"},
    # Inline completions sit beside the engines: they use llm/, context/ and the index.
    "completion": {"engines", "sessions", "handlers", "app", "cli"},
    # The agent's tools are handed to engines; they know no session or transport.
    "tools": {"engines", "sessions", "handlers", "app", "cli"},
}
# Packages that may import only these of ours: the plugin core sits below everything, and
# our bundled plugins are written against its public API alone (that is their point).
ONLY = {"plugins": {"plugins"}, "contrib": {"plugins"}}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_arrows_point_down(layer: str) -> None:
    wrong = {
        f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"
        for path in (PACKAGE / layer).rglob("*.py")
        if (bad := _imported(path) & FORBIDDEN[layer])
    }
    assert not wrong, wrong


def test_the_checker_sees_a_relative_and_a_lazy_import(tmp_path: Path) -> None:
    # A guard that can fail: it reads the imports of a real engine module.
    assert "context" in _imported(PACKAGE / "engines" / "simple.py")
    assert "review" in _imported(PACKAGE / "engines" / "correct.py")  # imported in a function


@pytest.mark.parametrize("layer", sorted(ONLY))
def test_plugins_and_our_plugins_import_only_the_plugin_api(layer: str) -> None:
    wrong = {
        f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"
        for path in (PACKAGE / layer).rglob("*.py")
        if (bad := _imported(path) - ONLY[layer])
    }
    assert not wrong, wrong
