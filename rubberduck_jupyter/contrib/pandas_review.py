"""pandas-specific findings for cell and file reviews (`analysis_augment` hook).

Written only against the public plugin API (`rubberduck_jupyter.plugins`) and the standard
library: pure `ast`, synchronous, no pandas import (it runs inside every cell review).

| code | finding | replacement |
|---|---|---|
| PD001 | chained indexing assignment `df[a][b] = v`, `df[mask]["y"] = v` | `df.loc[...] = v` |
| PD002 | `inplace=True` | `df = df.method(...)` for a bare `df.method(..., inplace=True)` |
| PD003 | a `for` loop over `.iterrows()` | none (vectorise, or `.itertuples()`) |
| PD004 | `.apply(f)` where a vectorised call exists | `col * 2`, `col.str.len()`, ... |

When a rule fires (the heuristic, chosen to keep false positives low):

- PD003 (`iterrows`) and PD002 (`inplace=True` on a method pandas has with that keyword,
  `drop`, `fillna`, `rename`, ...) are pandas-only spellings: they fire on any receiver that
  is not a module alias such as `np` or `torch`.
- PD001 and PD004 use spellings common outside pandas (`a[i][j] = v`, `.apply(f)`), so they
  fire only when the receiver's root name *looks like a DataFrame*: `df`, `df2`, `df_x`,
  `*_df` (generic names such as `data` do not count); or a name this cell binds from `pd.*(...)` /
  `pd.read_*(...)` / another DataFrame-like name; or a name the chat context's `variables`
  describe as a DataFrame or Series. PD001's boolean-mask form (`x[x.col > 0]["y"] = v`,
  `x[x["c"] > 0]["y"] = v`) also fires when the cell imports pandas: the mask reads a
  column of the same name, which lists and arrays do not have.

Each finding is a dict in the review's shape (`source`, `code`, `message`, `line`, `col`,
`end_line`, `severity`, `fix`; 1-based lines and columns) plus `replacement`, the whole cell
with the fix applied, when a mechanical rewrite is safe; a replacement is only given when it
parses.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from rubberduck_jupyter.plugins import hookimpl, plugin

spec = plugin(
    name="pandas-review",
    version="1.0",
    api=">=1,<2",
    provides=["analysis"],
    description="pandas findings: chained assignment, inplace=True, iterrows, apply",
)

_MAGIC = re.compile(r"^\s*([%!?]|[\w.]+\?\??\s*$)")
_DF_NAME = re.compile(r"^(df\d*|df_\w+|\w+_df\d*)$")
_MODULES = {"np", "numpy", "pd", "pandas", "torch", "tf", "nn", "F", "math", "os", "sys", "plt"}
_INPLACE_METHODS = {
    "bfill", "clip", "drop", "drop_duplicates", "dropna", "eval", "ffill", "fillna",
    "interpolate", "mask", "query", "rename", "rename_axis", "replace", "reset_index",
    "set_axis", "set_index", "sort_index", "sort_values", "where",
}  # fmt: skip
_STR_METHODS = {
    "lower", "upper", "strip", "lstrip", "rstrip", "title", "capitalize", "casefold",
    "swapcase", "isdigit", "isalpha", "isnumeric", "isspace", "islower", "isupper",
}  # fmt: skip
_NP_UFUNCS = {
    "sqrt", "log", "log10", "log2", "log1p", "exp", "expm1", "abs", "absolute", "sin", "cos",
    "tan", "floor", "ceil", "sign", "square", "negative", "isnan",
}  # fmt: skip
_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)


def _mask(source: str) -> str:
    return "\n".join(
        (line[: len(line) - len(line.lstrip())] + "pass") if _MAGIC.match(line) else line
        for line in source.split("\n")
    )


class _Text:
    """Offsets into the source for `ast` positions (1-based lines, UTF-8 byte columns)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = source.split("\n")
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line) + 1)

    def at(self, line: int, col: int) -> int:
        chars = len(self.lines[line - 1].encode()[:col].decode(errors="ignore"))
        return self.starts[line - 1] + chars

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (
            self.at(node.lineno, node.col_offset),  # type: ignore[attr-defined]
            self.at(node.end_lineno, node.end_col_offset),  # type: ignore[attr-defined]
        )

    def seg(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.source[start:end]

    def col(self, node: ast.AST) -> int:
        line = node.lineno  # type: ignore[attr-defined]
        return self.at(line, node.col_offset) - self.starts[line - 1] + 1  # type: ignore[attr-defined]

    def replace(self, edits: list[tuple[int, int, str]]) -> str:
        out = self.source
        for start, end, text in sorted(edits, reverse=True):
            out = out[:start] + text + out[end:]
        return out


def _root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Subscript | ast.Attribute | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _context_frames(context: Mapping[str, Any]) -> set[str]:
    """Names the chat context's `variables` describe as a DataFrame or Series."""
    found: set[str] = set()
    variables = context.get("variables") if isinstance(context, Mapping) else None
    items: list[tuple[str, str]] = []
    if isinstance(variables, Mapping):
        items = [(str(k), str(v)) for k, v in variables.items()]
    elif isinstance(variables, list):
        for var in variables:
            if isinstance(var, Mapping) and "name" in var:
                items.append(
                    (str(var["name"]), str(var.get("type", "")) + str(var.get("repr", "")))
                )
    for name, desc in items:
        if "DataFrame" in desc or "Series" in desc:
            found.add(name)
    return found


class _Review:
    def __init__(self, source: str, tree: ast.Module, context: Mapping[str, Any]) -> None:
        self.text = _Text(source)
        self.tree = tree
        self.findings: list[dict[str, Any]] = []
        self.imports_pandas = False
        self.pandas_aliases = {"pandas"}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "pandas":
                        self.imports_pandas = True
                        self.pandas_aliases.add(alias.asname or "pandas")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pandas"):
                self.imports_pandas = True
        if self.imports_pandas:
            self.pandas_aliases.add("pd")
        self.frames = _context_frames(context) | self._bound_frames()

    def _bound_frames(self) -> set[str]:
        """Names assigned from `pd.<anything>(...)` or from a DataFrame-like name."""
        frames: set[str] = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    root = _root(node.value)
                    if root in self.pandas_aliases or (root and _DF_NAME.match(root)):
                        frames.add(target.id)
        return frames

    def frame_like(self, node: ast.AST) -> bool:
        root = _root(node)
        return bool(root) and (bool(_DF_NAME.match(root)) or root in self.frames)  # type: ignore[arg-type]

    def add(self, node: ast.AST, code: str, message: str, fix: str, severity: str,
            replacement: str | None = None) -> None:  # fmt: skip
        finding: dict[str, Any] = {
            "source": "ast",
            "code": code,
            "message": message,
            "line": node.lineno,  # type: ignore[attr-defined]
            "col": self.text.col(node),
            "end_line": node.end_lineno,  # type: ignore[attr-defined]
            "severity": severity,
            "fix": fix,
        }
        if replacement is not None and _parses(replacement):
            finding["replacement"] = replacement
        self.findings.append(finding)

    # -- rules ----------------------------------------------------------------------------

    def run(self) -> list[dict[str, Any]]:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    self.chained(target)
            elif isinstance(node, ast.For):
                self.iterrows(node)
            elif isinstance(node, ast.Call):
                self.inplace(node)
                self.apply(node)
        self.findings.sort(key=lambda f: (f["line"], f["col"], f["code"]))
        return self.findings

    def chained(self, target: ast.AST) -> None:
        """PD001: `x[a][b] = v` (or `x.loc[a][b] = v`) on a DataFrame-like `x`."""
        if not (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Subscript)):
            return
        inner = target.value
        frame = inner.value
        via_loc = isinstance(frame, ast.Attribute) and frame.attr == "loc"
        base = frame.value if via_loc else frame  # type: ignore[attr-defined]
        if isinstance(base, ast.Subscript | ast.Call) or (
            isinstance(frame, ast.Attribute) and not via_loc
        ):
            return
        mask = _is_mask(inner.slice, _root(base))
        if not (self.frame_like(base) or (mask and self.imports_pandas)):
            return
        frame_src, a_src, b_src = (
            self.text.seg(base),
            self.text.seg(inner.slice),
            self.text.seg(target.slice),
        )
        column = isinstance(inner.slice, ast.Constant) and isinstance(inner.slice.value, str)
        replacement = None
        if via_loc or mask:
            if not isinstance(inner.slice, ast.Tuple | ast.Slice) and _is_label(target.slice):
                new = f"{frame_src}.loc[{a_src}, {b_src}]"
                replacement = self._replaced(target, new)
        elif column and not isinstance(target.slice, ast.Slice | ast.Tuple):
            new = f"{frame_src}.loc[{b_src}, {a_src}]"
            replacement = self._replaced(target, new)
        advice = (
            f"{frame_src}.loc[{a_src}, {b_src}] = ..."
            if (via_loc or mask or not column)
            else f"{frame_src}.loc[{b_src}, {a_src}] = ..."
        )
        self.add(
            target,
            "PD001",
            f"chained indexing assignment `{self.text.seg(target)} = ...` sets a value on a "
            f"temporary copy; `{frame_src}` may not change (SettingWithCopyWarning; never "
            "under pandas' Copy-on-Write)",
            f"index once with .loc: `{advice}`",
            "warning",
            replacement,
        )

    def inplace(self, call: ast.Call) -> None:
        """PD002: `obj.method(..., inplace=True)` for a pandas method with that keyword."""
        func = call.func
        if not isinstance(func, ast.Attribute) or func.attr not in _INPLACE_METHODS:
            return
        keyword = next((k for k in call.keywords if k.arg == "inplace" and _is_true(k.value)), None)
        if keyword is None or _root(func.value) in _MODULES:
            return
        receiver = func.value
        replacement = None
        statement = self._statement_of(call)
        assignable = isinstance(receiver, ast.Name | ast.Attribute | ast.Subscript) and not any(
            isinstance(n, ast.Call) for n in ast.walk(receiver)
        )
        if isinstance(statement, ast.Expr) and statement.value is call and assignable:
            call_src = self._without_keyword(call, keyword)
            start, end = self.text.span(call)
            replacement = self.text.replace(
                [(start, end, f"{self.text.seg(receiver)} = {call_src}")]
            )
        recv = self.text.seg(receiver)
        self.add(
            call,
            "PD002",
            f"`{func.attr}(..., inplace=True)` is discouraged: it rarely saves memory, cannot be "
            "chained, and on a column or a slice may not change the original",
            f"assign the result instead: `{recv} = {recv}.{func.attr}(...)` without inplace",
            "info",
            replacement,
        )

    def iterrows(self, loop: ast.For) -> None:
        """PD003: `for ... in x.iterrows():`."""
        it = loop.iter
        if not (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Attribute)
            and it.func.attr == "iterrows"
            and _root(it.func.value) not in _MODULES
        ):
            return
        self.add(
            it,
            "PD003",
            "looping with `.iterrows()` builds a Series per row: slow on large frames, and "
            "row values lose their column dtypes",
            "vectorise the loop body as column operations; if a loop is really needed, use "
            "`.itertuples(index=False)`",
            "info",
        )

    def apply(self, call: ast.Call) -> None:
        """PD004: `x.apply(f)` with one argument where a vectorised spelling exists."""
        func = call.func
        if not (
            isinstance(func, ast.Attribute)
            and func.attr == "apply"
            and len(call.args) == 1
            and not call.keywords
            and self.frame_like(func.value)
        ):
            return
        recv = self.text.seg(func.value)
        if not isinstance(func.value, ast.Name | ast.Subscript | ast.Attribute):
            recv = f"({recv})"
        new = _vectorised(call.args[0], recv, "np" in self._names_imported())
        if new is None:
            return
        start, end = self.text.span(call)
        self.add(
            call,
            "PD004",
            f"`.apply({self.text.seg(call.args[0])})` calls Python once per element; a "
            "vectorised operation does the same at once",
            f"use `{new}`",
            "info",
            self.text.replace([(start, end, new)]),
        )

    # -- helpers --------------------------------------------------------------------------

    def _names_imported(self) -> set[str]:
        names: set[str] = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                names |= {a.asname or a.name.split(".")[0] for a in node.names}
        return names

    def _statement_of(self, target: ast.AST) -> ast.stmt | None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Expr) and node.value is target:
                return node
        return None

    def _replaced(self, node: ast.AST, new: str) -> str:
        start, end = self.text.span(node)
        return self.text.replace([(start, end, new)])

    def _without_keyword(self, call: ast.Call, keyword: ast.keyword) -> str:
        """The call's source with `keyword` (and one separating comma) removed."""
        call_start, call_end = self.text.span(call)
        items = sorted([*call.args, *call.keywords], key=lambda n: (n.lineno, n.col_offset))
        index = items.index(keyword)
        k_start, k_end = self.text.span(keyword)
        if index > 0:
            cut = (self.text.span(items[index - 1])[1], k_end)
        elif index + 1 < len(items):
            cut = (k_start, self.text.span(items[index + 1])[0])
        else:
            after = self.text.source[k_end:call_end]
            trailing = len(after) - len(after.lstrip(" \t\n,"))
            cut = (k_start, k_end + trailing)
        src = self.text.source
        return src[call_start : cut[0]] + src[cut[1] : call_end]


def _is_true(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _is_label(node: ast.AST) -> bool:
    """A column label: a string constant or a list of them."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.List):
        return bool(node.elts) and all(_is_label(e) for e in node.elts)
    return False


def _is_mask(node: ast.AST, root: str | None) -> bool:
    """A boolean mask reading a column of `root`: `root.x > 0`, `(root["a"] == 1) & ...`."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd | ast.BitOr | ast.BitXor):
        return _is_mask(node.left, root) or _is_mask(node.right, root)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
        return _is_mask(node.operand, root)
    if isinstance(node, ast.Compare):
        sides = [node.left, *node.comparators]
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        sides = [node.func.value]  # df.x.isin([...]), df["a"].notna()
    else:
        return False
    return any(
        isinstance(side, ast.Attribute | ast.Subscript) and _root(side) == root and root
        for side in sides
    )


def _vectorised(fn: ast.AST, recv: str, has_numpy: bool) -> str | None:
    """The vectorised spelling of `recv.apply(fn)`, or None when there is none we trust."""
    if isinstance(fn, ast.Name):
        if fn.id == "len":
            return f"{recv}.str.len()"
        if fn.id == "abs":
            return f"{recv}.abs()"
        return None
    if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name):
        if fn.value.id == "str" and fn.attr in _STR_METHODS:
            return f"{recv}.str.{fn.attr}()"
        if fn.value.id in {"np", "numpy"} and fn.attr in _NP_UFUNCS:
            return f"{fn.value.id}.{fn.attr}({recv})"
        if fn.value.id == "math" and fn.attr in _NP_UFUNCS and has_numpy:
            return f"np.{fn.attr}({recv})"
        return None
    if not (isinstance(fn, ast.Lambda) and len(fn.args.args) == 1 and not fn.args.defaults):
        return None
    param = fn.args.args[0].arg
    body = fn.body
    # lambda s: s.lower()  /  lambda s: len(s)
    if (
        isinstance(body, ast.Call)
        and isinstance(body.func, ast.Attribute)
        and isinstance(body.func.value, ast.Name)
        and body.func.value.id == param
        and body.func.attr in _STR_METHODS
        and not body.args
        and not body.keywords
    ):
        return f"{recv}.str.{body.func.attr}()"
    if (
        isinstance(body, ast.Call)
        and isinstance(body.func, ast.Name)
        and body.func.id == "len"
        and len(body.args) == 1
        and isinstance(body.args[0], ast.Name)
        and body.args[0].id == param
    ):
        return f"{recv}.str.len()"
    # lambda x: x * 2 + 1: arithmetic of the parameter and numeric constants only
    if isinstance(body, ast.BinOp) and _arithmetic(body, param):
        placeholder = "__rubberduck_param__"

        class Swap(ast.NodeTransformer):
            def visit_Name(self, node: ast.Name) -> ast.AST:
                return ast.Name(placeholder, ast.Load()) if node.id == param else node

        expr = ast.unparse(Swap().visit(ast.parse(ast.unparse(body), mode="eval")))
        wrapped = recv if re.fullmatch(r"[\w.]+(\[[^\[\]]*\])?", recv) else f"({recv})"
        return expr.replace(placeholder, wrapped)
    return None


def _arithmetic(node: ast.AST, param: str) -> bool:
    """Only `param`, numeric constants and + - * / // % ** (at least one `param`)."""
    uses = False
    for sub in ast.walk(node):
        if isinstance(sub, ast.BinOp):
            if not isinstance(sub.op, _ARITH):
                return False
        elif isinstance(sub, ast.UnaryOp):
            if not isinstance(sub.op, ast.USub | ast.UAdd):
                return False
        elif isinstance(sub, ast.Name):
            if sub.id != param:
                return False
            uses = True
        elif isinstance(sub, ast.Constant):
            if isinstance(sub.value, bool) or not isinstance(sub.value, int | float):
                return False
        elif not isinstance(sub, ast.operator | ast.unaryop | ast.expr_context):
            return False
    return uses


def _parses(source: str) -> bool:
    try:
        ast.parse(_mask(source))
    except (SyntaxError, ValueError):
        return False
    return True


def review(source: str, context: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The pandas findings for `source` (a cell or a file); [] when it does not parse."""
    try:
        tree = ast.parse(_mask(source))
    except (SyntaxError, ValueError):
        return []
    return _Review(source, tree, context or {}).run()


@hookimpl
def analysis_augment(
    source: str, findings: list[dict[str, Any]], context: Mapping[str, Any]
) -> list[dict[str, Any]] | None:
    return review(source, context) or None
