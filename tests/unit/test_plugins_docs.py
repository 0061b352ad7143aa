"""docs/plugins.md's complete example plugin loads and works as the guide says."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from rubberduck_jupyter.plugins import PluginRegistry
from rubberduck_jupyter.plugins.discovery import PRIVATE_MODULE_PREFIX

pytestmark = pytest.mark.timeout(5)

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


async def test_the_guides_complete_example_loads_and_runs(tmp_path: Path) -> None:
    section = GUIDE.read_text().split("## A complete plugin", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    (tmp_path / "hello.py").write_text(code.group(1))
    reg = PluginRegistry()
    try:
        reg.load_folder(tmp_path)
        row = reg.list()[0]
        assert (row["name"], row["state"], row["reason"]) == ("hello", "loaded", "")
        assert row["permissions"] == ["call_model"] and row["provides"] == ["generation"]
        assert await reg.run_command("hello", None, ["Ada"]) == "Hello, Ada!"
        assert await reg.hooks.pre_input("hi duck Ada", {}) == "/hello Ada"
    finally:
        for name in [m for m in sys.modules if m.startswith(PRIVATE_MODULE_PREFIX)]:
            del sys.modules[name]
