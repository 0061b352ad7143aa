"""The notebook's static pass in one go (review/batch.py) gives each cell exactly what the
per-cell review gives it with the cells above, on real pdsh notebooks (read in place),
with one ruff process instead of one a cell, and fails the same way when ruff does."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from rubberduck_jupyter.review import cellfix, static
from rubberduck_jupyter.review.batch import NamesAbove, review_notebook
from rubberduck_jupyter.review.cellfix import CellReview, review_cell
from rubberduck_jupyter.review.notebook import NotebookCell, analyze_notebook, cells_from_notebook

PDSH = Path("/work/shared/corpora/pdsh")
if not PDSH.is_dir():
    PDSH = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "pdsh"
needs_pdsh = pytest.mark.skipif(not PDSH.is_dir(), reason="pdsh corpus not checked out")

# Magics (01.07, 03.12, 04.09), a deliberate syntax error (03.05) and indentation error
# (03.12), ruff findings with fixes (04.11 B007, 05.08 F841, 06.00 C901/A001/B006/PLW2901),
# cross-cell findings (05.x): together ~230 code cells.
NOTEBOOKS = [
    "01.07-Timing-and-Profiling.ipynb",
    "03.05-Hierarchical-Indexing.ipynb",
    "03.09-Pivot-Tables.ipynb",
    "04.09-Text-and-Annotation.ipynb",
    "03.12-Performance-Eval-and-Query.ipynb",
    "04.11-Settings-and-Stylesheets.ipynb",
    "05.08-Random-Forests.ipynb",
    "06.00-Figure-Code.ipynb",
]


def _pdsh(name: str) -> list[NotebookCell]:
    return cells_from_notebook(json.loads((PDSH / name).read_text(encoding="utf-8")))


def _wire(review: CellReview) -> list[dict[str, Any]]:
    """What the endpoint sends (findings, fixes) plus the edits `to_json` leaves out."""
    return [
        {**item, "edits": finding.edits}
        for item, finding in zip(review.to_json(), review.findings, strict=True)
    ]


def _count_ruff_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many ruff processes start, and with how many targets each."""
    runs: list[int] = []
    real = static._run_ruff_command

    def counting(targets: Any, **kwargs: Any) -> Any:
        runs.append(len(targets))
        return real(targets, **kwargs)

    monkeypatch.setattr(static, "_run_ruff_command", counting)
    return runs


@needs_pdsh
@pytest.mark.parametrize("order", ["as-is", "reversed"])
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_batch_findings_equal_the_per_cell_findings_on_pdsh(name: str, order: str) -> None:
    """Reversed, the cells read names only cells further down bind: many undefined names,
    which is where the names-above lookup could differ from the per-cell union."""
    cells = _pdsh(name)
    if order == "reversed":
        cells = cells[::-1]
    assert len(cells) >= 5
    known = ["kernel_df"]
    review = review_notebook(cells, known_names=known)
    assert [position for position, _ in review.static] == list(range(len(cells)))
    sources = [cell.source for cell in cells]
    codes: set[str] = set()
    for position, cell_review in review.static:
        alone = review_cell(sources[position], known_names=known, above=sources[:position])
        assert _wire(cell_review) == _wire(alone), (name, position, sources[position])
        codes |= {f.code for f in alone.findings}
    assert review.notebook == analyze_notebook(cells)
    assert codes  # a comparison of empty lists would prove nothing
    if order == "reversed":
        assert "F821" in codes
    if name.startswith("03.05"):  # the notebook shows an invalid slice on purpose
        assert "SyntaxError" in codes


@needs_pdsh
def test_a_slice_sees_the_names_of_every_cell_above_it() -> None:
    cells = _pdsh("03.08-Aggregation-and-Grouping.ipynb")
    whole = dict(review_notebook(cells).static)
    for cross_cell in (True, False):
        part = review_notebook(cells, static=range(10, 20), cross_cell=cross_cell)
        assert [position for position, _ in part.static] == list(range(10, 20))
        for position, cell_review in part.static:
            assert _wire(cell_review) == _wire(whole[position])
        assert part.notebook == (analyze_notebook(cells) if cross_cell else [])
    assert review_notebook(cells, static=range(0)).static == []


def test_a_name_is_known_only_below_the_cell_that_binds_it() -> None:
    cells = [
        NotebookCell(0, "print(df)"),
        NotebookCell(1, "df = load()"),
        NotebookCell(2, "print(df, model)"),
    ]
    review = review_notebook(cells, known_names={"load"})
    undefined = [[f.message for f in r.findings if f.code == "F821"] for _, r in review.static]
    assert undefined == [["Undefined name `df`"], [], ["Undefined name `model`"]]
    names = NamesAbove({"df": 1}, 1, frozenset({"display"}))
    assert "df" not in names and "display" in names and 3 not in names
    assert "df" in NamesAbove({"df": 1}, 2, frozenset())


def test_one_ruff_process_checks_a_hundred_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = _count_ruff_runs(monkeypatch)
    cells = [
        NotebookCell(n, f"value_{n} = [{n}]\nvalue_{n} = value_{n}.sort()\n") for n in range(100)
    ]
    cells.append(NotebookCell(100, "%%bash\necho not python\n"))  # no ruff for it
    cells.append(NotebookCell(101, "def f(:\n"))  # nor for a syntax error
    review = review_notebook(cells)
    assert runs == [100]
    codes = [[f.code for f in r.findings] for _, r in review.static]
    assert codes[:100] == [["RD103"]] * 100
    assert codes[100:] == [[], ["SyntaxError"]]


def test_many_cells_are_split_between_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(static, "RUFF_BATCH_FILES", 3)
    runs = _count_ruff_runs(monkeypatch)
    sources = [f"import os\nprint(x_{n})\n" for n in range(7)]
    results = static.run_ruff_many(sources)
    assert runs == [3, 3, 1]
    alone = [static.run_ruff(source) for source in sources]

    def located(runs: list[Any]) -> list[Any]:  # the file name is all that differs
        return [[{k: v for k, v in d.items() if k != "filename"} for d in run] for run in runs]

    assert located(results) == located(alone)
    assert all(len(run) == 2 for run in alone)  # F401 and F821 in each


def test_the_cells_files_are_removed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(static, "_scratch_folder", lambda: str(tmp_path))
    static.run_ruff_many(["x = 1\n", "y = 2\n"])
    assert list(tmp_path.iterdir()) == []


def _fake_ruff(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-ruff"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.mark.parametrize(
    ("ruff", "says"),
    [
        ("missing", "ruff could not start"),
        ("exec sleep 30", "took over 0.5s"),
        ("echo 'error: something broke' >&2; exit 2", "something broke"),
    ],
)
def test_a_failing_ruff_fails_each_cell_as_the_single_path_does(
    ruff: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = "/nonexistent/bin/ruff" if ruff == "missing" else _fake_ruff(tmp_path, ruff)
    monkeypatch.setattr(static, "_ruff_binary", lambda: binary)
    sources = ["df = df.dropna(inplace=True)\n", "x = (\n", "print(nope)\n"]
    review = review_notebook([NotebookCell(n, s) for n, s in enumerate(sources)], timeout=0.5)
    for (_, cell_review), source in zip(review.static, sources, strict=True):
        alone = static.analyze_python(source, timeout=0.5, known_names=())
        assert cell_review.findings == alone
    notes = [
        f.message for _, r in review.static for f in r.findings if f.code == "ruff-unavailable"
    ]
    assert len(notes) == 2 and all(says in note for note in notes)  # not the syntax error


def test_the_per_cell_path_parses_each_cell_above_once(monkeypatch: pytest.MonkeyPatch) -> None:
    static._names_bound_cached.cache_clear()
    parsed: list[str] = []
    real = static.defined_names

    def counting(source: str, *, cell: bool = True) -> set[str]:
        parsed.append(source)
        return real(source, cell=cell)

    monkeypatch.setattr(static, "defined_names", counting)
    sources = [f"a_{n} = {n}" for n in range(20)]
    big = "b = 1\n" + "# padding\n" * static.CACHED_CELL_CHARS  # too big to be kept
    for n in range(20):
        review_cell("print(a_0, b)", above=[*sources[:n], big])
    assert all(parsed.count(source) == 1 for source in sources[:19])
    assert parsed.count(big) == 20
    assert review_cell("print(a_0, b)", above=[sources[0], big]).findings == []


def test_fixes_are_bounded_per_cell_on_both_paths() -> None:
    """Each fix is the whole cell again (applied and parsed): past the bound, findings keep
    their `fix` text but carry no replacement."""
    source = "".join(f"import mod_{n}\n" for n in range(cellfix.MAX_FIXES_PER_CELL + 10))
    alone = review_cell(source)
    assert len(alone.findings) == cellfix.MAX_FIXES_PER_CELL + 10
    offered = [r for r in alone.replacements if r is not None]
    assert len(offered) == cellfix.MAX_FIXES_PER_CELL
    assert offered[0] == source.replace("import mod_0\n", "", 1)
    assert all(f.fix for f in alone.findings)
    ((_, batched),) = review_notebook([NotebookCell(0, source)]).static
    assert _wire(batched) == _wire(alone)
