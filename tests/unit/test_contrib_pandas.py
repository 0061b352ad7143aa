"""pandas-review (rubberduck_jupyter.contrib.pandas_review): each rule fires and stays quiet."""

from __future__ import annotations

import ast
import collections
import json
import time
from pathlib import Path

import pytest
from contrib_support import registry_with

from rubberduck_jupyter.contrib import pandas_review
from rubberduck_jupyter.contrib.pandas_review import review

pytestmark = pytest.mark.timeout(30)
PDSH = Path("/work/shared/corpora/pdsh")


def _codes(source: str, context: dict | None = None) -> list[str]:
    return [f["code"] for f in review(source, context)]


def _only(source: str, code: str) -> dict:
    found = [f for f in review(source) if f["code"] == code]
    assert len(found) == 1, review(source)
    return found[0]


def _masked_parse(source: str) -> None:
    ast.parse("\n".join("pass" if x.lstrip().startswith("%") else x for x in source.split("\n")))


@pytest.mark.parametrize(
    ("cell", "replacement"),
    [
        (
            'import pandas as pd\ndata = pd.read_csv("a.csv")\ndata[data.x > 0]["y"] = 1\n',
            'import pandas as pd\ndata = pd.read_csv("a.csv")\ndata.loc[data.x > 0, "y"] = 1\n',
        ),
        ('df["a"][3] = 5\n', 'df.loc[3, "a"] = 5\n'),
        (
            "%matplotlib inline\ndf.loc[df.a > 1]['b'] = 2\n",
            "%matplotlib inline\ndf.loc[df.a > 1, 'b'] = 2\n",
        ),
        ("sales_df[sales_df['q'] < 0]['q'] += 1\n", "sales_df.loc[sales_df['q'] < 0, 'q'] += 1\n"),
    ],
)
def test_pd001_chained_assignment(cell: str, replacement: str) -> None:
    finding = _only(cell, "PD001")
    assert finding["replacement"] == replacement
    assert finding["severity"] == "warning" and ".loc" in finding["fix"]
    _masked_parse(finding["replacement"])


@pytest.mark.parametrize(
    "cell",
    [
        "grid[0][1] = 5\n",  # a list of lists
        "import numpy as np\na = np.zeros((2, 2))\na[0][1] = 1\n",
        "data[data.x > 0]['y'] = 1\n",  # no pandas import, not a DataFrame-like name
        'df.loc[3, "a"] = 5\n',
        'x = df["a"][3]\n',
    ],
)
def test_pd001_stays_quiet(cell: str) -> None:
    assert "PD001" not in _codes(cell)


def test_pd001_uses_the_contexts_variables() -> None:
    cell = 'sales["a"][0] = 1\n'
    assert _codes(cell) == []
    assert _codes(cell, {"variables": [{"name": "sales", "type": "DataFrame"}]}) == ["PD001"]


@pytest.mark.parametrize(
    ("cell", "replacement"),
    [
        ('df.drop(columns=["a"], inplace=True)\n', 'df = df.drop(columns=["a"])\n'),
        ("frame.fillna(0, inplace=True)  # note\n", "frame = frame.fillna(0)  # note\n"),
        ("df.reset_index(inplace=True)\n", "df = df.reset_index()\n"),
        (
            'df["a"].fillna(\n    inplace=True,\n    value=0,\n)\n',
            'df["a"] = df["a"].fillna(\n    value=0,\n)\n',
        ),
        ("if ok:\n    t.sort_values('x', inplace=True)\n", "if ok:\n    t = t.sort_values('x')\n"),
    ],
)
def test_pd002_inplace_with_replacement(cell: str, replacement: str) -> None:
    finding = _only(cell, "PD002")
    assert finding["replacement"] == replacement
    _masked_parse(finding["replacement"])


def test_pd002_without_a_safe_rewrite_has_no_replacement() -> None:
    finding = _only("x = df.dropna(inplace=True)\n", "PD002")
    assert "replacement" not in finding
    assert "replacement" not in _only("load().dropna(inplace=True)\n", "PD002")


@pytest.mark.parametrize(
    "cell",
    [
        "layer = nn.ReLU(inplace=True)\n",
        "df.drop(columns=['a'], inplace=False)\n",
        "np.clip(a, 0, 1, inplace=True)\n",
        "obj.update(inplace=True)\n",
    ],
)
def test_pd002_stays_quiet(cell: str) -> None:
    assert "PD002" not in _codes(cell)


def test_pd003_iterrows() -> None:
    finding = _only("for i, row in births.iterrows():\n    total += row.n\n", "PD003")
    assert (finding["line"], finding["col"]) == (1, 15)
    assert "itertuples" in finding["fix"] and "replacement" not in finding
    assert _codes("for i, row in enumerate(rows):\n    pass\n") == []
    assert _codes("for row in df.itertuples():\n    pass\n") == []


@pytest.mark.parametrize(
    ("expr", "vectorised"),
    [
        ('df["a"].apply(lambda x: x * 2)', 'df["a"] * 2'),
        ('df["a"].apply(lambda x: (x + 1) ** 2)', '(df["a"] + 1) ** 2'),
        ("df.name.apply(len)", "df.name.str.len()"),
        ('df["a"].apply(np.sqrt)', 'np.sqrt(df["a"])'),
        ('df["s"].apply(str.lower)', 'df["s"].str.lower()'),
        ('df["s"].apply(lambda s: s.lower())', 'df["s"].str.lower()'),
        ('df["s"].apply(lambda s: len(s))', 'df["s"].str.len()'),
        ('df["a"].apply(abs)', 'df["a"].abs()'),
    ],
)
def test_pd004_apply_with_a_vectorised_equivalent(expr: str, vectorised: str) -> None:
    cell = f"import numpy as np\nout = {expr}\n"
    finding = _only(cell, "PD004")
    assert finding["replacement"] == f"import numpy as np\nout = {vectorised}\n"
    assert vectorised in finding["fix"]
    _masked_parse(finding["replacement"])


@pytest.mark.parametrize(
    "expr",
    [
        'df["a"].apply(lambda x: f(x))',
        'df["a"].apply(lambda x: x if x else 0)',
        'df["a"].apply(lambda x: x * y)',
        "df.apply(np.sqrt, axis=1)",
        'df["s"].apply(lambda s: s.split(","))',
        "items.apply(lambda x: x * 2)",  # not a DataFrame-like name
        'df["a"].apply(lambda x: x + "s")',
    ],
)
def test_pd004_stays_quiet(expr: str) -> None:
    assert "PD004" not in _codes(f"out = {expr}\n")


def test_findings_have_the_review_shape_and_the_hook_tags_them() -> None:
    cell = "df.dropna(inplace=True)\n"
    (finding,) = review(cell)
    assert set(finding) == {
        "source", "code", "message", "line", "col", "end_line", "severity", "fix", "replacement"
    }  # fmt: skip
    assert finding["severity"] in {"warning", "info"}


async def test_the_hook_runs_through_a_real_registry() -> None:
    registry = registry_with(pandas_review)
    added = await registry.hooks.analysis_augment("df.dropna(inplace=True)\n", [], {})
    assert [(f["code"], f["plugin"]) for f in added] == [("PD002", "pandas-review")]
    assert await registry.hooks.analysis_augment("x = 1\n", [], {}) == []
    assert await registry.hooks.analysis_augment("def f(:\n", [], {}) == []


def _code_cells() -> list[str]:
    cells = []
    for path in sorted(PDSH.glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                src = cell["source"]
                cells.append("".join(src) if isinstance(src, list) else src)
    return cells


@pytest.mark.skipif(not PDSH.is_dir(), reason="the pdsh corpus is not on this machine")
def test_the_pdsh_notebooks_review_without_a_crash_and_fast() -> None:
    cells = _code_cells()
    assert len(cells) > 1000
    counts: collections.Counter[str] = collections.Counter()
    start = time.perf_counter()
    for source in cells:
        for finding in review(source):
            counts[finding["code"]] += 1
            if "replacement" in finding:
                _masked_parse(finding["replacement"].replace("!", "#!"))
    elapsed = time.perf_counter() - start
    print(f"pdsh: {len(cells)} code cells in {elapsed:.3f} s, findings {dict(counts)}")
    assert elapsed < 5  # ~0.26 s measured on the 2-core dev machine
