"""Static review with the real ruff binary on real snippets and on real notebook cells
(pdsh, read in place), plus ruff failing for real: missing, hanging, or too old."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from rubberduck_jupyter.review import static
from rubberduck_jupyter.review.findings import Finding, format_findings
from rubberduck_jupyter.review.static import analyze_python, defined_names

PDSH = Path("/work/shared/corpora/pdsh")
if not PDSH.is_dir():
    PDSH = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "pdsh"


def _codes(findings: list[Finding]) -> list[tuple[int, str]]:
    return [(f.line, f.code) for f in findings]


def _by_code(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


def test_undefined_names_respect_kernel_names_and_ipython_builtins() -> None:
    cell = "summary = df.describe()\ndisplay(summary)\nplt.plot(summary)\n_3\n"
    findings = analyze_python(cell, known_names={"df"})
    undefined = _by_code(findings, "F821")
    assert [(f.line, f.message, f.severity) for f in undefined] == [
        (3, "Undefined name `plt`", "error")
    ]
    assert format_findings(undefined) == "line 3: F821 Undefined name `plt`"


def test_findings_serialise_and_format_for_a_prompt() -> None:
    finding = Finding("ruff", "F821", "Undefined name `pd`", 3, 5, 3, "error", None, block=1)
    assert finding.to_json() == {
        "source": "ruff",
        "code": "F821",
        "message": "Undefined name `pd`",
        "line": 3,
        "col": 5,
        "end_line": 3,
        "severity": "error",
        "fix": None,
        "block": 1,
    }
    advice = Finding("ast", "RD104", "`.show` is not called", 1, 1, fix="call it")
    assert format_findings([finding, advice]).split("\n") == [
        "line 1: RD104 `.show` is not called (warning); fix: call it",
        "block 2, line 3: F821 Undefined name `pd`",
    ]


def test_a_cell_with_magics_is_checked_without_parse_errors() -> None:
    cell = (
        "%matplotlib inline\nimport numpy as np\nfiles = !ls\n"
        "%time total = np.arange(10).sum()\nprint(total, files, undefined_thing)\nnp.sum?\n"
    )
    findings = analyze_python(cell)
    assert _codes(findings) == [(5, "F821")]  # `total` and `files` came from masked lines


def test_cell_mode_allows_top_level_await_and_treats_unused_imports_as_advice() -> None:
    cell = "import asyncio\nimport os\nawait asyncio.sleep(0)\n"
    as_cell = analyze_python(cell)
    assert [(f.code, f.severity) for f in as_cell] == [("F401", "info")]
    as_file = analyze_python(cell, filename="job.py", cell=False)
    assert {(f.line, f.code, f.severity) for f in as_file} >= {
        (2, "F401", "warning"),
        (3, "F704", "error"),  # await outside a function
    }


def test_syntax_error_is_reported_alone_with_its_position() -> None:
    (finding,) = analyze_python("values = [1, 2,\nprint(values)\n")
    assert (finding.source, finding.code, finding.severity) == ("syntax", "SyntaxError", "error")
    assert finding.message == "'[' was never closed"
    assert (finding.line, finding.col) == (1, 10)

    (indent,) = analyze_python("def f():\n    x = 1\n      y = 2\n")
    assert (indent.code, indent.line, indent.message) == (
        "IndentationError",
        3,
        "unexpected indent",
    )


def test_review_rules_that_matter_are_on() -> None:
    branches = "\n".join(f"    if x == {i}:\n        return {i}" for i in range(11))
    source = (
        "import numpy as np\n"
        "def collect(item, bucket=[]):\n"  # 2: B006
        "    bucket.append(item)\n"
        "    return bucket\n"
        "try:\n"
        "    value = np.float_(3)\n"  # 6: NPY201
        "except:\n"  # 7: E722
        "    value = None\n"
        "missing = value == np.nan\n"  # 9: PLW0177
        "list = [1, 2]\n"  # 10: A001
        f"def branchy(x):\n{branches}\n"  # 11: C901
    )
    findings = analyze_python(source, filename="module.py", cell=False)
    found = {(f.line, f.code): f.severity for f in findings}
    assert found[(2, "B006")] == "warning"
    assert found[(6, "NPY201")] == "warning"
    assert found[(7, "E722")] == "warning"
    assert found[(9, "PLW0177")] == "warning"
    assert found[(10, "A001")] == "warning"
    assert found[(11, "C901")] == "info"
    b006 = _by_code(findings, "B006")[0]
    assert b006.fix and "None" in b006.fix  # ruff's fix title travels with the finding


def test_notebook_pitfalls_found_by_our_own_checks() -> None:
    cell = "\n".join(
        [
            "df = df.dropna(inplace=True)",  # 1: RD102 error
            "clean = df.fillna(0, inplace=True).reset_index()",  # 2: RD102 error
            "df[df.price > 10]['flag'] = True",  # 3: RD101
            "df.loc[0]['flag'] = False",  # 4: RD101
            "grid[0][1] = 3",  # 5: a list of lists: fine
            "config['db']['host'] = 'x'",  # 6: nested dicts: fine
            "rows = rows.sort()",  # 7: RD103
            "model.eval",  # 8: RD104 (and no duplicate B018)
            "df.shape",  # 9: the cell's displayed value: fine
        ]
    )
    findings = analyze_python(cell, known_names={"df", "grid", "config", "rows", "model"})
    assert _codes(findings) == [
        (1, "RD102"),
        (2, "RD102"),
        (3, "RD101"),
        (4, "RD101"),
        (7, "RD103"),
        (8, "RD104"),
    ]
    assert [f.severity for f in findings[:2]] == ["error", "error"]
    assert "df.loc[rows, cols]" in (findings[2].fix or "")


def test_user_ruff_configuration_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.ruff.lint]\nselect = ["E501"]\n')
    (tmp_path / "ruff.toml").write_text('[lint]\nignore = ["F821"]\n')
    monkeypatch.chdir(tmp_path)
    findings = analyze_python("print(nope)\n", filename=str(tmp_path / "cell.py"))
    assert _codes(findings) == [(1, "F821")]


def _fake_ruff(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-ruff"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def _unavailable(findings: list[Finding]) -> list[Finding]:
    return _by_code(findings, "ruff-unavailable")


def test_missing_ruff_falls_back_to_parser_and_own_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(static, "_ruff_binary", lambda: "/nonexistent/bin/ruff")
    findings = analyze_python("df = df.dropna(inplace=True)\nprint(nope)\n")
    (note,) = _unavailable(findings)
    assert note.severity == "info" and "ruff could not start" in note.message
    assert set(_codes(findings)) == {(1, "ruff-unavailable"), (1, "RD102")}
    (syntax,) = analyze_python("x = (\n")  # the parser still runs
    assert syntax.source == "syntax"


def test_hanging_ruff_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(static, "_ruff_binary", lambda: _fake_ruff(tmp_path, "exec sleep 30"))
    findings = analyze_python("x = 1\n", timeout=0.5)
    (note,) = _unavailable(findings)
    assert "took over 0.5s" in note.message


def test_broken_ruff_output_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(static, "_ruff_binary", lambda: _fake_ruff(tmp_path, "echo '{oops'"))
    (note,) = _unavailable(analyze_python("x = 1\n"))
    assert "not JSON" in note.message
    crash = _fake_ruff(tmp_path, "echo 'error: something broke' >&2; exit 2")
    monkeypatch.setattr(static, "_ruff_binary", lambda: crash)
    (note,) = _unavailable(analyze_python("x = 1\n"))
    assert "something broke" in note.message


def test_ruff_without_a_selected_rule_is_retried_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = static._ruff_binary()
    older = _fake_ruff(
        tmp_path,
        'case "$*" in *PLW0177*) echo "ruff failed" >&2; '
        'echo "  Cause: Unknown rule selector \\`PLW0177\\` in \\`select\\`" >&2; exit 2;; esac\n'
        f'exec "{real}" "$@"',
    )
    monkeypatch.setattr(static, "_ruff_binary", lambda: older)
    findings = analyze_python("import numpy as np\nx = y == np.nan\n")
    assert _codes(findings) == [(2, "F821")]  # no PLW0177, and no "unavailable" note


def test_defined_names_are_top_level_bindings() -> None:
    cell = (
        "import numpy as np\nfrom os import path as p\nfiles = !ls\nfor i, row in enumerate(x):\n"
        "    pass\ndef f(a):\n    inner = 1\nclass C: pass\nsquares = [k * k for k in x]\n"
        "if (n := 3):\n    pass\n"
    )
    assert defined_names(cell) == {"np", "p", "files", "i", "row", "f", "C", "squares", "n"}


def _notebook_cells(name: str) -> list[str]:
    notebook = nbformat.read(PDSH / name, as_version=4)
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


@pytest.mark.skipif(not PDSH.is_dir(), reason="pdsh corpus not checked out")
@pytest.mark.parametrize(
    "name",
    [
        "01.06-Errors-and-Debugging.ipynb",
        "01.07-Timing-and-Profiling.ipynb",
        "03.02-Data-Indexing-and-Selection.ipynb",
        "03.05-Hierarchical-Indexing.ipynb",
    ],
)
def test_real_notebooks_cell_by_cell(name: str) -> None:
    """Each cell checked alone with the names of the cells above it, like the review of a
    running notebook: syntax errors exactly where IPython itself refuses the cell, and no
    undefined names in a notebook that runs top to bottom."""
    transformer = TransformerManager()
    known: set[str] = set()
    refused = reported = 0
    for source in _notebook_cells(name):
        findings = analyze_python(source, known_names=known)
        try:
            compile(transformer.transform_cell(source), "<cell>", "exec")
        except SyntaxError:
            refused += 1
        syntax = [f for f in findings if f.source == "syntax"]
        reported += len(syntax)
        assert not _by_code(findings, "F821"), (source, findings)
        assert not _unavailable(findings)
        known |= defined_names(source)
    assert reported == refused
    if name.startswith("03.05"):
        assert refused == 1  # the notebook shows an invalid slice on purpose


def test_runs_on_this_python_version() -> None:
    # ruff's target version follows the running Python, so its syntax matches the parser's
    source = "match command:\n    case [x]:\n        print(x)\n"
    assert analyze_python(source, known_names={"command"}) == []
    assert sys.version_info >= (3, 10)
