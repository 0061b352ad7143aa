"""examples/rubberduck-hello installs for real and loads through its entry point.

The package is built by pip (hatchling comes from the configured package index, as for any
user) and installed with `--target` into tmp_path, not into the test environment: a second
interpreter with that folder on its path discovers it with `load_entry_points()` and runs
`/hello`. Measured at ~2 s; the timeout leaves room for a cold pip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "rubberduck-hello"

SCRIPT = r"""
import asyncio, json
from rubberduck_jupyter.plugins import CommandContext, PluginRegistry

class Services:
    def __init__(self): self.said = []
    async def say(self, markdown): self.said.append(markdown)
    async def ask(self, prompt, *, system, checked): return "Ducks have waterproof feathers."

async def main():
    registry = PluginRegistry()
    records = {r.name: r for r in registry.load_entry_points()}
    hello = records["hello"]
    out = {"state": str(hello.state), "reason": hello.reason, "source": hello.source,
           "hooks": list(hello.hooks)}
    for has_model in (False, True):
        services = Services()
        ctx = CommandContext(plugin="hello", permissions=hello.spec.permissions,
                             services=services, has_model=has_model)
        result = await registry.run_command("hello", ctx, ["Ada"])
        out[f"model={has_model}"] = [result, services.said]
    await registry.hooks.post_response("answer", {})
    import rubberduck_hello.plugin as plugin
    out["answers_seen"] = plugin.ANSWERS_SEEN["count"]
    print(json.dumps(out))

asyncio.run(main())
"""


def test_the_example_package_installs_and_its_command_runs(tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
         str(EXAMPLE)],
        check=True, timeout=90, capture_output=True,
    )  # fmt: skip
    assert (site / "rubberduck_hello-1.0.0.dist-info" / "entry_points.txt").is_file()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, timeout=30, capture_output=True, text=True,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["state"] == "loaded", out["reason"]
    assert "rubberduck-hello 1.0.0" in out["source"]
    assert out["hooks"] == ["post_response"]
    assert out["model=False"] == [
        "Hello, Ada!",
        ["Hello, Ada!", "_No model is configured, so no duck fact today._"],
    ]
    assert out["model=True"] == ["Hello, Ada! Ducks have waterproof feathers.", ["Hello, Ada!"]]
    assert out["answers_seen"] == 1
