"""/tests (rubberduck_jupyter.contrib.tests) through a real registry and CommandContext."""

from __future__ import annotations

import ast

import pytest
from contrib_support import run

from rubberduck_jupyter.contrib import tests as tests_plugin
from rubberduck_jupyter.plugins import CommandError

pytestmark = pytest.mark.timeout(10)

CELL = (
    "import math\n\n@cache\ndef area(r: float) -> float:\n    return math.pi * r**2\n\n"
    "class Shape:\n    def scale(self, k):\n        return k\n"
)
TESTS = "def test_area():\n    assert area(1) == pytest.approx(3.14159, rel=1e-4)\n"


def test_the_spec_declares_exactly_its_permissions() -> None:
    assert tests_plugin.spec.permissions == {"call_model", "propose_edits"}


async def test_with_a_model_the_checked_block_is_inserted_after_the_cell() -> None:
    reply = f"Here you go:\n\n```python\n{TESTS}```\n\nRun them with pytest."
    result, services = await run(
        tests_plugin, "tests", ["area"], context={"active_cell": CELL}, has_model=True,
        replies=[reply],
    )  # fmt: skip
    assert result == {"code": TESTS, "title": "pytest tests for `area`", "mode": "insert_after"}
    (asked,) = services.of("ask")
    assert asked["checked"] is True
    # only the function's source, decorator included, is sent
    assert "@cache\ndef area(r: float) -> float:\n    return math.pi * r**2\n```" in asked["prompt"]
    assert "class Shape" not in asked["prompt"]
    ast.parse(result["code"])


async def test_a_method_is_extracted_by_its_qualified_name() -> None:
    _, services = await run(
        tests_plugin, "tests", ["Shape.scale"], context={"active_cell": CELL}, has_model=True,
        replies=["```python\ndef test_scale():\n    assert Shape().scale(2) == 2\n```"],
    )  # fmt: skip
    assert "def scale(self, k):\n    return k\n```" in services.of("ask")[0]["prompt"]


async def test_the_selection_wins_over_the_cell() -> None:
    _, services = await run(
        tests_plugin, "tests", context={"active_cell": CELL, "selection": "def g():\n    return 1"},
        has_model=True, replies=["```python\ndef test_g():\n    assert g() == 1\n```"],
    )  # fmt: skip
    prompt = services.of("ask")[0]["prompt"]
    assert "the selection" in prompt and "def g():" in prompt and "def area" not in prompt


async def test_a_reply_without_a_python_block_offers_nothing() -> None:
    result, services = await run(
        tests_plugin, "tests", context={"active_cell": CELL}, has_model=True,
        replies=["I cannot write tests for this."],
    )  # fmt: skip
    assert result is None and services.of("suggest") == []
    assert "no Python code block" in services.said


async def test_without_a_model_the_skeleton_is_shown_and_offered() -> None:
    result, services = await run(tests_plugin, "tests", context={"active_cell": CELL})
    assert services.of("ask") == []
    assert services.of("test_skeleton") == [{"source": CELL}]
    assert result == {
        "code": services.skeleton,
        "title": "pytest tests for the active cell",
        "mode": "insert_after",
    }
    assert "```python\n" + services.skeleton + "```" in services.said


async def test_empty_source_and_unknown_function_get_a_message() -> None:
    result, services = await run(tests_plugin, "tests", context={"active_cell": "  "})
    assert result is None and "Nothing to test: select some code" in services.said
    result, services = await run(tests_plugin, "tests", ["nope"], context={"active_cell": CELL})
    assert result is None and "`nope` is not defined in the active cell" in services.said
    assert services.of("suggest") == []


async def test_missing_permissions_are_refused() -> None:
    with pytest.raises(CommandError, match="without the 'call_model' permission"):
        await run(
            tests_plugin, "tests", context={"active_cell": CELL}, has_model=True,
            permissions=frozenset({"propose_edits"}),
        )  # fmt: skip
    with pytest.raises(CommandError, match="without the 'propose_edits' permission"):
        await run(tests_plugin, "tests", context={"active_cell": CELL}, permissions=frozenset())


def test_python_block_handles_an_unclosed_fence() -> None:
    assert tests_plugin.python_block("```python\ndef test_a():\n    pass\n") == (
        "def test_a():\n    pass\n"
    )
    assert tests_plugin.python_block("no code") is None
