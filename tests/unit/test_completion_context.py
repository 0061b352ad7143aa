"""Completion context (budget, order, query), cache and model settings."""

from __future__ import annotations

import pytest

from rubberduck_jupyter.completion.cache import CompletionCache
from rubberduck_jupyter.completion.context import assemble, project_query
from rubberduck_jupyter.completion.settings import completion_entry, is_fim_model
from rubberduck_jupyter.llm.config import ModelEntry, ModelsConfig
from rubberduck_jupyter.protocol import (
    CompletionCell,
    CompletionRequest,
    CompletionVariable,
)


def _request(cells: list[str], **extra: object) -> CompletionRequest:
    return CompletionRequest(
        id="c",
        prefix="x = ",
        cells=tuple(CompletionCell("code", c) for c in cells),
        **extra,  # type: ignore[arg-type]
    )


def test_nearest_cells_fill_the_budget_and_read_oldest_first() -> None:
    near, middle, far = "a" * 300, "b" * 300, "c" * 300
    context = assemble(_request([near, middle, far]), budget_chars=1200)
    # 1200 - 35% for project code leaves room for two cells: the two nearest, in order.
    assert context.cells == (middle, near)


def test_a_cell_too_big_stops_the_filling() -> None:
    context = assemble(_request(["a" * 100, "b" * 5000, "c" * 10]), budget_chars=1000)
    assert context.cells == ("a" * 100,)


def test_the_nearest_cell_too_big_gives_its_last_whole_lines() -> None:
    big = "\n".join(f"line_{n} = {n}" for n in range(500))
    context = assemble(_request([big, "far = 1"]), budget_chars=2000)
    (tail,) = context.cells
    assert big.endswith(tail) and tail.startswith("line_") and len(tail) <= 2000


def test_variables_are_listed_with_type_and_shape() -> None:
    variables = (CompletionVariable("df", "DataFrame", "(100, 3)"), CompletionVariable("n", "int"))
    context = assemble(_request([], variables=variables), budget_chars=1000)
    assert context.variables == ("df: DataFrame (100, 3)", "n: int")


def test_context_key_changes_with_cells_only() -> None:
    one = assemble(_request(["a = 1"]), 1000).key()
    assert one == assemble(_request(["a = 1"]), 1000).key()
    assert one != assemble(_request(["a = 2"]), 1000).key()


def test_project_query_puts_imports_first_then_called_names() -> None:
    prefix = (
        "import numpy as np\nfrom etl.load import read_sales\nframe = clean_frame(read_sales())"
    )
    assert project_query(prefix).split() == [
        "etl.load",
        "read_sales",
        "numpy",  # "np": too short to search for
        "clean_frame",
    ]


def test_cache_serves_the_same_prefix_and_the_rest_after_typing() -> None:
    cache = CompletionCache()
    cache.put("u", "k", "df = pd.", "", "read_csv('a')")
    assert cache.get("u", "k", "df = pd.", "") == "read_csv('a')"
    assert cache.get("u", "k", "df = pd.read_", "") == "csv('a')"
    assert cache.get("u", "k", "df = pd.write", "") is None  # typed something else
    assert cache.get("other", "k", "df = pd.", "") is None  # never another user's
    assert cache.get("u", "k", "df = pd.", "\nmore") is None  # another suffix


def test_cache_is_bounded() -> None:
    cache = CompletionCache(max_keys=2)
    for n in range(5):
        cache.put("u", f"k{n}", "p", "", "t")
    assert len(cache) == 2 and cache.get("u", "k0", "p", "") is None


@pytest.mark.parametrize(
    ("model", "choice", "fim"),
    [
        ("openai/qwen2.5-coder:1.5b", "auto", True),
        ("codestral/codestral-latest", "auto", True),
        ("openai/gpt-4o-mini", "auto", False),
        ("openai/gpt-4o-mini", "true", True),
        ("openai/deepseek-coder-v2", "false", False),
    ],
)
def test_fim_models(model: str, choice: str, fim: bool) -> None:
    assert is_fim_model(ModelEntry(name=model, model=model), choice) is fim


def test_completion_entry_uses_a_configured_model_or_the_shortcut_endpoint() -> None:
    entry = ModelEntry(name="coder", model="openai/qwen", api_base="http://h/v1")
    config = ModelsConfig(entries={"coder": entry}, default="coder")
    assert completion_entry("coder", config) is entry
    built = completion_entry("openai/small", config, api_base="http://x/v1", api_key="k")
    assert built is not None and built.api_base == "http://x/v1" and built.model == "openai/small"
    assert completion_entry(None, config) is None and completion_entry(" ", config) is None
