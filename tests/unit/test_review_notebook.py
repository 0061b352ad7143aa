"""Cross-cell review (review/notebook.py): names read before the cell that defines them,
hidden state, out-of-order runs, imports in the middle; and quiet on real notebooks."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from rubberduck_jupyter.review.notebook import NotebookCell, analyze_notebook, cells_from_notebook

PDSH = Path("/work/shared/corpora/pdsh")
for candidate in (Path(__file__).resolve().parents[3] / "shared" / "corpora" / "pdsh", PDSH):
    if candidate.is_dir():
        PDSH = candidate
        break


def codes(cells: list[NotebookCell]) -> list[tuple[int, str]]:
    return [(f.cell, f.finding.code) for f in analyze_notebook(cells)]


def test_a_name_defined_only_below_is_read_out_of_order() -> None:
    cells = [
        NotebookCell(0, "import pandas as pd"),
        NotebookCell(2, "summary = df.describe()\nprint(summary)"),  # index 1 is markdown
        NotebookCell(3, "df = pd.read_csv('sales.csv')"),
    ]
    (finding,) = analyze_notebook(cells)
    assert (finding.cell, finding.related_cell) == (2, 3)
    assert finding.finding.code == "NB101"
    assert (finding.finding.line, finding.finding.col) == (1, 11)
    assert "cell 4, below" in finding.finding.message  # cells are counted from 1 for people


def test_names_bound_in_the_cell_or_in_nested_scopes_are_fine() -> None:
    source = (
        "total = 0\n"
        "for row in rows:\n"
        "    total += row\n"
        "squares = [n * n for n in range(3)]\n"
        "pairs = {k: v for k, v in zip('ab', squares)}\n"
        "area = lambda r: 3.14 * r * r\n"
        "def later():\n"
        "    return undefined_until_called\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError as exc:\n"
        "    print(exc, len(squares), display, _i1, __name__)\n"
    )
    cells = [NotebookCell(0, "rows = [1, 2]"), NotebookCell(1, source, execution_count=2)]
    assert codes(cells) == []


def test_a_read_before_the_same_cell_binds_it_counts_as_a_read() -> None:
    cells = [NotebookCell(0, "x = x + 1", execution_count=1), NotebookCell(1, "x = 0")]
    assert codes(cells) == [(0, "NB101")]


def test_a_name_no_cell_defines_is_hidden_state_only_when_the_cell_ran() -> None:
    ran = [NotebookCell(0, "model.fit(X)", execution_count=4)]
    found = analyze_notebook(ran)
    assert [f.finding.code for f in found] == ["NB102", "NB102"]
    assert "hidden state" in found[0].finding.message
    assert codes([NotebookCell(0, "model.fit(X)")]) == []  # never ran: per-cell review's F821
    failed = [NotebookCell(0, "model.fit(X)", execution_count=4, failed=True)]
    assert codes(failed) == []  # it raised: the error says so already


def test_cells_run_out_of_order_are_named_once_each() -> None:
    cells = [
        NotebookCell(0, "a = 1", execution_count=1),
        NotebookCell(1, "b = a", execution_count=5),
        NotebookCell(2, "c = b", execution_count=3),
        NotebookCell(3, "d = c", execution_count=None),
        NotebookCell(4, "e = d", execution_count=6),
    ]
    found = [f for f in analyze_notebook(cells) if f.finding.code == "NB103"]
    assert [(f.cell, f.related_cell) for f in found] == [(2, 1)]
    assert "[3]" in found[0].finding.message and "[5]" in found[0].finding.message


def test_an_import_below_code_is_advice_once_per_cell() -> None:
    cells = [
        NotebookCell(0, '"""Setup."""\nimport numpy as np'),
        NotebookCell(1, "import os\nimport sys"),  # still only imports above: fine
        NotebookCell(2, "x = np.arange(3)"),
        NotebookCell(3, "import json\nimport re\nprint(json, re, os, sys, x)"),
    ]
    found = analyze_notebook(cells)
    assert [(f.cell, f.finding.code, f.finding.severity) for f in found] == [(3, "NB104", "info")]


def test_magics_and_unparsable_cells_do_not_break_the_review() -> None:
    cells = [
        NotebookCell(0, "%matplotlib inline\nimport numpy as np"),
        NotebookCell(1, "%%bash\necho $HOME"),
        NotebookCell(2, "def broken(:\n    pass"),
        NotebookCell(3, "files = !ls\nnp.array(files)", execution_count=2),
    ]
    assert codes(cells) == []


def test_cells_from_an_nbformat_notebook_keep_their_positions() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("y = x * 2", execution_count=2),
        nbformat.v4.new_code_cell("x = 1", execution_count=1),
    ]
    nb.cells[1].outputs = [nbformat.v4.new_output("error", ename="NameError", evalue="x")]
    cells = cells_from_notebook(json.loads(nbformat.writes(nb)))
    assert [(c.index, c.execution_count, c.failed) for c in cells] == [
        (1, 2, True),
        (2, 1, False),
    ]
    assert [(f.cell, f.finding.code) for f in analyze_notebook(cells)] == [
        (1, "NB101"),
        (2, "NB103"),
    ]


@pytest.mark.skipif(not PDSH.is_dir(), reason="pdsh corpus not checked out")
def test_real_notebooks_give_no_false_name_findings() -> None:
    """pdsh's notebooks run top to bottom as published: a name finding there is ours."""
    notebooks = sorted(PDSH.glob("*.ipynb"))
    assert len(notebooks) >= 60
    seen = 0
    for path in notebooks:
        cells = cells_from_notebook(json.loads(path.read_text(encoding="utf-8")))
        seen += len(cells)
        wrong = [f for f in analyze_notebook(cells) if f.finding.code in {"NB101", "NB102"}]
        assert wrong == [], (path.name, [f.to_json() for f in wrong])
    assert seen > 1000


def test_a_cell_that_reads_a_name_before_binding_it_alone_is_hidden_state() -> None:
    cells = [NotebookCell(0, "counter = counter + 1", execution_count=7)]
    (finding,) = analyze_notebook(cells)
    assert finding.finding.code == "NB102"
    assert "`counter` is read before any cell defines it" in finding.finding.message
