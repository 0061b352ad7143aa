"""/doc (rubberduck_jupyter.contrib.doc) through a real registry and CommandContext."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest
from contrib_support import run

import rubberduck_jupyter
from rubberduck_jupyter.contrib import doc as doc_plugin
from rubberduck_jupyter.plugins import CommandError

pytestmark = pytest.mark.timeout(10)
ROOT = Path(__file__).resolve().parents[2]


def test_the_worktree_package_is_the_one_imported() -> None:
    assert Path(rubberduck_jupyter.__file__).resolve().parent == ROOT / "rubberduck_jupyter"


def test_the_entry_points_name_the_contrib_modules() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["rubberduck.plugins"] == {
        "doc": "rubberduck_jupyter.contrib.doc",
        "tests": "rubberduck_jupyter.contrib.tests",
        "pandas-review": "rubberduck_jupyter.contrib.pandas_review",
    }


def test_contrib_imports_only_the_public_plugin_api() -> None:
    for path in (ROOT / "rubberduck_jupyter" / "contrib").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, path
                names = [node.module or ""]
            for name in names:
                if name.startswith("rubberduck_jupyter"):
                    assert name == "rubberduck_jupyter.plugins", (path.name, name)


def test_the_spec_declares_exactly_its_permissions() -> None:
    assert doc_plugin.spec.permissions == {"call_model", "propose_edits", "read_index"}


async def _doc(cell: str, *args: str, **kw):  # type: ignore[no-untyped-def]
    result, services = await run(doc_plugin, "doc", args, context={"active_cell": cell}, **kw)
    return result, services


SKELETON_F = '''"""TODO: describe what `f` does.

    Parameters
    ----------
    a : int
        TODO: describe.
    b
        TODO: describe.

    Returns
    -------
    float
        TODO: describe.
    """'''


async def test_no_model_inserts_a_signature_skeleton_under_the_def() -> None:
    cell = "import math\n\ndef f(a: int, b=2) -> float:\n    return a * b  # keep\n\ny = f(1)\n"
    result, services = await _doc(cell)
    assert result["mode"] == "replace"
    assert result["code"] == (
        "import math\n\ndef f(a: int, b=2) -> float:\n    "
        + SKELETON_F
        + "\n    return a * b  # keep\n\ny = f(1)\n"
    )
    assert "with a model, RubberDuck would write the descriptions" in services.said
    assert services.of("ask") == []
    ast.parse(result["code"])


MODEL_DOC = "Multiply two numbers.\n\nParameters\n----------\na : int\n    The first."


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        pytest.param(
            "async def g(x):\n    # first\n    await x\n",
            'async def g(x):\n    """{d8}"""\n    # first\n    await x\n',
            id="async",
        ),
        pytest.param(
            "class A:\n    @property\n    def m(self):\n        '''old'''\n        return 1\n",
            'class A:\n    @property\n    def m(self):\n        """{d16}"""\n        return 1\n',
            id="method-decorated-existing-docstring",
        ),
        pytest.param(
            "def f(x): return x  # c\n",
            'def f(x):\n    """{d8}"""\n    return x  # c\n',
            id="one-line",
        ),
        pytest.param(
            "def f(x): 'old'; return x\n",
            'def f(x):\n    """{d8}"""\n    return x\n',
            id="one-line-with-docstring",
        ),
        pytest.param(
            "@dec\ndef h(\n    a,\n    # c\n):\n\tpass\n",
            '@dec\ndef h(\n    a,\n    # c\n):\n\t"""{dtab}"""\n\tpass\n',
            id="multi-line-signature-tab-body",
        ),
        pytest.param(
            "%time x = 1\ndef k():\n  return 2\n",
            '%time x = 1\ndef k():\n  """{d2}"""\n  return 2\n',
            id="ipython-line-outside-the-function",
        ),
    ],
)
async def test_model_docstring_is_placed_for_each_def_shape(cell: str, expected: str) -> None:
    reply = '```python\n"""\n' + MODEL_DOC + '\n"""\n```'
    result, services = await _doc(cell, has_model=True, replies=[reply])

    def indented(pad: str) -> str:
        return (
            "\n".join((pad + x if x and i else x) for i, x in enumerate(MODEL_DOC.split("\n")))
            + "\n"
            + pad
        )

    want = expected.format(
        d8=indented("    "), d16=indented("        "), d2=indented("  "), dtab=indented("\t")
    )
    assert result["code"] == want
    assert result["mode"] == "replace"
    compile_cell = "\n".join("pass" if x.startswith("%") else x for x in want.split("\n"))
    ast.parse(compile_cell)
    (asked,) = services.of("ask")
    assert "ONLY the docstring body" in asked["prompt"] and "numpy style" in asked["prompt"]


async def test_the_style_follows_existing_google_docstrings() -> None:
    cell = (
        'def a(x):\n    """Do.\n\n    Args:\n        x: it.\n    """\n    return x\n\n'
        "def b(y):\n    return y\n"
    )
    result, _ = await _doc(cell)
    assert result["code"].endswith(
        'def b(y):\n    """TODO: describe what `b` does.\n\n    Args:\n        y: TODO: '
        'describe.\n\n    Returns:\n        TODO: describe.\n    """\n    return y\n'
    )
    _, services = await _doc(cell, has_model=True, replies=["Return y."])
    assert "google style" in services.of("ask")[0]["prompt"]


async def test_a_named_function_and_the_selection_pick_the_target() -> None:
    cell = "def a():\n    pass\n\ndef b():\n    pass\n"
    named, _ = await _doc(cell, "b")
    assert named["code"].startswith('def a():\n    pass\n\ndef b():\n    """TODO')
    result, _ = await run(
        doc_plugin, "doc", context={"active_cell": cell, "selection": "def b():\n    pass"}
    )
    assert result["code"].startswith('def a():\n    pass\n\ndef b():\n    """TODO')
    first, _ = await _doc(cell)
    assert first["code"].startswith('def a():\n    """TODO')


async def test_a_function_with_ipython_syntax_is_not_edited() -> None:
    cell = "def f():\n    !ls\n    return 1\n"
    result, services = await _doc(cell)
    assert result is None and services.of("suggest") == []
    assert "IPython syntax" in services.said


async def test_a_plain_cell_gets_a_markdown_description() -> None:
    cell = "import pandas as pd\ndf = pd.read_csv('a.csv')\ndf = df.dropna()\n"
    result, services = await _doc(cell)
    assert result["mode"] == "insert_markdown_after"
    assert "`pandas`" in result["code"] and "`df`" in result["code"]
    assert "`pd.read_csv`" in result["code"]
    assert "would write the descriptions" in services.said
    modelled, services = await _doc(
        cell, has_model=True, replies=["```markdown\nLoads `a.csv` and drops NaN rows.\n```"]
    )
    assert modelled == {
        "code": "Loads `a.csv` and drops NaN rows.",
        "title": "Describe this cell",
        "mode": "insert_markdown_after",
    }


async def test_a_name_not_in_the_cell_is_looked_up_in_the_index() -> None:
    hits = [
        {"path": "lib/other.py", "text": "x = 1", "start_line": 1},
        {"path": "lib/util.py", "text": "import os\n\ndef clean(s):\n    ...", "start_line": 10},
    ]
    result, services = await _doc("x = 1\n", "clean", hits=hits)
    assert result is None and services.of("suggest") == []
    assert services.of("search")[0]["query"] == "def clean"
    assert "`lib/util.py` line 12" in services.said
    _, services = await _doc("x = 1\n", "clean", hits=[])
    assert "no definition" in services.said
    _, services = await _doc(
        "x = 1\n", "clean", permissions=frozenset({"propose_edits", "call_model"})
    )
    assert services.of("search") == [] and "not defined in the active cell" in services.said


async def test_missing_permissions_are_refused() -> None:
    with pytest.raises(CommandError, match="without the 'propose_edits' permission"):
        await _doc("def f():\n    pass\n", permissions=frozenset({"call_model"}))
    with pytest.raises(CommandError, match="without the 'call_model' permission"):
        await _doc("def f():\n    pass\n", has_model=True, permissions=frozenset({"propose_edits"}))


async def test_an_empty_or_broken_cell_gets_a_message() -> None:
    result, services = await _doc("   ")
    assert result is None and "Nothing to document" in services.said
    result, services = await _doc("def f(:\n")
    assert result is None and "does not parse" in services.said


@pytest.mark.parametrize(
    "reply",
    [
        "Add one.",
        '"""Add one."""',
        "```\nAdd one.\n```",
        '```python\ndef f(x):\n    """Add one."""\n    return x + 1\n```',
        "r'''Add one.'''",
    ],
)
async def test_model_replies_are_cleaned_to_the_docstring_body(reply: str) -> None:
    result, _ = await _doc("def f(x):\n    return x + 1\n", has_model=True, replies=[reply])
    assert result["code"] == 'def f(x):\n    """Add one."""\n    return x + 1\n'


async def test_quotes_and_backslashes_in_the_text_still_parse() -> None:
    reply = 'Uses """triple""" quotes and "\\n".'
    result, _ = await _doc("def f(s):\n    return s\n", has_model=True, replies=[reply])
    tree = ast.parse(result["code"])
    assert ast.get_docstring(tree.body[0]) == 'Uses """triple""" quotes and "\\n".'
