"""Test skeletons are run for real: pytest collects the expected tests from a generated
file next to a real module, and every one of them fails until its TODOs are filled in."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rubberduck_jupyter.review.static import analyze_python
from rubberduck_jupyter.review.testgen import test_skeleton as make_skeleton

MODULE = textwrap.dedent(
    '''\
    """Inventory helpers."""
    import asyncio

    __all__ = ["restock", "fetch_price", "batches", "Shelf"]


    def restock(item: str, count: int = 1, *, urgent: bool = False) -> int:
        if count < 0:
            raise ValueError("negative count")
        return count * (2 if urgent else 1)


    async def fetch_price(item):
        await asyncio.sleep(0)
        return item


    def batches(items, size=2):
        for start in range(0, len(items), size):
            yield items[start : start + size]


    def not_exported():
        return 1


    class Shelf:
        def __init__(self, items=None):
            self.items = list(items or [])

        def add(self, item) -> None:
            self.items.append(item)

        def take(self):
            if not self.items:
                raise IndexError("empty shelf")
            return self.items.pop()

        @property
        def size(self):
            return len(self.items)

        @classmethod
        def of(cls, *items):
            return cls(items)

        def _internal(self):
            return None
    '''
)


def _pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "inventory.py").write_text(MODULE)
    (tmp_path / "test_inventory.py").write_text(make_skeleton(MODULE, "inventory"))
    return tmp_path


def test_skeleton_has_one_test_per_public_function_and_a_raises_test(project: Path) -> None:
    collected = _pytest(project, "--collect-only", "test_inventory.py")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    ids = sorted(line for line in collected.stdout.splitlines() if "::" in line)
    assert ids == sorted(
        f"test_inventory.py::{name}"
        for name in [
            "test_restock[typical]",
            "test_restock[edge]",
            "test_restock_raises_valueerror",
            "test_fetch_price[typical]",
            "test_fetch_price[edge]",
            "test_batches[typical]",
            "test_batches[edge]",
            "test_Shelf_add[typical]",
            "test_Shelf_add[edge]",
            "test_Shelf_take",
            "test_Shelf_take_raises_indexerror",
            "test_Shelf_of[typical]",
            "test_Shelf_of[edge]",
        ]
    )


def test_every_skeleton_test_fails_until_filled_in(project: Path) -> None:
    ran = _pytest(project, "test_inventory.py")
    assert ran.returncode == 1
    assert "13 failed" in ran.stdout and "passed" not in ran.stdout


def test_skeleton_text_is_clean_and_readable() -> None:
    skeleton = make_skeleton(MODULE, "inventory")
    ast.parse(skeleton)
    assert analyze_python(skeleton, filename="test_inventory.py", cell=False) == []
    assert "from inventory import Shelf, batches, fetch_price, restock" in skeleton
    assert "# restock(item: str, count: int=1, *, urgent: bool=False) -> int" in skeleton
    assert "pytest.param(..., 1, False, TODO, id='typical')," in skeleton  # defaults kept
    assert "assert restock(item, count, urgent=urgent) == expected" in skeleton
    assert "asyncio.run(fetch_price(item))" in skeleton
    assert "list(batches(items, size))" in skeleton
    assert 'pytest.fail("TODO: assert the effect of obj.add")' in skeleton  # -> None
    assert "Shelf.of(*items)" in skeleton and "test_Shelf_size" not in skeleton  # a property
    assert "not_exported" not in skeleton and "_internal" not in skeleton


def test_module_without_public_functions() -> None:
    skeleton = make_skeleton("_x = 1\ndef _hidden():\n    pass\n", "quiet")
    assert "import quiet  # noqa: F401" in skeleton
    ast.parse(skeleton)
