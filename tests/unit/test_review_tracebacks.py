"""Traceback parsing and diagnoses on genuine tracebacks: printed by `python -c` and by a
script in a subprocess, by IPython's own shell with colours on (in process, so each cell
gets its `Cell In[n]` header), and by the `ipython` command in plain mode."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rubberduck_jupyter.review.cells import parse_cell
from rubberduck_jupyter.review.tracebacks import (
    ParsedError,
    explain_error,
    parse_traceback,
    strip_ansi,
)

RunCell = Callable[..., str]


@pytest.fixture(scope="module")
def ipython(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunCell]:
    """Runs a cell in a real IPython shell and returns the traceback text it printed."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
        config = Config()
        config.HistoryManager.enabled = False
        shell = InteractiveShell.instance(config=config, colors="linux")

        def run(code: str, *, fails: bool = True) -> str:
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                result = shell.run_cell(code, store_history=True)
            assert result.success is not fails, out.getvalue()
            return out.getvalue()

        yield run
        InteractiveShell.clear_instance()


def _python(code: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=60
    )
    assert done.returncode != 0
    return done.stderr


def _parse(text: str) -> ParsedError:
    parsed = parse_traceback(text)
    assert parsed is not None, text
    return parsed


# ---- parsing --------------------------------------------------------------------------------


def test_python_traceback_through_a_user_module_and_the_standard_library(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text(
        "import json\n\n\ndef load(text):\n    return json.loads(text)\n"
    )
    text = _python("import helpers\nhelpers.load('')", cwd=tmp_path)
    parsed = _parse(text)
    assert parsed.exc_type == "json.decoder.JSONDecodeError"
    assert parsed.short_type == "JSONDecodeError"
    assert parsed.message == "Expecting value: line 1 column 1 (char 0)"
    assert parsed.style == "python"
    first, second, *library = parsed.frames
    assert (first.file, first.line, first.function, first.is_user) == ("<string>", 2, None, True)
    assert second.file == str(tmp_path / "helpers.py")
    assert (second.line, second.function, second.code) == (5, "load", "return json.loads(text)")
    assert library and all(not frame.is_user for frame in library)
    assert all(frame.file and frame.file.endswith(".py") for frame in library)
    assert parsed.user_frame == second  # the innermost frame of the user's own code
    assert second.location == f"line 5 of {tmp_path / 'helpers.py'}, in load"


def test_python_syntax_error_has_the_caret_column() -> None:
    parsed = _parse(_python("total = (1 +\nprint(total)"))
    assert (parsed.exc_type, parsed.message) == ("SyntaxError", "'(' was never closed")
    (frame,) = parsed.frames
    assert (frame.line, frame.code, frame.col) == (1, "total = (1 +", 9)


def test_chained_exceptions_keep_the_last_as_the_error() -> None:
    code = (
        "try:\n    {}['a']\nexcept KeyError as error:\n    raise ValueError('bad input') from error"
    )
    parsed = _parse(_python(code))
    assert (parsed.exc_type, parsed.message) == ("ValueError", "bad input")
    assert parsed.causes == [("KeyError", "'a'")]
    assert [frame.line for frame in parsed.frames] == [4]


def test_ipython_colour_traceback(ipython: RunCell) -> None:
    ipython("def ratio(a, b):\n    return a / b", fails=False)
    text = ipython("values = [3, 0]\nratio(*values)")
    assert "\x1b[" in text  # colours were on
    parsed = _parse(text)
    assert (parsed.exc_type, parsed.message, parsed.style) == (
        "ZeroDivisionError",
        "division by zero",
        "ipython",
    )
    outer, inner = parsed.frames
    assert (outer.cell, outer.line, outer.function, outer.code) == (
        outer.cell,
        2,
        None,
        "ratio(*values)",
    )
    assert inner.cell == outer.cell - 1  # defined in the previous cell
    assert (inner.line, inner.function, inner.code) == (2, "ratio", "return a / b")
    assert parsed.user_frame == inner
    assert inner.location == f"line 2 of cell [{inner.cell}], in ratio"


def test_ipython_library_frames_use_the_file_colon_line_form(ipython: RunCell) -> None:
    parsed = _parse(ipython("import json\njson.loads('{bad')"))
    assert parsed.short_type == "JSONDecodeError"
    assert parsed.frames[0].cell is not None and parsed.frames[0].line == 2
    library = parsed.frames[1:]
    assert library and all(f.file and "json" in f.file and f.line for f in library)
    assert all(not frame.is_user for frame in library)
    assert library[0].function == "loads"
    assert parsed.user_frame == parsed.frames[0]


def test_ipython_syntax_error_in_a_cell(ipython: RunCell) -> None:
    parsed = _parse(ipython("for i in range(3)\n    print(i)"))
    assert (parsed.exc_type, parsed.message) == ("SyntaxError", "expected ':'")
    frame = parsed.user_frame
    assert frame is not None and frame.cell is not None
    assert (frame.line, frame.code, frame.col) == (1, "for i in range(3)", 18)


def test_ipython_command_in_plain_mode(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("def ratio(a, b):\n    return a / b\n")
    (tmp_path / "ipython").mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "IPython",
            "--colors=nocolor",
            f"--ipython-dir={tmp_path / 'ipython'}",
            "--HistoryManager.enabled=False",
            "-c",
            "%xmode Plain\nimport helpers\nhelpers.ratio(1, 0)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    parsed = _parse(done.stdout + done.stderr)
    cell_frame, file_frame = parsed.frames
    assert (cell_frame.line, cell_frame.code) == (3, "helpers.ratio(1, 0)")
    assert file_frame.file == str(tmp_path / "helpers.py")
    assert (file_frame.line, file_frame.function, file_frame.code) == (2, "ratio", "return a / b")


def test_older_ipython_headers() -> None:
    # IPython 7 named cells `<ipython-input-N-hash>`; 8.0-8.4 wrote `Input In [N]`.
    ipython7 = (
        "---------------------------------------------------------------------------\n"
        "NameError                                 Traceback (most recent call last)\n"
        "<ipython-input-4-0f2a5c1b9d3e> in <module>\n"
        "      1 x = 1\n"
        "----> 2 print(y)\n\n"
        "NameError: name 'y' is not defined\n"
    )
    parsed = _parse(ipython7)
    (frame,) = parsed.frames
    assert (frame.cell, frame.line, frame.code, frame.function) == (4, 2, "print(y)", None)
    ipython8 = (
        "Input In [7], in <cell line: 3>()\n"
        "      1 import math\n"
        "----> 3 math.sqrt(-1)\n\n"
        "ValueError: math domain error\n"
    )
    (frame,) = _parse(ipython8).frames
    assert (frame.cell, frame.line, frame.function) == (7, 3, None)


def test_output_printed_before_the_traceback_is_not_taken_for_the_error() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "print('RuntimeWarning: low memory')\nvalues = []\nvalues[0]"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    assert done.stdout.startswith("RuntimeWarning: low memory\n")
    parsed = _parse(done.stdout)
    assert (parsed.exc_type, parsed.message) == ("IndexError", "list index out of range")
    assert [frame.line for frame in parsed.frames] == [3]


def test_interrupt_gets_its_own_advice() -> None:
    parsed = _parse(_python("raise KeyboardInterrupt"))
    assert explain_error(parsed).likely_cause.startswith("The run was interrupted")


def test_text_without_an_exception_is_not_a_traceback() -> None:
    assert parse_traceback("") is None
    assert parse_traceback("Note: the model was saved\nall good") is None
    assert parse_traceback('Traceback (most recent call last):\n  File "x.py", line 1') is None
    assert strip_ansi("\x1b[91mKeyError\x1b[39m: 'a'") == "KeyError: 'a'"


# ---- diagnoses --------------------------------------------------------------------------------


def _diagnose(ipython: RunCell, cell: str, known: set[str] | None = None):
    parsed = _parse(ipython(cell))
    return parsed, explain_error(parsed, cell, known or set())


def test_name_error_misspelling_gets_the_closest_name_and_a_corrected_cell(
    ipython: RunCell,
) -> None:
    cell = "measurements = [3, 4]\ntotal = sum(measurment)\nprint(measurment, 'measurment')"
    _, diagnosis = _diagnose(ipython, cell)
    assert "measurements" in diagnosis.likely_cause
    assert diagnosis.suggestions[0] == "Did you mean `measurements`?"
    # every use renamed, the string literal left alone
    assert diagnosis.fix_code == (
        "measurements = [3, 4]\ntotal = sum(measurements)\nprint(measurements, 'measurment')"
    )


def test_name_error_for_a_kernel_variable_and_for_a_common_alias(ipython: RunCell) -> None:
    _, typo = _diagnose(ipython, "sales_df.head()", known={"sales_data", "other"})
    assert typo.suggestions[0] == "Did you mean `sales_data`?"
    assert typo.fix_code == "sales_data.head()"
    _, alias = _diagnose(ipython, "frame = pd.DataFrame({'a': [1]})")
    assert "import pandas as pd" in alias.suggestions[0]
    assert alias.fix_code == "import pandas as pd\nframe = pd.DataFrame({'a': [1]})"
    assert parse_cell(alias.fix_code)


def test_name_error_used_before_assignment_and_never_defined(ipython: RunCell) -> None:
    _, late = _diagnose(ipython, "print(threshold)\nthreshold = 0.5")
    assert "assigned on line 2" in late.likely_cause and "line 1" in late.likely_cause
    _, unknown = _diagnose(ipython, "print(model_results_zz)")
    assert "has not been run" in unknown.likely_cause
    assert any("run that cell first" in s for s in unknown.suggestions)
    assert unknown.fix_code is None


def test_unbound_local_error(ipython: RunCell) -> None:
    _, diagnosis = _diagnose(ipython, "count = 0\ndef bump():\n    count += 1\nbump()")
    assert "`count` is assigned somewhere inside the function" in diagnosis.likely_cause
    assert any("global count" in s for s in diagnosis.suggestions)


@pytest.mark.skipif(importlib.util.find_spec("cv2") is not None, reason="cv2 is installed")
def test_module_not_found_maps_the_import_name_to_the_package(ipython: RunCell) -> None:
    parsed, diagnosis = _diagnose(ipython, "import cv2")
    assert parsed.short_type == "ModuleNotFoundError"
    assert diagnosis.fix_code == "%pip install opencv-python"
    assert "opencv-python" in diagnosis.likely_cause


def test_module_not_found_for_an_unknown_package_and_a_missing_submodule(
    ipython: RunCell,
) -> None:
    _, missing = _diagnose(ipython, "import surely_not_installed_pkg")
    assert missing.fix_code == "%pip install surely_not_installed_pkg"
    assert "%pip` installs into the environment of this kernel" in missing.suggestions[0]
    _, submodule = _diagnose(ipython, "import numpy.no_such_part")
    assert "`numpy` is installed but has no submodule" in submodule.likely_cause
    assert submodule.fix_code is None  # installing numpy again would not help


def test_key_error_close_key_and_corrected_cell(ipython: RunCell) -> None:
    cell = "prices = {'Price': 3, 'volume': 10}\nprices['price'] * prices['volume']"
    _, diagnosis = _diagnose(ipython, cell)
    assert diagnosis.suggestions[0] == "Did you mean 'Price'?"
    assert (
        diagnosis.fix_code
        == "prices = {'Price': 3, 'volume': 10}\nprices['Price'] * prices['volume']"
    )


def test_attribute_error_on_a_dataframe_like_object(ipython: RunCell) -> None:
    cell = "class DataFrame:\n    columns = ['a']\nframe = DataFrame()\nframe.colums"
    _, diagnosis = _diagnose(ipython, cell)
    assert diagnosis.suggestions[0] == "Did you mean `.columns`?"
    assert diagnosis.fix_code is not None and diagnosis.fix_code.endswith("frame.columns")
    removed = "class DataFrame:\n    pass\nframe = DataFrame()\nframe.append([1])"
    _, diagnosis = _diagnose(ipython, removed)
    assert "removed from pandas" in diagnosis.likely_cause
    assert "pd.concat" in diagnosis.suggestions[0]


def test_attribute_error_for_a_removed_numpy_alias(ipython: RunCell) -> None:
    cell = "import numpy as np\nweights = np.ones(3, dtype=np.float)"
    parsed, diagnosis = _diagnose(ipython, cell)
    assert parsed.message.startswith("module 'numpy' has no attribute 'float'")
    assert diagnosis.fix_code == "import numpy as np\nweights = np.ones(3, dtype=float)"


def test_attribute_error_on_none_points_at_the_inplace_assignment(ipython: RunCell) -> None:
    cell = textwrap.dedent(
        """\
        class Table:
            def dropna(self, inplace=False):
                return None if inplace else self
            def head(self):
                return self
        table = Table()
        table = table.dropna(inplace=True)
        table.head()"""
    )
    _, diagnosis = _diagnose(ipython, cell)
    assert "is None" in diagnosis.likely_cause
    assert diagnosis.suggestions[0].startswith("Line 7: `dropna(..., inplace=True)` returns None")


def test_type_errors(ipython: RunCell) -> None:
    _, shadowed = _diagnose(ipython, "list = [1, 2]\nlist((3, 4))")
    assert "builtin `list` is shadowed" in shadowed.likely_cause
    _, operands = _diagnose(ipython, "count = '3'\ncount + 1")
    assert "cannot be combined" in operands.likely_cause or "joined" in operands.likely_cause
    _, method = _diagnose(ipython, "class A:\n    def run():\n        pass\nA().run()")
    assert "`self` is usually missing" in method.likely_cause


def test_value_and_index_errors(ipython: RunCell) -> None:
    _, conversion = _diagnose(ipython, "float('1,234')")
    assert "pd.to_numeric" in conversion.suggestions[0]
    _, unpack = _diagnose(ipython, "a, b = [1, 2, 3]")
    assert "number of names" in unpack.likely_cause
    _, listed = _diagnose(ipython, "items = [1, 2]\nitems[2]")
    assert "past the end" in listed.likely_cause
    _, array = _diagnose(ipython, "import numpy as np\nnp.zeros(3)[5]")
    assert "numpy index" in array.likely_cause


def test_zero_division_and_file_not_found(ipython: RunCell) -> None:
    parsed, zero = _diagnose(ipython, "n = 0\nmean = 10 / n")
    assert (
        zero.summary
        == f"ZeroDivisionError at line 2 of cell [{parsed.frames[0].cell}]: division by zero"
    )
    assert "Guard the denominator" in zero.suggestions[0]
    _, missing = _diagnose(ipython, "open('~/data/raw.csv')")
    assert "`~` is not expanded" in missing.likely_cause
    assert (
        missing.fix_code == "from pathlib import Path\npath = Path('~/data/raw.csv').expanduser()"
    )
    _, relative = _diagnose(ipython, "open('data/missing.csv')")
    assert "working directory" in relative.suggestions[0]


def test_syntax_errors_get_a_verified_repair(ipython: RunCell) -> None:
    _, colon = _diagnose(ipython, "for i in range(3)\n    print(i)")
    assert colon.fix_code == "for i in range(3):\n    print(i)"
    assert "for i in range(3)\n" in colon.summary and "^" in colon.summary
    _, indent = _diagnose(ipython, "def f():\n    x = 1\n      return x")
    assert indent.fix_code == "def f():\n    x = 1\n    return x"
    _, printed = _diagnose(ipython, "print 'hello'")
    assert printed.fix_code == "print('hello')"
    parsed = _parse(_python("values = [1, 2,\nprint(values)"))
    closed = explain_error(parsed, "values = [1, 2,\nprint(values)", set())
    assert closed.fix_code == "values = [1, 2,]\nprint(values)"


def test_shell_syntax_in_a_script_is_explained() -> None:
    parsed = _parse(_python("!pip install pandas"))
    diagnosis = explain_error(parsed, None, set())
    assert "IPython syntax" in diagnosis.likely_cause


def test_library_error_points_back_at_the_user_call(ipython: RunCell) -> None:
    parsed, diagnosis = _diagnose(ipython, "import json\nconfig = json.loads('{bad')")
    assert diagnosis.likely_cause.startswith("The text is not JSON")
    generic = explain_error(
        ParsedError("CustomError", "it broke", parsed.frames, parsed.user_frame, "ipython"),
        None,
        set(),
    )
    assert "raised inside a library" in generic.suggestions[1]
    assert "config = json.loads('{bad')" in generic.suggestions[1]


def test_a_cell_that_does_not_match_the_traceback_is_not_used(ipython: RunCell) -> None:
    parsed = _parse(ipython("data = [1]\nprint(dta)"))
    diagnosis = explain_error(parsed, "something = 1\nelse_entirely = 2", {"data"})
    assert diagnosis.suggestions[0] == "Did you mean `data`?"
    assert diagnosis.fix_code is None  # no rewrite of a cell the error is not about
