"""Notebook-cell preparation: IPython syntax masked line for line, and Python code blocks
found in markdown. The corpus test uses IPython's own input transformer as the judge of
what a valid cell is, over every code cell of the pdsh notebooks (read in place)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from rubberduck_jupyter.review.cells import extract_code_blocks, mask_magics, parse_cell


def _pdsh_dir() -> Path | None:
    candidates = (
        Path(__file__).resolve().parents[3] / "shared" / "corpora" / "pdsh",
        Path("/work/shared/corpora/pdsh"),
    )
    return next((c for c in candidates if c.is_dir() and any(c.glob("*.ipynb"))), None)


PDSH = _pdsh_dir()
needs_pdsh = pytest.mark.skipif(PDSH is None, reason="pdsh corpus not checked out")


def test_line_magics_shell_and_help_become_neutral_python_on_the_same_lines() -> None:
    source = "\n".join(
        [
            "%matplotlib inline",  # 1
            "import numpy as np",  # 2
            "!pip install seaborn",  # 3
            "files = !ls *.csv",  # 4
            "%time total = np.arange(10).sum()",  # 5
            "%timeit -n 3 -r 2 np.sort(files)",  # 6
            "result = %timeit -o np.arange(3)",  # 7
            "for name in files:",  # 8
            "    !wc -l {name}",  # 9
            "np.sum?",  # 10
            "??np.mean",  # 11
            "%ls \\",  # 12
            "   -la",  # 13
            "print(total)  # what?",  # 14
        ]
    )
    masked = mask_magics(source)
    lines = masked.source.split("\n")
    assert len(lines) == len(source.split("\n"))
    assert masked.masked_lines == (1, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13)
    assert lines[0] == "pass"
    assert lines[3] == "files = ..."  # `files` stays defined for line 8
    assert lines[4] == "total = np.arange(10).sum()"  # timing magics keep their statement
    assert lines[5] == "np.sort(files)"
    assert lines[6] == "result = ..."
    assert lines[8] == "    pass"  # the loop keeps a body
    assert lines[12] == ""  # continuation of a masked magic
    assert lines[13] == "print(total)  # what?"  # a `?` in a comment is not help
    assert masked.cell_magic is None and masked.is_python
    parse_cell(source)  # parses


def test_magic_lookalikes_inside_strings_and_brackets_are_left_alone() -> None:
    source = 'doc = """\n!not a command\n%not a magic\nwhy?\n"""\nratio = (10\n  % 3)\n'
    masked = mask_magics(source)
    assert masked.source == source
    assert masked.masked_lines == ()


def test_python_cell_magics_keep_their_body_and_others_are_blanked() -> None:
    timeit = mask_magics("%%timeit -n 5 data = list(range(100))\nsorted(data)\n")
    assert timeit.cell_magic == "timeit" and timeit.is_python
    assert timeit.source == "data = list(range(100))\nsorted(data)\n"  # the setup statement

    capture = mask_magics("\n%%capture out\nprint(1)")
    assert capture.source == "\n\nprint(1)" and capture.masked_lines == (2,)

    bash = mask_magics("%%bash\nfor f in *.csv; do\n  wc -l $f\ndone")
    assert bash.cell_magic == "bash" and not bash.is_python
    assert bash.source == "\n\n\n" and bash.masked_lines == (1, 2, 3, 4)


@needs_pdsh
def test_every_pdsh_cell_ipython_accepts_parses_once_masked() -> None:
    """IPython's own transformer decides which cells are valid; each of those must parse
    after masking, with its line count unchanged."""
    assert PDSH is not None
    transformer = TransformerManager()
    n_cells = n_with_magics = 0
    for path in sorted(PDSH.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type != "code":
                continue
            masked = mask_magics(cell.source)
            assert masked.source.count("\n") == cell.source.count("\n"), path.name
            try:
                compile(transformer.transform_cell(cell.source), "<cell>", "exec")
            except SyntaxError:
                continue
            n_cells += 1
            n_with_magics += bool(masked.masked_lines)
            if masked.is_python:
                parse_cell(cell.source)
    print(f"\n{n_cells} valid pdsh cells parsed after masking, {n_with_magics} with magics")
    assert n_cells > 1000 and n_with_magics > 50


def test_code_blocks_python_tagged_and_untagged_python_only() -> None:
    markdown = "\n".join(
        [
            "Here is the fix:",  # 1
            "```python",  # 2
            "import pandas as pd",  # 3
            "df = pd.read_csv('x.csv')",  # 4
            "```",  # 5
            "Install it first:",  # 6
            "```",  # 7
            "pip install pandas",  # 8
            "```",  # 9
            "```bash",  # 10
            "ls -l",  # 11
            "```",  # 12
            "1. Then run:",  # 13
            "   ```",  # 14
            "   total = df['a'].sum()",  # 15
            "   %time df.describe()",  # 16
            "   ```",  # 17
            "~~~py",  # 18
            "print(total)",  # 19
        ]
    )  # the last fence is never closed: it runs to the end
    blocks = extract_code_blocks(markdown)
    assert [(b.lang, b.index, b.start_line) for b in blocks] == [
        ("python", 0, 3),
        ("", 3, 15),
        ("py", 4, 19),
    ]
    assert blocks[0].code == "import pandas as pd\ndf = pd.read_csv('x.csv')"
    assert blocks[1].code == "total = df['a'].sum()\n%time df.describe()"  # list indent removed
    everything = extract_code_blocks(markdown, python_only=False)
    assert [b.lang for b in everything] == ["python", "", "bash", "", "py"]


def test_fence_with_longer_closing_and_inner_backticks() -> None:
    markdown = "````python\nx = '```'\n```\ny = 2\n````\nafter"
    (block,) = extract_code_blocks(markdown)
    assert block.code == "x = '```'\n```\ny = 2"  # a shorter fence does not close it
