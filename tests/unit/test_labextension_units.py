"""The front end's DOM-free unit tests (labextension/test/*.test.ts) under Node's test runner.

They compile to CommonJS with labextension/tsconfig.test.json and run with `node --test`;
each TypeScript test file's results show in this test's output when one fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

LABEXTENSION = Path(__file__).resolve().parents[2] / "labextension"
TSC = LABEXTENSION / "node_modules" / ".bin" / "tsc"


def test_front_end_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None or not TSC.exists():
        if os.environ.get("CI"):
            pytest.fail("node and labextension/node_modules are needed (make install builds them)")
        pytest.skip("node or labextension/node_modules missing")
    out = LABEXTENSION / "build-test"
    shutil.rmtree(out, ignore_errors=True)
    compiled = subprocess.run(
        [str(TSC), "-p", "tsconfig.test.json"],
        cwd=LABEXTENSION,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    files = sorted(str(p) for p in (out / "test").glob("*.test.js"))
    assert files, "no compiled test files"
    ran = subprocess.run(
        [node, "--test", *files],
        cwd=LABEXTENSION,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert ran.returncode == 0, ran.stdout[-8000:] + ran.stderr[-2000:]
    assert "# fail 0" in ran.stdout, ran.stdout[-4000:]
