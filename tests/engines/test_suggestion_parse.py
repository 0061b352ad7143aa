"""Suggestions that parse: line numbers copied from the prompt are removed, the code is
checked in its target's language, and what still does not parse is shown as text, never
offered to apply. Unit checks of the pieces, then the engines against the fake provider."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from engine_harness import Harness, frames_of

from rubberduck_jupyter.engines.base import checked_code, syntax_problem, target_language
from rubberduck_jupyter.engines.line_numbers import numbered, strip_line_numbers
from rubberduck_jupyter.protocol import ChatContext

MODULE = (
    "import os\n"
    "\n"
    "\n"
    "def load(path):\n"
    "    if not os.path.exists(path):\n"
    "        return None\n"
    "    with open(path) as f:\n"
    "        return f.read()"
)


def file_target(path: str) -> SimpleNamespace:
    return SimpleNamespace(path=path, cell_index=None, cell_id=None, label=path)


def test_numbered_listings_strip_back_to_the_code() -> None:
    assert strip_line_numbers(numbered(MODULE)) == MODULE
    # A model trims the trailing spaces of blank lines and uses one space after numbers.
    trimmed = "\n".join(
        f"{i} {line}" if line else "" for i, line in enumerate(MODULE.split("\n"), 1)
    )
    assert strip_line_numbers(trimmed) == MODULE
    assert strip_line_numbers("12 | x = 1\n13 |     y") == "x = 1\n    y"
    assert strip_line_numbers("  7: a\n  8: b\n") == "a\nb"


@pytest.mark.parametrize(
    "text",
    [
        MODULE,  # no numbers at all
        "1  a\n3  b",  # a gap: not one listing
        "1  a\nb",  # an unnumbered line
        "",
    ],
)
def test_text_that_is_not_a_numbered_listing_is_left_alone(text: str) -> None:
    assert strip_line_numbers(text) is None


@pytest.mark.parametrize(
    ("path", "good", "bad"),
    [
        ("src/io.py", "x = 1\n", "x = = 1\n"),
        ("config.json", '{"a": [1, 2]}', '{"a": [1, 2,]}'),
        ("pyproject.toml", '[tool]\nname = "x"\n', "[tool\nname = x\n"),
        ("ci.yml", "jobs:\n  test: {runs: 1}\n", "jobs: [\n  test: {\n"),
        ("app.js", "const f = (a) => a + 1;\n", "const f = (a => a + ;\n"),
    ],
)
def test_each_language_is_parsed_as_itself(path: str, good: str, bad: str) -> None:
    language = target_language(file_target(path))
    assert syntax_problem(language, good) is None
    assert syntax_problem(language, bad)


def test_cells_allow_ipython_syntax_and_files_without_a_grammar_are_not_parsed() -> None:
    cell = SimpleNamespace(path="n.ipynb", cell_index=2, cell_id=None, label="cell 2")
    assert target_language(cell) == "cell"
    assert syntax_problem("cell", "%timeit f(x)\n!ls\nawait g()") is None
    assert syntax_problem("python", "%timeit f(x)")  # a module has no IPython syntax
    assert target_language(file_target("README.md")) is None
    assert target_language(file_target("Makefile")) is None


def test_numbers_are_removed_only_when_the_code_needs_it() -> None:
    # Valid YAML whose keys are numbers stays as it is.
    yaml_text = "1: one\n2: two"
    assert checked_code(file_target("n.yaml"), yaml_text) == (yaml_text, None)
    code, problem = checked_code(file_target("a.json"), '   1  {"a":\n   2    1}')
    assert (code, problem) == ('{"a":\n  1}', None)
    code, problem = checked_code(file_target("a.py"), "   1  x = = 1\n   2  y = 2")
    assert code == "x = = 1\ny = 2"
    assert problem is not None and problem.startswith("line 1")


async def test_review_of_a_file_offers_the_stripped_rewrite(harness: Harness) -> None:
    (harness.root / "etl.py").write_text("def load(p):\n    return open(p).read()\n")
    rewrite = "def load(p):\n    with open(p) as f:\n        return f.read()"
    harness.fake.set_replies(
        [f"- **line 2** leaks a handle.\n\n```python\n{numbered(rewrite)}\n```"]
    )
    frames = await harness.chat("/review etl.py")
    (suggestion,) = frames_of(frames, "suggestion")
    assert suggestion["suggestion"]["proposed"] == rewrite
    assert "+    with open(p) as f:" in suggestion["suggestion"]["diff"]
    assert not [f for f in frames_of(frames, "notice") if f["code"] == "suggestion_unparsable"]


async def test_a_fix_that_does_not_parse_is_shown_as_text_only(harness: Harness) -> None:
    broken = "   1  total = sum(values\n   2  print(total)"
    harness.fake.set_replies([f"Close the parenthesis.\n\n```python\n{broken}\n```"] * 3)
    context = ChatContext(
        notebook_path="n.ipynb",
        cell_index=1,
        active_cell="total = sum(valuez)\nprint(total)",
        error="NameError: name 'valuez' is not defined",
    )
    frames = await harness.chat("/fix", context=context)
    assert frames_of(frames, "suggestion") == []
    (notice,) = [f for f in frames_of(frames, "notice") if f["code"] == "suggestion_unparsable"]
    message = notice["message"]
    assert "not offered to apply" in message
    # The code, numbers removed, as a plain text block.
    assert "```text\ntotal = sum(values\nprint(total)\n```" in message
    assert frames[-1]["type"] == "done"
