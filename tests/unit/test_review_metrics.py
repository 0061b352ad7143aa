"""Outlines, complexity and the architecture summary, on crafted code and on this
project's own package."""

from __future__ import annotations

from pathlib import Path

import pytest

import rubberduck_jupyter
from rubberduck_jupyter.review.metrics import (
    FunctionInfo,
    architecture_summary,
    cyclomatic_complexity,
    module_name,
    outline,
)

SOURCE = '''\
import os

class Loader(Base, metaclass=Meta):
    """Loads things."""

    def load(self, path, *parts, strict=True, **options):
        if not path:  # +1
            return None
        for part in parts:  # +1
            try:
                os.stat(part)
            except OSError:  # +1
                if strict and options:  # +1 (if) +1 (and)
                    raise
        names = [p for p in parts if p]  # +1 (for) +1 (if)
        def helper(x):  # its own complexity: 1 + 1
            return x if x else None
        return names

    async def close(self):
        match self.state:
            case "open":  # +1
                pass
            case _:  # +1
                pass

%time result = 1
if __name__ == "__main__":
    def main():
        while True:  # +1
            break
'''


def test_outline_lists_definitions_in_order_with_sizes_and_complexity() -> None:
    assert outline(SOURCE) == [
        FunctionInfo("Loader", "class", 3, 25, 23, 1, ("Base",)),
        FunctionInfo(
            "Loader.load", "method", 6, 18, 13, 8, ("self", "path", "*parts", "strict", "**options")
        ),
        FunctionInfo("Loader.load.helper", "function", 16, 17, 2, 2, ("x",)),
        FunctionInfo("Loader.close", "async method", 20, 25, 6, 3, ("self",)),
        FunctionInfo("main", "function", 29, 31, 3, 2, ()),  # under `if __name__ ...`
    ]


def test_outline_of_unparsable_source_raises() -> None:
    with pytest.raises(SyntaxError):
        outline("def broken(:\n")


def test_complexity_of_a_straight_function_is_one() -> None:
    import ast

    (function,) = ast.parse("def f(a):\n    b = a + 1\n    return b\n").body
    assert cyclomatic_complexity(function) == 1


def test_module_names() -> None:
    assert module_name("pkg/sub/mod.py") == "pkg.sub.mod"
    assert module_name("pkg/__init__.py") == "pkg"
    assert module_name("./scripts/run.py") == "scripts.run"
    assert module_name("pkg\\win.py") == "pkg.win"


def test_summary_of_a_small_project() -> None:
    files = {
        "src/shop/__init__.py": "from .orders import place\n",
        "src/shop/orders.py": (
            '"""Orders: placing and pricing."""\nimport numpy as np\nfrom . import pricing\n'
            "from shop.pricing import price\n\n\ndef place(items):\n"
            "    if not items:\n        return None\n    return price(items)\n"
        ),
        "src/shop/pricing.py": (
            "from shop import orders\nimport pandas as pd\n\n\ndef price(items):\n"
            "    total = 0\n    for item in items:\n        if item and item.ok:\n"
            "            total += item.cost\n    return total\n"
        ),
        "notebooks/report.py": "import shop.orders\n%matplotlib inline\nshop.orders.place([])\n",
        "broken.py": "def oops(:\n",
        "src/shop/hints.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from shop.orders import place\n"
        ),
    }
    summary = architecture_summary(files, top_n=2)
    modules = {m["path"]: m for m in summary["modules"]}
    orders = modules["src/shop/orders.py"]
    assert orders["module"] == "src.shop.orders"
    assert orders["docstring"] == "Orders: placing and pricing."
    assert orders["definitions"] == [{"name": "place", "kind": "function", "line": 7}]
    assert orders["imports"] == ["src/shop/pricing.py"]
    assert orders["external_imports"] == ["numpy"]
    assert modules["src/shop/pricing.py"]["imports"] == ["src/shop/orders.py"]
    assert modules["notebooks/report.py"]["imports"] == ["src/shop/orders.py"]  # magics masked
    assert "parse_error" in modules["broken.py"]
    assert modules["src/shop/hints.py"]["imports"] == []  # for type checkers only
    assert summary["import_graph"]["src/shop/__init__.py"] == ["src/shop/orders.py"]
    assert summary["import_cycles"] == [["src/shop/orders.py", "src/shop/pricing.py"]]
    assert [f["name"] for f in summary["most_complex_functions"]] == ["price", "place"]
    assert summary["most_complex_functions"][0]["complexity"] == 4
    assert [f["name"] for f in summary["largest_functions"]] == ["price", "place"]
    assert summary["totals"] == {
        "files": 6,
        "lines": 28,
        "functions": 2,
        "classes": 0,
        "parse_errors": 1,
    }


def test_summary_of_this_package() -> None:
    root = Path(rubberduck_jupyter.__file__).parent
    files = {
        path.relative_to(root.parent).as_posix(): path.read_text(encoding="utf-8")
        for path in root.rglob("*.py")
    }
    summary = architecture_summary(files)
    graph = summary["import_graph"]
    assert set(graph["rubberduck_jupyter/review/static.py"]) >= {
        "rubberduck_jupyter/review/cells.py",
        "rubberduck_jupyter/review/findings.py",
    }
    assert summary["totals"]["files"] == len(files) and summary["totals"]["parse_errors"] == 0
    assert summary["totals"]["functions"] > 100
    complexities = [f["complexity"] for f in summary["most_complex_functions"]]
    assert complexities == sorted(complexities, reverse=True) and len(complexities) == 10
    for cycle in summary["import_cycles"]:
        assert all(path in files for path in cycle)
