"""rubberduck_magics stays light: the standard library and IPython, nothing else imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

MAGICS = Path(__file__).resolve().parents[2] / "magics"
HEAVY = ("pandas", "numpy", "polars", "sklearn", "torch", "ipywidgets", "requests", "httpx")


def test_loading_and_using_the_magics_imports_no_third_party_library() -> None:
    code = f"""
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "rubberduck_magics")
import rubberduck_magics.answer, rubberduck_magics.output, rubberduck_magics.describe
from rubberduck_magics.describe import describe_object
describe_object("d", {{"a": [1, 2]}}, rows=3)
shell.run_line_magic("duck", "help")
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({list(HEAVY)!r}))))
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(MAGICS), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    assert "%duck review" in result.stdout


def test_the_magics_package_declares_only_ipython() -> None:
    text = (MAGICS / "pyproject.toml").read_text()
    assert 'dependencies = ["ipython>=8.0"]' in text
