"""Advice for the errors people hit in notebooks, without a model.

Each handler reads the exception's message (and, when given, the failing cell and the
kernel's names) and says what most likely happened and what to do, concretely: the
closest existing name, the `%pip install` line with the right package name, the
replacement for a removed numpy/pandas API. `fix_code` is a corrected cell when the fix is
mechanical and the result parses (or a line to run, such as an import or `%pip install`).
"""

from __future__ import annotations

import ast
import builtins
import difflib
import io
import re
import tokenize
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .cells import parse_cell
from .static import notebook_checks

if TYPE_CHECKING:
    from .parsed_error import ParsedError


@dataclass(frozen=True, slots=True)
class StaticDiagnosis:
    summary: str
    likely_cause: str
    suggestions: list[str] = field(default_factory=list)
    fix_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "likely_cause": self.likely_cause,
            "suggestions": list(self.suggestions),
            "fix_code": self.fix_code,
        }


# Import name -> the PyPI distribution that provides it, where they differ.
PIP_PACKAGES: dict[str, str] = {
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "skimage": "scikit-image",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "docx": "python-docx",
    "pptx": "python-pptx",
    "Crypto": "pycryptodome",
    "jwt": "PyJWT",
    "serial": "pyserial",
    "git": "GitPython",
    "zmq": "pyzmq",
    "fitz": "pymupdf",
    "umap": "umap-learn",
    "Bio": "biopython",
    "MySQLdb": "mysqlclient",
    "psycopg2": "psycopg2-binary",
    "attr": "attrs",
    "magic": "python-magic",
    "slugify": "python-slugify",
    "osgeo": "GDAL",
    "gi": "PyGObject",
    "wx": "wxPython",
    "community": "python-louvain",
}

# Conventional aliases -> the import that defines them.
COMMON_IMPORTS: dict[str, str] = {
    "pd": "import pandas as pd",
    "np": "import numpy as np",
    "plt": "import matplotlib.pyplot as plt",
    "mpl": "import matplotlib as mpl",
    "sns": "import seaborn as sns",
    "px": "import plotly.express as px",
    "go": "import plotly.graph_objects as go",
    "tf": "import tensorflow as tf",
    "torch": "import torch",
    "nn": "from torch import nn",
    "sm": "import statsmodels.api as sm",
    "stats": "from scipy import stats",
    "scipy": "import scipy",
    "sp": "import scipy as sp",
    "os": "import os",
    "sys": "import sys",
    "re": "import re",
    "json": "import json",
    "math": "import math",
    "random": "import random",
    "time": "import time",
    "datetime": "import datetime",
    "itertools": "import itertools",
    "collections": "import collections",
    "Path": "from pathlib import Path",
    "defaultdict": "from collections import defaultdict",
    "Counter": "from collections import Counter",
    "namedtuple": "from collections import namedtuple",
    "dataclass": "from dataclasses import dataclass",
    "partial": "from functools import partial",
    "reduce": "from functools import reduce",
    "glob": "import glob",
    "pickle": "import pickle",
    "csv": "import csv",
    "tqdm": "from tqdm import tqdm",
}

# numpy names removed in 1.24 (the builtin aliases) and 2.0 -> what to write instead.
NUMPY_REMOVED: dict[str, str] = {
    "float": "float",
    "int": "int",
    "bool": "bool",
    "object": "object",
    "str": "str",
    "complex": "complex",
    "long": "int",
    "unicode": "str",
    "float_": "np.float64",
    "complex_": "np.complex128",
    "string_": "np.bytes_",
    "unicode_": "np.str_",
    "NaN": "np.nan",
    "NAN": "np.nan",
    "Inf": "np.inf",
    "Infinity": "np.inf",
    "infty": "np.inf",
    "PINF": "np.inf",
    "NINF": "-np.inf",
    "product": "np.prod",
    "cumproduct": "np.cumprod",
    "alltrue": "np.all",
    "sometrue": "np.any",
    "round_": "np.round",
    "trapz": "np.trapezoid",
    "in1d": "np.isin",
    "row_stack": "np.vstack",
    "asfarray": "np.asarray(..., dtype=float)",
}

# pandas methods removed in 1.x/2.0 -> the replacement.
PANDAS_REMOVED: dict[str, str] = {
    "append": "pd.concat([df, other], ignore_index=True)",
    "iteritems": ".items()",
    "ix": ".loc[...] (labels) or .iloc[...] (positions)",
    "as_matrix": ".to_numpy()",
    "get_value": ".at[row, col]",
    "set_value": ".at[row, col] = value",
    "sort": ".sort_values(...)",
    "is_monotonic": ".is_monotonic_increasing",
    "mad": "(s - s.mean()).abs().mean()",
    "swapaxes": ".transpose()",
}

PANDAS_TYPES = frozenset({"DataFrame", "Series", "DataFrameGroupBy", "SeriesGroupBy", "Index"})
# The DataFrame/Series API people reach for most: candidates for a misspelt attribute.
PANDAS_ATTRIBUTES = frozenset(
    "columns index shape dtypes values head tail describe info groupby merge join "
    "sort_values sort_index reset_index set_index drop dropna fillna isna notna apply map "
    "agg aggregate pivot_table melt loc iloc at iat astype to_csv to_numpy to_dict "
    "value_counts unique nunique mean median sum count min max std rename copy query "
    "assign plot hist corr sample duplicated drop_duplicates iterrows itertuples items "
    "str dt cat size empty ndim nlargest nsmallest cumsum diff shift rolling resample".split()
)


@dataclass(frozen=True, slots=True)
class _Context:
    parsed: ParsedError
    cell: str | None  # the failing cell, when it matches the user frame
    known: frozenset[str]
    line: int | None  # line of the error within `cell`
    location: str

    @property
    def message(self) -> str:
        return self.parsed.message

    @property
    def first_line(self) -> str:
        return self.parsed.message.split("\n", 1)[0]

    @property
    def from_pandas(self) -> bool:
        return any(frame.file and "pandas" in frame.file for frame in self.parsed.frames)


def _summary(ctx: _Context) -> str:
    where = f" at {ctx.location}" if ctx.location else ""
    return f"{ctx.parsed.short_type}{where}: {ctx.first_line}".rstrip(": ")


def _quoted(text: str) -> list[str]:
    return re.findall(r"'([^']*)'", text)


def _closest(word: str, candidates: Collection[str], n: int = 3) -> list[str]:
    pool = [c for c in candidates if c != word]
    exact_case = [c for c in pool if c.lower() == word.lower()]
    close = difflib.get_close_matches(word, pool, n=n, cutoff=0.7)
    return list(dict.fromkeys(exact_case + close))[:n]


def _python_hint(message: str) -> str | None:
    """CPython 3.10+'s own suggestion: `... Did you mean: 'x'?`."""
    match = re.search(r"Did you mean:? '?([\w.]+)'?\?", message)
    return match.group(1) if match else None


def _cell_tree(cell: str | None) -> ast.Module | None:
    if cell is None:
        return None
    try:
        return parse_cell(cell)
    except (SyntaxError, ValueError):
        return None


def _parses(code: str) -> bool:
    return _cell_tree(code) is not None


def _bound_names(tree: ast.Module | None) -> dict[str, int]:
    """Names a cell binds -> the first line binding each."""
    bound: dict[str, int] = {}

    def bind(name: str, line: int) -> None:
        bound.setdefault(name, line)

    if tree is None:
        return bound
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bind(node.id, node.lineno)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bind(node.name, node.lineno)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bind((alias.asname or alias.name).split(".")[0], node.lineno)
        elif isinstance(node, ast.arg):
            bind(node.arg, node.lineno)
    return bound


def _attribute_names(tree: ast.Module | None) -> set[str]:
    if tree is None:
        return set()
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}


def _string_literals(tree: ast.Module | None) -> set[str]:
    if tree is None:
        return set()
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 80
    }


def _replace_tokens(
    source: str, matches: Callable[[tokenize.TokenInfo], bool], new: str
) -> str | None:
    """`source` with every token that `matches` replaced by `new`, or None if none did."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    lines = source.split("\n")
    hits = [tok for tok in tokens if matches(tok)]
    if not hits:
        return None
    for tok in reversed(hits):  # right to left keeps earlier columns valid
        (row, start), (end_row, end) = tok.start, tok.end
        if row != end_row:
            return None
        line = lines[row - 1]
        lines[row - 1] = line[:start] + new + line[end:]
    return "\n".join(lines)


def _rename(source: str, old: str, new: str) -> str | None:
    """Rename a variable (not an attribute: `x.old` stays) in the cell."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    after_dot = {
        tokens[i + 1].start
        for i, tok in enumerate(tokens[:-1])
        if tok.type == tokenize.OP and tok.string == "."
    }
    return _replace_tokens(
        source,
        lambda tok: tok.type == tokenize.NAME and tok.string == old and tok.start not in after_dot,
        new,
    )


def _quoted_code(code: str | None) -> str:
    return f"\n    `{code}`" if code else ""


# ---- handlers ------------------------------------------------------------------------------


def _name_error(ctx: _Context) -> StaticDiagnosis:
    names = _quoted(ctx.first_line)
    if not names:
        return _generic(ctx)
    name = names[0]
    tree = _cell_tree(ctx.cell)
    bound = _bound_names(tree)
    hint = _python_hint(ctx.message)
    candidates = set(ctx.known) | set(bound) | set(dir(builtins))
    close = _closest(name, candidates)
    if hint and hint not in close:
        close.insert(0, hint)
    suggestions: list[str] = []
    fix: str | None = None
    if name in bound and ctx.line is not None and bound[name] > ctx.line:
        cause = (
            f"`{name}` is assigned on line {bound[name]} of this cell, after it is used on "
            f"line {ctx.line}."
        )
        suggestions.append(f"Move the assignment of `{name}` above line {ctx.line}.")
    elif name in COMMON_IMPORTS and name not in bound:
        cause = f"`{name}` is the usual alias of a library that this kernel has not imported."
        import_line = COMMON_IMPORTS[name]
        suggestions.append(f"Add `{import_line}` at the top of the cell (or an earlier cell).")
        fix = f"{import_line}\n{ctx.cell}" if ctx.cell is not None else import_line
    elif close:
        cause = f"`{name}` is not defined; it looks like a misspelling of `{close[0]}`."
        suggestions.append(
            f"Did you mean `{close[0]}`?"
            + (
                f" Other close names: {', '.join(f'`{c}`' for c in close[1:])}."
                if close[1:]
                else ""
            )
        )
        if ctx.cell is not None:
            fix = _rename(ctx.cell, name, close[0])
    else:
        cause = (
            f"`{name}` does not exist in the kernel: the cell that defines it has not been run "
            "in this session (or the kernel was restarted since), or it is misspelled."
        )
    suggestions.append(
        f"If `{name}` is defined in another cell, run that cell first (Run > Run All Above "
        "runs everything above this one); a restarted kernel has forgotten every variable."
    )
    return StaticDiagnosis(_summary(ctx), cause, suggestions, fix)


def _unbound_local_error(ctx: _Context) -> StaticDiagnosis:
    names = _quoted(ctx.first_line)
    name = names[0] if names else "the variable"
    cause = (
        f"`{name}` is assigned somewhere inside the function, which makes it local to the "
        "whole function; it is read before that assignment runs."
    )
    suggestions = [
        f"Pass `{name}` in as an argument (or return the new value) instead of reassigning "
        "a global.",
        f"If the function must rebind the notebook's `{name}`, declare `global {name}` at its top.",
        f"Or make sure every path assigns `{name}` before it is read (an `if` without "
        "`else` often leaves it unset).",
    ]
    return StaticDiagnosis(_summary(ctx), cause, suggestions)


def _module_not_found(ctx: _Context) -> StaticDiagnosis:
    names = _quoted(ctx.first_line)
    if not names:
        return _generic(ctx)
    module = names[0]
    top = module.split(".", 1)[0]
    package = PIP_PACKAGES.get(top, top)
    if "." in module:
        # Python names the first part that fails: the package itself was found.
        parent = module.rpartition(".")[0]
        cause = (
            f"`{parent}` is installed but has no submodule `{module}`: renamed or removed in "
            "the installed version, or a typo."
        )
        suggestions = [
            f"Check the installed version (`%pip show {PIP_PACKAGES.get(top, top)}`) and "
            f"its documentation for where `{module.rpartition('.')[2]}` lives now.",
        ]
        return StaticDiagnosis(_summary(ctx), cause, suggestions)
    install = f"%pip install {package}"
    suggestions = [
        f"Run `{install}` in a cell: `%pip` installs into the environment of this kernel "
        "(`!pip` may install into another Python).",
        "Then re-run the import; restart the kernel if an older version was already imported.",
    ]
    if package != top:
        cause = f"`{top}` is provided by the package `{package}` (the import name differs)."
    else:
        cause = f"The package providing `{top}` is not installed in this kernel's environment."
    suggestions.append(
        f"If `{top}` is your own module, make sure `{top}.py` (or the package folder) is in "
        "the notebook's folder or on `sys.path`."
    )
    return StaticDiagnosis(_summary(ctx), cause, suggestions, install)


def _import_error(ctx: _Context) -> StaticDiagnosis:
    if ctx.parsed.short_type == "ModuleNotFoundError" or "No module named" in ctx.first_line:
        return _module_not_found(ctx)
    names = _quoted(ctx.first_line)
    if "partially initialized module" in ctx.message or "circular import" in ctx.message:
        module = names[1] if len(names) > 1 else (names[0] if names else "the module")
        cause = (
            f"`{module}` was imported while it was still being imported: a circular import, "
            f"or a file of yours named `{module.split('.')[0]}.py` shadows the library."
        )
        suggestions = [
            f"Rename any local file or folder called `{module.split('.')[0]}` (and delete its "
            "`__pycache__`).",
            "Or move the import inside the function that needs it to break the cycle.",
        ]
        return StaticDiagnosis(_summary(ctx), cause, suggestions)
    if ctx.first_line.startswith("cannot import name") and len(names) >= 2:
        name, module = names[0], names[1]
        cause = f"`{module}` has no `{name}`: renamed, removed, or added in another version."
        suggestions = [
            f"Check the spelling and the installed version: `%pip show {module.split('.')[0]}`.",
            f"Search the library's changelog for `{name}`; upgrade with "
            f"`%pip install -U {PIP_PACKAGES.get(module.split('.')[0], module.split('.')[0])}` "
            "if it is newer.",
        ]
        return StaticDiagnosis(_summary(ctx), cause, suggestions)
    return _generic(ctx)


def _key_error(ctx: _Context) -> StaticDiagnosis:
    raw = ctx.first_line.strip()
    try:
        key: Any = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        key = raw
    tree = _cell_tree(ctx.cell)
    candidates = _string_literals(tree) | set(ctx.known)
    suggestions: list[str] = []
    fix: str | None = None
    if isinstance(key, str):
        close = [c for c in candidates if c != key and c.strip().lower() == key.strip().lower()]
        close += [c for c in _closest(key, candidates) if c not in close]
        if close:
            cause = f"There is no key {key!r}; {close[0]!r} is close (case, spaces or spelling)."
            suggestions.append(f"Did you mean {close[0]!r}?")
            if ctx.cell is not None and len(close) == 1:
                fix = _replace_tokens(
                    ctx.cell,
                    lambda tok: tok.type == tokenize.STRING and _literal(tok.string) == key,
                    repr(close[0]),
                )
        else:
            cause = f"The dict or DataFrame has no key/column {key!r}."
        if key != key.strip():
            suggestions.append("The key has leading/trailing spaces: the data's may not.")
        suggestions.append(
            "List what exists: `df.columns.tolist()` for a DataFrame, `list(d)` for a dict; "
            "column names often differ in case or carry spaces (`df.columns = "
            "df.columns.str.strip()`)."
        )
    elif isinstance(key, int) and ctx.from_pandas:
        cause = f"`[{key}]` on a DataFrame/Series looks up the *label* {key}, not the position."
        suggestions.append(f"Use `.iloc[{key}]` for the {key}-th row by position.")
    else:
        cause = f"The mapping has no key {raw}."
    suggestions.append("Use `d.get(key, default)` or test `key in d` when the key may be absent.")
    return StaticDiagnosis(_summary(ctx), cause, suggestions, fix)


def _literal(token: str) -> Any:
    try:
        return ast.literal_eval(token)
    except (ValueError, SyntaxError):
        return None


_NO_ATTRIBUTE = re.compile(r"^'(?P<type>[\w.]+)' object has no attribute '(?P<attr>\w+)'")
_MODULE_NO_ATTRIBUTE = re.compile(r"^module '(?P<module>[\w.]+)' has no attribute '(?P<attr>\w+)'")
_TYPE_NO_ATTRIBUTE = re.compile(r"^type object '(?P<type>[\w.]+)' has no attribute '(?P<attr>\w+)'")

_TYPE_ATTRIBUTE_ADVICE: dict[tuple[str, str], str] = {
    ("str", "decode"): "It is already text in Python 3: drop `.decode(...)`.",
    ("str", "append"): "Strings are immutable: build with `s += part` or collect parts in a "
    "list and `''.join(parts)`.",
    ("list", "shape"): "Lists have no shape: `np.array(xs).shape`, or `len(xs)`.",
    ("list", "reshape"): "Convert first: `np.array(xs).reshape(...)`.",
    ("list", "split"): "Split each element: `[s.split() for s in xs]`.",
    ("dict", "iteritems"): "Python 3: use `d.items()`.",
    ("dict", "has_key"): "Python 3: use `key in d`.",
    ("tuple", "append"): "Tuples are immutable: use a list, or `t + (item,)`.",
}


def _attribute_error(ctx: _Context) -> StaticDiagnosis:
    line = ctx.first_line
    hint = _python_hint(ctx.message)
    suggestions: list[str] = []
    fix: str | None = None
    if match := _MODULE_NO_ATTRIBUTE.match(line):
        module, attr = match["module"], match["attr"]
        if module == "numpy" and attr in NUMPY_REMOVED:
            new = NUMPY_REMOVED[attr]
            cause = f"`np.{attr}` was removed from numpy (1.24/2.0); write `{new}` instead."
            suggestions.append(f"Replace `np.{attr}` with `{new}`.")
            if ctx.cell is not None and "..." not in new:
                fix = re.sub(rf"\b(?:np|numpy)\.{attr}\b", new, ctx.cell)
                fix = fix if fix != ctx.cell else None
        elif "partially initialized" in ctx.message or "circular import" in ctx.message:
            cause = (
                f"`{module}` is being imported circularly, or a local file named "
                f"`{module.split('.')[0]}.py` shadows the real module."
            )
            suggestions.append(f"Rename any local `{module.split('.')[0]}.py` file.")
        else:
            cause = (
                f"`{module}` has no `{attr}` in the installed version (renamed, removed, a "
                "submodule that needs its own import, or a typo)."
            )
            suggestions.append(
                f"Some submodules need an explicit import: `import {module}.{attr}`."
            )
            suggestions.append(
                f"List what exists: `[n for n in dir({module.split('.')[-1]}) "
                f"if '{attr[:4]}' in n.lower()]`."
            )
        if hint:
            suggestions.insert(0, f"Did you mean `{module}.{hint}`?")
        return StaticDiagnosis(_summary(ctx), cause, suggestions, fix)

    match = _NO_ATTRIBUTE.match(line) or _TYPE_NO_ATTRIBUTE.match(line)
    if not match:
        return _generic(ctx)
    type_name, attr = match["type"], match["attr"]
    short_type = type_name.rsplit(".", 1)[-1]
    if short_type == "NoneType":
        cause = (
            f"The object whose `.{attr}` was asked for is None: a function that returns "
            "nothing, an in-place method whose result was assigned (`inplace=True`, "
            "`list.sort()`, `.append()`), or a lookup that found nothing (`re.match`, `d.get`)."
        )
        culprit = _none_culprit(ctx.cell)
        if culprit:
            suggestions.append(culprit)
        suggestions.append("Print the object before the failing line to see where it became None.")
        return StaticDiagnosis(_summary(ctx), cause, suggestions)
    if short_type in PANDAS_TYPES and attr in PANDAS_REMOVED:
        cause = f"`{short_type}.{attr}` was removed from pandas (1.x/2.0)."
        suggestions.append(f"Use {PANDAS_REMOVED[attr]} instead.")
        return StaticDiagnosis(_summary(ctx), cause, suggestions)
    if (short_type, attr) in _TYPE_ATTRIBUTE_ADVICE:
        cause = f"A `{short_type}` has no `.{attr}`."
        suggestions.append(_TYPE_ATTRIBUTE_ADVICE[(short_type, attr)])
        return StaticDiagnosis(_summary(ctx), cause, suggestions)
    close = [hint] if hint else []
    tree = _cell_tree(ctx.cell)
    candidates = _attribute_names(tree) | set(_bound_names(tree))
    if short_type in PANDAS_TYPES:
        candidates |= PANDAS_ATTRIBUTES | _string_literals(tree) | set(ctx.known)
    close += [c for c in _closest(attr, candidates) if c not in close and c.isidentifier()]
    if short_type in PANDAS_TYPES:
        cause = (
            f"The {short_type} has no method or column `{attr}` (attribute access only works "
            "for existing columns whose names are valid identifiers)."
        )
        suggestions.append(
            "Check the columns: `df.columns.tolist()`; use `df['name']` for columns."
        )
    else:
        cause = f"Objects of type `{short_type}` have no attribute `{attr}`."
        suggestions.append(
            f"Check the object's type (`type(obj)`) and what it offers (`dir(obj)`): it may "
            f"not be the `{short_type}` you expected here."
        )
    if close:
        suggestions.insert(0, f"Did you mean `.{close[0]}`?")
        if ctx.cell is not None:
            fix = _rename_attribute(ctx.cell, attr, close[0])
    return StaticDiagnosis(_summary(ctx), cause, suggestions, fix)


def _rename_attribute(source: str, old: str, new: str) -> str | None:
    if not new.isidentifier():
        return None
    replaced = re.sub(rf"\.{re.escape(old)}\b", f".{new}", source)
    return replaced if replaced != source and _parses(replaced) else None


def _none_culprit(cell: str | None) -> str | None:
    """Point at the line of the cell that assigns None through an in-place call."""
    tree = _cell_tree(cell)
    if tree is None:
        return None
    for finding in notebook_checks(tree):
        if finding.code in ("RD102", "RD103"):
            return f"Line {finding.line}: {finding.message}. Fix: {finding.fix}."
    return None


# Message pattern -> (likely cause, suggestions), first match wins.
PatternAdvice = tuple[re.Pattern[str], str, list[str]]
_TYPE_ERRORS: list[PatternAdvice] = [
    (
        re.compile(r"'NoneType' object is not (subscriptable|iterable|callable)"),
        "A value is None where a container/function was expected: a function without "
        "`return`, or an in-place method's result was assigned.",
        ["Find where the variable was last assigned; `print(type(x))` before the failing line."],
    ),
    (
        re.compile(r"unsupported operand type\(s\) for .+: '(\w+)' and '(\w+)'"),
        "The two operands have types that cannot be combined (often a number read as text).",
        [
            "Convert explicitly: `int(x)`, `float(x)`, `str(x)`, or `pd.to_numeric(df[col], "
            "errors='coerce')` for a column read as text.",
        ],
    ),
    (
        re.compile(r'can only concatenate str \(not "(\w+)"\) to str'),
        "A string is joined with a non-string.",
        ["Format instead: `f'{text}{value}'`, or `str(value)`."],
    ),
    (
        re.compile(r"'(\w+)' object is not callable"),
        "Something is called with `()` that is not a function: often a builtin (`list`, "
        "`str`, `sum`, `max`, `type`...) shadowed by a variable of the same name, or an "
        "attribute such as `df.shape` called like a method.",
        [
            "If you assigned to a builtin's name, rename your variable and run `del <name>` "
            "to get the builtin back.",
            "Attributes are used without parentheses: `df.shape`, `df.columns`.",
        ],
    ),
    (
        re.compile(r"missing (\d+) required positional argument"),
        "The function is called with fewer arguments than it requires (for a method, it "
        "may have been called on the class instead of an instance).",
        [
            "Pass every required argument; create an instance (`obj = Cls(...)`) before "
            "calling methods."
        ],
    ),
    (
        re.compile(r"takes (\d+) positional arguments? but (\d+) (were|was) given"),
        "The function receives more positional arguments than it declares; for a method, "
        "`self` is usually missing from its definition.",
        ["Add `self` as the first parameter of the method, or pass fewer arguments."],
    ),
    (
        re.compile(r"got an unexpected keyword argument '(\w+)'"),
        "The function has no parameter with that name (a typo, or another library version).",
        ["Check the signature: `help(function)` or `function?`."],
    ),
    (
        re.compile(r"unhashable type: '(\w+)'"),
        "A mutable value (list, dict, set, DataFrame) is used as a dict key or set member.",
        ["Use a tuple instead of a list (`tuple(xs)`), or a column name instead of a column."],
    ),
    (
        re.compile(r"'(\w+)' object is not iterable"),
        "A single value is used where a sequence is expected (`for i in 10`).",
        ["Loop over `range(n)`, or wrap a single value in a list."],
    ),
    (
        re.compile(r"object of type '(\w+)' has no len\(\)"),
        "`len()` is called on a value that is not a collection (None or a number).",
        ["Check what the variable holds: `type(x)`."],
    ),
    (
        re.compile(r"string indices must be integers"),
        "A string is indexed like a dict: the data is probably still JSON text, or a loop "
        "iterates over a dict's keys rather than its records.",
        ["Parse JSON first (`json.loads(text)` / `response.json()`); iterate `d.items()`."],
    ),
    (
        re.compile(r"'(\w+)' object is not subscriptable"),
        "`[...]` is used on an object that does not support indexing (a function or a "
        "generator, a number).",
        ["Call functions with `()`; convert generators with `list(...)` before indexing."],
    ),
]
_VALUE_ERRORS: list[PatternAdvice] = [
    (
        re.compile(r"could not convert string to float: (.*)"),
        "A text value that is not a number is converted to float (a header row, a "
        "thousands separator, a unit, or an empty string).",
        [
            "For a column: `pd.to_numeric(df[col], errors='coerce')` turns bad values into "
            "NaN; inspect them with `df[pd.to_numeric(df[col], errors='coerce').isna()]`.",
            "Strip separators first: `s.str.replace(',', '')`.",
        ],
    ),
    (
        re.compile(r"invalid literal for int\(\) with base \d+: (.*)"),
        "The text is not a whole number (a decimal point, spaces, or empty).",
        ["Use `int(float(text))` for decimals, or `text.strip()` first."],
    ),
    (
        re.compile(r"truth value of an? (Series|DataFrame|array).* is ambiguous"),
        "A Series/array is used where one True/False is needed (`if`, `and`, `or`).",
        [
            "Combine conditions element-wise with `&`, `|`, `~` and parentheses: "
            "`df[(df.a > 1) & (df.b < 2)]`.",
            "Reduce to one value with `.any()`, `.all()` or `.empty`.",
        ],
    ),
    (
        re.compile(r"operands could not be broadcast together with shapes (.*)"),
        "The arrays' shapes are incompatible for an element-wise operation.",
        ["Print `a.shape, b.shape`; reshape (`b[:, None]`) or transpose so dimensions line up."],
    ),
    (
        re.compile(r"(shapes .{0,300}? not aligned|matmul: Input operand .{0,300}? mismatch)"),
        "Matrix multiplication needs the inner dimensions to match.",
        ["Print the shapes; transpose one operand (`a @ b.T`)."],
    ),
    (
        re.compile(r"too many values to unpack|not enough values to unpack"),
        "The number of names on the left does not match the number of values on the right.",
        ["Print the value being unpacked; iterating a dict yields keys: use `.items()`."],
    ),
    (
        re.compile(r"Length of values \((\d+)\) does not match length of index \((\d+)\)"),
        "A new column gets a different number of values than the DataFrame has rows.",
        [
            "Build the column from the DataFrame itself (`df['b'] = df['a'] * 2`) or align "
            "on the index."
        ],
    ),
    (
        re.compile(r"Found input variables with inconsistent numbers of samples"),
        "X and y have different lengths (rows were filtered from one but not the other).",
        ["Filter X and y together (`mask = ...; X[mask], y[mask]`), then check `len(X), len(y)`."],
    ),
    (
        re.compile(r"Expected 2D array, got 1D array"),
        "scikit-learn expects a 2-D feature matrix; a single column was passed as 1-D.",
        ["Use `df[['col']]` (double brackets) or `x.reshape(-1, 1)`."],
    ),
    (
        re.compile(r"Input (X )?contains NaN|Input contains infinity"),
        "The data passed to the model has missing (or infinite) values.",
        ["`df.isna().sum()` to find them; drop (`dropna`) or impute (`SimpleImputer`)."],
    ),
    (
        re.compile(r"math domain error"),
        "A math function got an argument outside its domain (`sqrt` or `log` of a negative).",
        ["Check the input range; `np.sqrt`/`np.log` return NaN instead of raising."],
    ),
]
_INDEX_ERRORS: list[PatternAdvice] = [
    (
        re.compile(r"list index out of range|tuple index out of range"),
        "An index is at or past the end of the list (indexes run 0..len-1), or the list is empty.",
        [
            "Check `len(xs)` before indexing; `xs[-1]` is the last element; a loop should use "
            "`range(len(xs))`, not `range(len(xs) + 1)`."
        ],
    ),
    (
        re.compile(r"index (-?\d+) is out of bounds for axis (\d+) with size (\d+)"),
        "A numpy index is past the end of that axis (valid indexes are 0..size-1).",
        ["Print `arr.shape`; index with `size - 1` at most."],
    ),
    (
        re.compile(r"(single )?positional indexer is out-of-bounds"),
        "`.iloc` asks for a row/column position the DataFrame does not have (it may be empty "
        "after a filter).",
        ["Check `len(df)` / `df.shape` before `.iloc[...]`."],
    ),
    (
        re.compile(r"string index out of range"),
        "A string is indexed past its end (it may be empty).",
        ["Check `len(s)`; slices (`s[:3]`) never raise."],
    ),
]


def _pattern_advice(
    ctx: _Context, table: list[PatternAdvice], fallback_cause: str
) -> StaticDiagnosis:
    for pattern, cause, suggestions in table:
        if pattern.search(ctx.message):
            return StaticDiagnosis(_summary(ctx), cause, list(suggestions))
    return StaticDiagnosis(_summary(ctx), fallback_cause, _generic_suggestions(ctx))


def _type_error(ctx: _Context) -> StaticDiagnosis:
    callable_match = re.search(r"'(\w+)' object is not callable", ctx.message)
    if callable_match and ctx.cell is not None:
        shadowed = [
            name
            for name in _bound_names(_cell_tree(ctx.cell))
            if name in dir(builtins) and name != "_"
        ]
        if shadowed:
            return StaticDiagnosis(
                _summary(ctx),
                f"The builtin `{shadowed[0]}` is shadowed by a variable of that name in this "
                "cell, so calling it calls your value instead.",
                [
                    f"Rename the variable `{shadowed[0]}` and run `del {shadowed[0]}` to get "
                    "the builtin back."
                ],
            )
    return _pattern_advice(ctx, _TYPE_ERRORS, "An operation got a value of the wrong type.")


def _value_error(ctx: _Context) -> StaticDiagnosis:
    return _pattern_advice(
        ctx, _VALUE_ERRORS, "A function got a value of the right type but an invalid content."
    )


def _index_error(ctx: _Context) -> StaticDiagnosis:
    return _pattern_advice(ctx, _INDEX_ERRORS, "An index is outside the valid range.")


def _zero_division(ctx: _Context) -> StaticDiagnosis:
    return StaticDiagnosis(
        _summary(ctx),
        "A number is divided by zero (a count, a length or a sum that is 0 for this data).",
        [
            "Guard the denominator: `x / n if n else 0.0` (or `float('nan')`).",
            "numpy and pandas divide to `inf`/NaN instead of raising; plain Python ints and "
            "floats raise.",
        ],
    )


def _syntax_error(ctx: _Context) -> StaticDiagnosis:
    frame = ctx.parsed.user_frame or (ctx.parsed.frames[-1] if ctx.parsed.frames else None)
    code = frame.code if frame else None
    col = frame.col if frame else None
    message = ctx.first_line
    caret = ""
    if code:
        pointer = " " * (col - 1) + "^" if col else ""
        caret = f"\n    {code}\n    {pointer}".rstrip()
    suggestions: list[str] = []
    stripped = (code or "").lstrip()
    if stripped.startswith(("!", "%", "?")) or stripped.endswith("?"):
        cause = (
            "IPython syntax (`!command`, `%magic`, `obj?`) only works in notebook cells and "
            "IPython, not in a .py file or `python -c`."
        )
        suggestions.append("In a script, use `subprocess.run([...])` instead of `!command`.")
    elif "was never closed" in message or "incomplete input" in message:
        cause = "A bracket or string is opened and never closed."
        suggestions.append("Close it on the line shown, or remove the extra opening bracket.")
    elif "unterminated" in message:
        cause = "A string starts and never ends (a missing quote, or a quote inside the text)."
        suggestions.append(
            "Add the closing quote, or use the other quote type around text containing one."
        )
    elif "expected ':'" in message:
        cause = "A compound statement (`if`, `for`, `def`, `class`, `with`...) lacks its `:`."
        suggestions.append("Add `:` at the end of the line.")
    elif "Missing parentheses in call to 'print'" in message:
        cause = "Python 2 print syntax: in Python 3 `print` is a function."
        suggestions.append("Write `print(...)` with parentheses.")
    elif "Perhaps you forgot a comma" in message:
        cause = "Two values stand side by side where Python expects a separator."
        suggestions.append("Add the missing comma (in lists, calls and dicts).")
    elif "Maybe you meant '==' " in message or "cannot assign to" in message:
        cause = (
            "`=` assigns; comparisons use `==`, and only names, attributes and items can be "
            "assigned."
        )
        suggestions.append("Use `==` in conditions.")
    elif ctx.parsed.short_type == "TabError" or "inconsistent use of tabs" in message:
        cause = "Tabs and spaces are mixed in the indentation."
        suggestions.append(
            "Indent with 4 spaces only (Edit > Find and replace tabs, or retype the indentation)."
        )
    elif "unexpected indent" in message:
        cause = "A line is indented more than the code around it."
        suggestions.append("Align it with the lines of the same block.")
    elif "expected an indented block" in message:
        cause = "A block (after `if`, `for`, `def`...) is empty or its body is not indented."
        suggestions.append("Indent the body by 4 spaces, or write `pass` as a placeholder body.")
    elif "unindent does not match" in message:
        cause = "A line's indentation does not line up with any enclosing block."
        suggestions.append("Re-indent the block consistently with 4 spaces per level.")
    elif "outside function" in message:
        cause = "`return`/`yield` only work inside a function."
        suggestions.append("Put the code in a `def`, or remove the `return`.")
    else:
        cause = "Python could not parse this code."
        suggestions.append("Look just before the caret: the mistake is often on the previous line.")
    fix = _repair_syntax(ctx.cell, ctx.line, col, message, ctx.parsed.short_type)
    summary = _summary(ctx) + caret
    return StaticDiagnosis(summary, cause, suggestions, fix)


_CLOSERS = {"(": ")", "[": "]", "{": "}"}


def _repair_syntax(
    cell: str | None, line_no: int | None, col: int | None, message: str, exc_type: str
) -> str | None:
    """Try the mechanical repairs the message names; keep the first that makes the cell
    parse, so a suggested fix never trades one syntax error for another."""
    if cell is None:
        return None
    candidates: list[str] = []
    if exc_type == "TabError" or "inconsistent use of tabs" in message:
        candidates.append(cell.expandtabs(4))
    lines = cell.split("\n")
    if line_no is not None and 1 <= line_no <= len(lines):
        index = line_no - 1
        for new_line in _line_repairs(lines, index, col, message):
            candidates.append("\n".join([*lines[:index], new_line, *lines[index + 1 :]]))
    if "was never closed" in message or "incomplete input" in message:
        closers = _missing_closers(cell)
        if closers:
            candidates.append(cell.rstrip() + closers + ("\n" if cell.endswith("\n") else ""))
    return next((candidate for candidate in candidates if _parses(candidate)), None)


def _line_repairs(lines: list[str], index: int, col: int | None, message: str) -> list[str]:
    """Replacements for the failing line that may fix what `message` says."""
    line = lines[index]
    repairs: list[str] = []
    if "expected ':'" in message:
        code, hashmark, comment = line.partition("  #")
        repairs.append(code.rstrip() + ":" + (f"  #{comment}" if hashmark else ""))
    opener = re.search(r"'(.)' was never closed", message)
    if opener and opener.group(1) in _CLOSERS:
        repairs.append(line.rstrip() + _CLOSERS[opener.group(1)])
    if "unterminated string literal" in message and col is not None and col <= len(line):
        quote = next((ch for ch in line[col - 1 :] if ch in "\"'"), None)
        if quote:
            repairs.append(line.rstrip() + quote)
    if "Missing parentheses in call to 'print'" in message:
        match = re.match(r"^(\s*)print\s+(.*?)\s*$", line)
        if match:
            repairs.append(f"{match[1]}print({match[2]})")
    if "unexpected indent" in message or "unindent does not match" in message:
        previous = next((p for p in reversed(lines[:index]) if p.strip()), None)
        if previous is not None:
            repairs.append(previous[: len(previous) - len(previous.lstrip())] + line.lstrip())
    return repairs


def _missing_closers(source: str) -> str:
    """The brackets still open at the end of `source`, closed innermost first."""
    stack: list[str] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.OP and token.string in _CLOSERS:
                stack.append(_CLOSERS[token.string])
            elif token.type == tokenize.OP and token.string in _CLOSERS.values() and stack:
                stack.pop()
    except (tokenize.TokenError, SyntaxError):
        pass  # "EOF in multi-line statement": the tokens up to there are what we need
    return "".join(reversed(stack))


def _file_not_found(ctx: _Context) -> StaticDiagnosis:
    names = _quoted(ctx.first_line)
    path = names[-1] if names else None
    suggestions = [
        "Relative paths start from the kernel's working directory (the notebook's folder in "
        "Jupyter): check it with `from pathlib import Path; Path.cwd()` and list it with "
        "`sorted(p.name for p in Path.cwd().iterdir())`.",
    ]
    fix: str | None = None
    cause = "The file does not exist at that path, seen from the kernel's working directory."
    if path and path.startswith("~"):
        cause = "`~` is not expanded by `open()`/`pd.read_csv()`: the path is taken literally."
        fix = f"from pathlib import Path\npath = Path({path!r}).expanduser()"
        suggestions.insert(0, f"Use `Path({path!r}).expanduser()`.")
    elif path and "\\" in path:
        suggestions.insert(
            0,
            "On Windows, write paths as raw strings (`r'C:\\data\\x.csv'`) or with `/`: "
            "`\\t`, `\\n` in a normal string are escape characters.",
        )
    if path:
        suggestions.append(f"Check the spelling, the extension and the case of {path!r}.")
    return StaticDiagnosis(_summary(ctx), cause, suggestions, fix)


def _unicode_decode(ctx: _Context) -> StaticDiagnosis:
    return StaticDiagnosis(
        _summary(ctx),
        "The file is not in the encoding used to read it (often Latin-1/cp1252 read as UTF-8, "
        "or a binary file such as Excel read as text).",
        [
            "Pass the encoding: `open(path, encoding='latin-1')` / "
            "`pd.read_csv(path, encoding='latin-1')`.",
            "Excel files are read with `pd.read_excel`, not `read_csv`.",
        ],
    )


def _json_decode(ctx: _Context) -> StaticDiagnosis:
    return StaticDiagnosis(
        _summary(ctx),
        "The text is not JSON: empty, an HTML error page, or a file with one JSON object per line.",
        [
            "Print the first characters of the text (`text[:200]`) or the HTTP status code.",
            "For JSON Lines use `pd.read_json(path, lines=True)`.",
        ],
    )


def _recursion(ctx: _Context) -> StaticDiagnosis:
    return StaticDiagnosis(
        _summary(ctx),
        "A function calls itself without reaching its base case (or the input is very deep).",
        ["Check the base case and that each call moves towards it; prefer a loop for deep inputs."],
    )


# Errors whose advice does not depend on the message.
_FIXED_ADVICE: dict[str, tuple[str, list[str]]] = {
    "KeyboardInterrupt": (
        "The run was interrupted: the stop button (Kernel > Interrupt) or a timeout.",
        ["If it was running too long, try the code on a sample of the data first."],
    ),
    "MemoryError": (
        "The data does not fit in memory.",
        [
            "Read fewer rows or columns (`usecols=`, `nrows=`, `chunksize=`), use smaller "
            "dtypes (`float32`, `category`), and `del` large objects you no longer need.",
        ],
    ),
    "AssertionError": (
        "An `assert` condition was false.",
        ["Print the values the assertion compares, just before it."],
    ),
    "PermissionError": (
        "The file or folder cannot be read or written by the user running the kernel.",
        [
            "Check the path's permissions, or write to a folder you own; close the file if "
            "another program (such as Excel) holds it open."
        ],
    ),
    "IsADirectoryError": (
        "A folder was given where a file path was expected.",
        ["Add the file name to the path, or list the folder with `os.listdir(path)`."],
    ),
    "StopIteration": (
        "`next()` was called on an exhausted iterator (or one that was empty).",
        ["Use `next(iterator, default)`, or re-create the iterator: generators run once."],
    ),
}


def _fixed_advice(ctx: _Context) -> StaticDiagnosis:
    cause, suggestions = _FIXED_ADVICE[ctx.parsed.short_type]
    return StaticDiagnosis(_summary(ctx), cause, list(suggestions))


def _generic_suggestions(ctx: _Context) -> list[str]:
    suggestions = [
        f"The error says: {ctx.first_line}"
        if ctx.first_line
        else "Read the last line of the traceback."
    ]
    user = ctx.parsed.user_frame
    frames = ctx.parsed.frames
    if user is not None and frames and frames[-1] is not user:
        suggestions.append(
            f"The error is raised inside a library; the call from your code is at "
            f"{user.location}: check the arguments passed there.{_quoted_code(user.code)}"
        )
    suggestions.append("Run `%debug` in the next cell to inspect the variables where it failed.")
    return suggestions


def _generic(ctx: _Context) -> StaticDiagnosis:
    where = f" at {ctx.location}" if ctx.location else ""
    return StaticDiagnosis(
        _summary(ctx),
        f"`{ctx.parsed.short_type}` was raised{where}.",
        _generic_suggestions(ctx),
    )


_HANDLERS: dict[str, Callable[[_Context], StaticDiagnosis]] = {
    "NameError": _name_error,
    "UnboundLocalError": _unbound_local_error,
    "ModuleNotFoundError": _module_not_found,
    "ImportError": _import_error,
    "KeyError": _key_error,
    "AttributeError": _attribute_error,
    "TypeError": _type_error,
    "ValueError": _value_error,
    "IndexError": _index_error,
    "ZeroDivisionError": _zero_division,
    "SyntaxError": _syntax_error,
    "IndentationError": _syntax_error,
    "TabError": _syntax_error,
    "FileNotFoundError": _file_not_found,
    "UnicodeDecodeError": _unicode_decode,
    "JSONDecodeError": _json_decode,
    "RecursionError": _recursion,
}


def _cell_line(parsed: ParsedError, cell: str | None) -> tuple[str | None, int | None]:
    """The failing line within `cell`, and the cell itself if it matches the traceback."""
    frame = parsed.user_frame
    if cell is None or frame is None or frame.line is None:
        return cell, None
    lines = cell.split("\n")
    if not 1 <= frame.line <= len(lines):
        return None, None  # the traceback is about other code
    if frame.code and lines[frame.line - 1].strip() != frame.code.strip():
        return None, None
    return cell, frame.line


def diagnose(
    parsed: ParsedError, cell_source: str | None, known_names: Collection[str]
) -> StaticDiagnosis:
    cell, line = _cell_line(parsed, cell_source)
    frame = parsed.user_frame
    ctx = _Context(parsed, cell, frozenset(known_names), line, frame.location if frame else "")
    handler = _HANDLERS.get(parsed.short_type)
    if handler is None and parsed.short_type in _FIXED_ADVICE:
        handler = _fixed_advice
    if handler is None and parsed.short_type.endswith("DecodeError"):
        handler = _unicode_decode if "codec" in parsed.message else _json_decode
    try:
        return (handler or _generic)(ctx)
    except (ValueError, IndexError, KeyError, TypeError):  # a surprising message shape
        return _generic(ctx)
