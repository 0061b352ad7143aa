"""Static review of Python source or a notebook cell: the parser, ruff, and a few checks of
our own for mistakes that are common in notebooks and that ruff does not know about.

Blocking (a ruff subprocess, ~15 ms a cell here): the server calls `analyze_python` from
a thread. `prepare_python` / `run_ruff_many` / `finish_python` are its three steps apart,
so a notebook's pass (review/batch.py) runs one ruff process for hundreds of cells.
Never raises for bad input or a broken ruff: ruff trouble becomes one "info" finding and
the parser and ast checks still run.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Collection, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from .cells import mask_magics, parse_python
from .findings import Finding, Severity, TextEdit, sort_findings

# What review asks ruff for: bugs and traps, not style. Each entry earns its place:
# F pyflakes (undefined names, unused imports, bad format strings), E9 unreadable input,
# E721/E722 type comparison and bare except, B bugbear (mutable defaults, loop closures),
# PLE pylint errors, a few pylint warnings that are real bugs, C901 complexity,
# NPY numpy aliases removed in numpy 1.24/2.0 (AttributeError on a current numpy),
# A001 a builtin shadowed by a variable (`list = [...]` then `list(x)` fails in a later cell).
RUFF_SELECT = (
    "F",
    "E9",
    "E721",
    "E722",
    "B",
    "PLE",
    "PLW0120",
    "PLW0127",
    "PLW0128",
    "PLW0129",
    "PLW0177",
    "PLW0711",
    "PLW2901",
    "PLR1704",
    "C901",
    "NPY001",
    "NPY003",
    "NPY201",
    "A001",
)
# zip() without strict= and warnings without stacklevel are style in notebook code.
RUFF_IGNORE = ("B905", "B028")
MAX_COMPLEXITY = 10
RUFF_TIMEOUT_S = 10.0

# Fail when run: a re-prompt is worth it.
_ERROR_CODES = frozenset(
    {"F821", "F822", "F823", "F701", "F702", "F704", "F706", "F707", "F622", "F633"}
    | {f"F50{n}" for n in range(1, 10)}
    | {f"F52{n}" for n in range(1, 6)}
)
_ERROR_PREFIXES = ("E9", "PLE")
_INFO_CODES = frozenset({"C901", "F541", "F403"})
# Fine in a notebook cell: later cells use the import, or the cell re-runs.
_CELL_INFO_CODES = frozenset({"F401", "F811"})

# Names IPython defines in every kernel.
IPYTHON_NAMES = frozenset(
    {"display", "get_ipython", "In", "Out", "exit", "quit", "_", "__", "___"}
    | {"_i", "_ii", "_iii", "_ih", "_oh", "_dh", "_exit_code"}
)
_HISTORY_NAME = re.compile(r"^_i?\d+$")
_BACKTICKED = re.compile(r"`([^`]+)`")


def is_ipython_name(name: str) -> bool:
    """A name every IPython kernel defines (`display`, `In`, `_`, `_i3`, `_12`...)."""
    return name in IPYTHON_NAMES or bool(_HISTORY_NAME.match(name))


def analyze_python(
    source: str,
    *,
    filename: str = "cell.py",
    known_names: Collection[str] = (),
    cell: bool = True,
    timeout: float = RUFF_TIMEOUT_S,
) -> list[Finding]:
    """All findings for `source`, in reading order.

    `cell=True` treats the source as a notebook cell: IPython syntax is masked first,
    top-level `await` is allowed, IPython's own names count as defined, and an unused
    import is only advice. `known_names` (kernel variables, names from earlier cells)
    are never reported as undefined. A syntax error is reported alone: what follows a
    parse failure would be noise.
    """
    prepared = prepare_python(source, filename=filename, cell=cell)
    if prepared.tree is None:
        return prepared.early
    try:
        diagnostics: list[dict[str, Any]] | RuffUnavailable = run_ruff(
            prepared.source, filename=filename, timeout=timeout
        )
    except RuffUnavailable as exc:
        diagnostics = exc
    defined = set(known_names) | (IPYTHON_NAMES if cell else set())
    return finish_python(prepared, diagnostics, defined, cell=cell)


@dataclass(frozen=True, slots=True)
class PreparedSource:
    """A source after the parser, before ruff: `source` is what ruff must check (masked
    when IPython syntax needed it). `tree` is None when the parser already decided: then
    `early` is the whole answer (one syntax finding, or none for a `%%bash` cell)."""

    source: str
    tree: ast.Module | None
    early: list[Finding]


def prepare_python(source: str, *, filename: str = "cell.py", cell: bool = True) -> PreparedSource:
    """The parser's half of `analyze_python`; split out so a batch can run one ruff for
    many sources (review/batch.py) and still give each the same findings."""
    try:
        tree = parse_python(source, filename, top_level_await=cell)
    except (SyntaxError, ValueError) as exc:
        if not cell:
            return PreparedSource(source, None, [_syntax_finding(exc)])
        masked = mask_magics(source)  # IPython syntax never parses: mask only when needed
        if not masked.is_python:
            return PreparedSource(source, None, [])
        source = masked.source
        try:
            tree = parse_python(source, filename)
        except (SyntaxError, ValueError) as masked_exc:
            return PreparedSource(source, None, [_syntax_finding(masked_exc)])
    return PreparedSource(source, tree, [])


def finish_python(
    prepared: PreparedSource,
    diagnostics: list[dict[str, Any]] | RuffUnavailable,
    defined: Container[str],
    *,
    cell: bool = True,
) -> list[Finding]:
    """ruff's diagnostics (or why there are none) and our own checks, in reading order.

    `defined` holds every name that is not undefined here, IPython's included; only
    membership is asked, so a batch passes a view of the names above instead of a copy
    per cell (a set copy per cell is what made a notebook pass quadratic)."""
    if prepared.tree is None:
        return prepared.early
    findings: list[Finding] = []
    if isinstance(diagnostics, RuffUnavailable):
        findings.append(
            Finding(
                "ruff",
                "ruff-unavailable",
                f"ruff was not run ({diagnostics}); only syntax and notebook checks were applied",
                1,
                1,
                severity="info",
            )
        )
    else:
        findings.extend(_ruff_findings(diagnostics, prepared.tree, defined, cell=cell))
    own = notebook_checks(prepared.tree)
    # `model.eval` alone is also ruff's "useless expression"; the specific finding is enough.
    uncalled_lines = {finding.line for finding in own if finding.code == "RD104"}
    findings = [f for f in findings if not (f.code == "B018" and f.line in uncalled_lines)]
    return sort_findings(findings + own)


def _syntax_finding(exc: SyntaxError | ValueError) -> Finding:
    if not isinstance(exc, SyntaxError):  # null bytes in the source
        return Finding("syntax", "SyntaxError", str(exc), 1, 1, severity="error")
    line = exc.lineno or 1
    end_line = exc.end_lineno if exc.end_lineno and exc.end_lineno >= line else None
    return Finding(
        "syntax", type(exc).__name__, exc.msg, line, exc.offset or 1, end_line, severity="error"
    )


def defined_names(source: str, *, cell: bool = True) -> set[str]:
    """Names a cell (or module) binds at its top level: assignments, loop and `with`
    targets, imports, functions and classes. Feed the names of the cells above as
    `known_names` when checking a cell on its own. Empty when the source does not parse."""
    try:
        tree = parse_python(mask_magics(source).source if cell else source)
    except (SyntaxError, ValueError):
        return set()
    return bound_names(tree.body)


# The per-cell endpoint gets the cells above with every request, so one notebook pass
# parsed k-1 cells for cell k (4,950 parses for 100 pdsh cells, 0.26 s here), and a sliced
# notebook pass parses every cell before its slice again. The names a source binds depend
# on nothing else: remember them for the sources seen last. Bounded: 2,048 entries of at
# most 8,000 characters each hold at most ~16 MB of keys (a pdsh cell is ~50-500
# characters; larger ones are parsed each time).
CACHED_CELLS = 2048
CACHED_CELL_CHARS = 8000


def names_bound(source: str) -> frozenset[str]:
    """`defined_names(source)` of a cell, remembered for recent sources."""
    if len(source) > CACHED_CELL_CHARS:
        return frozenset(defined_names(source))
    return _names_bound_cached(source)


@lru_cache(maxsize=CACHED_CELLS)
def _names_bound_cached(source: str) -> frozenset[str]:
    return frozenset(defined_names(source))


def bound_names(statements: Iterable[ast.stmt]) -> set[str]:
    """Names `statements` bind in their own scope (not inside functions, classes' bodies,
    lambdas or comprehensions)."""
    names: set[str] = set()
    stack: list[ast.AST] = list(statements)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            continue  # their bodies are another scope
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)  # `except E as e`, `case [x, *rest]`: a str, not a Name
        if not isinstance(node, ast.Lambda | ast.comprehension):
            stack.extend(ast.iter_child_nodes(node))
    return names


# ---- ruff ----------------------------------------------------------------------------------


class RuffUnavailable(RuntimeError):
    """ruff is not installed, failed, or took too long."""


@cache
def _ruff_binary() -> str:
    try:
        from ruff.__main__ import find_ruff_bin
    except ImportError as exc:
        raise RuffUnavailable("the ruff package is not installed") from exc
    try:
        return str(find_ruff_bin())
    except FileNotFoundError as exc:
        raise RuffUnavailable("the ruff binary was not found") from exc


_UNKNOWN_SELECTOR = re.compile(r"Unknown rule selector[:\s]+`?([A-Z]+[0-9]*)`?")

# One ruff process checks at most this many files. Measured 2026-12-03 (2 cores, ruff
# 0.17.6): a process costs ~7-15 ms to start and ~0.1 ms a cell file after that, so 500
# files is ~60 ms of work, far inside the 10 s timeout even on a loaded machine, and their
# relative names (`c_0499.py`) keep the command line ~5 KB.
RUFF_BATCH_FILES = 500


def _ruff_command(select: Sequence[str], targets: Sequence[str]) -> list[str]:
    """The one ruff command line of review: the same options for stdin and for files, so a
    batch sees exactly what a single cell sees."""
    return [
        _ruff_binary(),
        "check",
        "--isolated",
        "--no-cache",
        "--exit-zero",
        "--output-format",
        "json",
        "--target-version",
        f"py3{sys.version_info.minor}",
        "--select",
        ",".join(select),
        "--ignore",
        ",".join(RUFF_IGNORE),
        "--config",
        f"lint.mccabe.max-complexity = {MAX_COMPLEXITY}",
        *targets,
    ]


def _run_ruff_command(
    targets: Sequence[str], *, stdin: bytes | None, cwd: str | None, timeout: float
) -> list[dict[str, Any]]:
    """Run ruff on `targets`; an older ruff that lacks one of the selected rules is
    retried without it."""
    select = list(RUFF_SELECT)
    for _attempt in range(len(RUFF_SELECT)):
        try:
            done = subprocess.run(
                _ruff_command(select, targets),
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
                cwd=cwd,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuffUnavailable(f"ruff took over {timeout:g}s") from exc
        except OSError as exc:
            raise RuffUnavailable(f"ruff could not start: {exc}") from exc
        stderr = done.stderr.decode("utf-8", "replace")
        if done.returncode == 0:
            try:
                return list(json.loads(done.stdout or b"[]"))
            except ValueError as exc:
                raise RuffUnavailable("ruff printed something that is not JSON") from exc
        unknown = _UNKNOWN_SELECTOR.search(stderr)
        if unknown and unknown.group(1) in select:
            select.remove(unknown.group(1))
            continue
        last_line = stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise RuffUnavailable(f"ruff failed: {last_line[0]}")
    raise RuffUnavailable("ruff knows none of the selected rules")


def run_ruff(
    source: str, *, filename: str = "cell.py", timeout: float = RUFF_TIMEOUT_S
) -> list[dict[str, Any]]:
    """ruff's JSON diagnostics for `source`, isolated from any configuration on disk."""
    stdin_name = filename if filename.endswith(".py") else f"{filename}.py"
    return _run_ruff_command(
        ["--stdin-filename", stdin_name, "-"],
        stdin=source.encode("utf-8", "surrogatepass"),
        cwd=None,
        timeout=timeout,
    )


@cache
def _scratch_folder() -> str | None:
    """Where the batch's cell files go: /dev/shm (memory) when it is there, else the
    default temporary folder. Measured 2026-12-03 here: 100 small files written on the
    ext4 /tmp took 17-90 ms (journalled metadata), on /dev/shm 3 ms. The folder itself is
    private either way (`TemporaryDirectory` makes it mode 0700)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def run_ruff_many(
    sources: Sequence[str], *, timeout: float = RUFF_TIMEOUT_S
) -> list[list[dict[str, Any]] | RuffUnavailable]:
    """ruff's diagnostics for each source, one process per `RUFF_BATCH_FILES` sources.

    ruff reads one file from stdin, so each source becomes a file of a private temporary
    directory (ruff's own per-file results are independent: a name bound in one file is
    not defined in another). Where a process fails, its sources get the RuffUnavailable
    that `run_ruff` would have raised, so their findings stay those of the single path.
    `timeout` applies to each process, as it does to each single cell.
    """
    results: list[list[dict[str, Any]] | RuffUnavailable] = []
    with tempfile.TemporaryDirectory(prefix="rd-ruff-", dir=_scratch_folder()) as folder:
        for start in range(0, len(sources), RUFF_BATCH_FILES):
            chunk = sources[start : start + RUFF_BATCH_FILES]
            names = [f"c_{n:04d}.py" for n in range(len(chunk))]
            for name, source in zip(names, chunk, strict=True):
                # The bytes `run_ruff` sends on stdin.
                Path(folder, name).write_bytes(source.encode("utf-8", "surrogatepass"))
            try:
                diagnostics = _run_ruff_command(names, stdin=None, cwd=folder, timeout=timeout)
            except RuffUnavailable as exc:
                results.extend(exc for _ in chunk)
                continue
            by_file: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            for item in diagnostics:
                # ruff prints absolute paths; ours are unique by their last part.
                by_file.setdefault(Path(str(item.get("filename", ""))).name, []).append(item)
            results.extend(by_file[name] for name in names)
            for name in names:
                Path(folder, name).unlink()
    return results


def _severity(code: str, *, cell: bool) -> Severity:
    if code in _ERROR_CODES or code.startswith(_ERROR_PREFIXES):
        return "error"
    if code in _INFO_CODES or (cell and code in _CELL_INFO_CODES):
        return "info"
    return "warning"


def _ruff_findings(
    diagnostics: list[dict[str, Any]], tree: ast.Module, defined: Container[str], *, cell: bool
) -> Iterator[Finding]:
    # Walked only when ruff reports an await outside a function: it is a walk of the whole
    # tree, and doing it for every cell was ~20% of a 1,145-cell notebook's pass.
    top_level_await_lines: set[int] | None = None if cell else set()
    display_line = _last_expression_line(tree) if cell else None
    for item in diagnostics:
        code = item.get("code")
        if not code or code in ("invalid-syntax", "E999"):
            continue  # the parser accepted the source; ruff's parser disagreeing is noise
        location = item.get("location") or {}
        line = int(location.get("row") or 1)
        message = str(item.get("message", ""))
        if code in ("F821", "F405") and _named(message) in defined:
            continue
        if code == "F821" and _HISTORY_NAME.match(_named(message) or "") and cell:
            continue
        if code in ("F704", "PLE1142"):
            if top_level_await_lines is None:
                top_level_await_lines = _top_level_await_lines(tree)
            if line in top_level_await_lines:
                continue  # IPython runs top-level await
        if code in ("B015", "B018") and line == display_line:
            continue  # a cell's last expression is displayed, not useless
        end = item.get("end_location") or {}
        fix = item.get("fix") or {}
        yield Finding(
            "ruff",
            code,
            message,
            line,
            int(location.get("column") or 1),
            int(end["row"]) if end.get("row") else None,
            severity=_severity(code, cell=cell),
            fix=fix.get("message") or None,
            edits=_ruff_edits(fix),
        )


def _ruff_edits(fix: dict[str, Any]) -> tuple[TextEdit, ...]:
    """ruff's edits, when its fix is one a person may apply ("display-only" ones are not)."""
    if fix.get("applicability") not in ("safe", "unsafe"):
        return ()
    edits = []
    for edit in fix.get("edits") or ():
        start, end = edit.get("location") or {}, edit.get("end_location") or {}
        try:
            edits.append(
                TextEdit(
                    int(start["row"]),
                    int(start["column"]),
                    int(end["row"]),
                    int(end["column"]),
                    str(edit.get("content") or ""),
                )
            )
        except (KeyError, TypeError, ValueError):
            return ()  # a fix we cannot read whole is no fix
    return tuple(edits)


def _named(message: str) -> str | None:
    match = _BACKTICKED.search(message)
    return match.group(1) if match else None


def _top_level_await_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(child, ast.Await | ast.AsyncFor | ast.AsyncWith):
                lines.add(child.lineno)
            visit(child)

    visit(tree)
    return lines


def _last_expression_line(tree: ast.Module) -> int | None:
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        return tree.body[-1].lineno
    return None


# ---- our own checks ------------------------------------------------------------------------

# Methods that change their object and return None: `x = x.sort()` leaves None behind.
_NONE_RETURNING_METHODS = frozenset(
    {"sort", "reverse", "extend", "insert", "clear", "update", "shuffle", "append"}
)
# Methods that do nothing when referenced without a call (`model.eval`, `plt.show`).
_ACTION_METHODS = frozenset(
    {
        "show",
        "head",
        "tail",
        "describe",
        "info",
        "close",
        "plot",
        "eval",
        "train",
        "backward",
        "step",
        "zero_grad",
        "fit",
        "compute",
        "flush",
        "dropna",
        "reset_index",
        "sort_values",
        "savefig",
        "commit",
    }
)
_INDEXERS = frozenset({"loc", "iloc", "at", "iat"})


def notebook_checks(tree: ast.Module) -> list[Finding]:
    """Mistakes common in notebook code that ruff does not report."""
    findings: list[Finding | None] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            findings.extend(_chained_assignment(target) for target in targets)
        if isinstance(node, ast.Assign):
            findings.extend(_assigned_none(node))
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Call)
            and _has_inplace_true(node.value)
        ):
            findings.append(
                Finding(
                    "ast",
                    "RD102",
                    f"`.{node.attr}` is taken from the result of an inplace=True call, "
                    "which is None",
                    node.lineno,
                    node.col_offset + 1,
                    node.end_lineno,
                    severity="error",
                    fix="drop inplace=True and chain on the returned object",
                )
            )
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr in _ACTION_METHODS
        ):
            findings.append(
                Finding(
                    "ast",
                    "RD104",
                    f"`.{node.value.attr}` is referenced but not called, so it does nothing",
                    node.lineno,
                    node.col_offset + 1,
                    node.end_lineno,
                    severity="warning",
                    fix=f"call it: `.{node.value.attr}()`",
                    edits=_insert_after(node.value, "()"),
                )
            )
    return [finding for finding in findings if finding is not None]


def _chained_assignment(target: ast.expr) -> Finding | None:
    """`df[mask]["col"] = v` and `df.loc[r]["col"] = v` may write to a temporary copy."""
    if not (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Subscript)):
        return None
    inner = target.value
    via_indexer = isinstance(inner.value, ast.Attribute) and inner.value.attr in _INDEXERS
    selects_rows = isinstance(inner.slice, ast.Compare | ast.BoolOp | ast.UnaryOp) or (
        isinstance(inner.slice, ast.BinOp) and isinstance(inner.slice.op, ast.BitAnd | ast.BitOr)
    )
    selects_columns = isinstance(inner.slice, ast.List)
    if not (via_indexer or selects_rows or selects_columns):
        return None  # `grid[i][j] = 0` and `config["a"]["b"] = 1` are fine
    base = ast.unparse(inner.value)
    if via_indexer:
        assert isinstance(inner.value, ast.Attribute)
        base = ast.unparse(inner.value.value)
    return Finding(
        "ast",
        "RD101",
        "chained indexing assignment: on a pandas DataFrame this may modify a temporary "
        "copy and leave the original unchanged (SettingWithCopyWarning)",
        target.lineno,
        target.col_offset + 1,
        target.end_lineno,
        severity="warning",
        fix=f"assign in one step: `{base}.loc[rows, cols] = ...`",
    )


def _insert_after(node: ast.expr, text: str) -> tuple[TextEdit, ...]:
    """An edit inserting `text` right after `node`."""
    if node.end_lineno is None or node.end_col_offset is None:
        return ()
    line, col = node.end_lineno, node.end_col_offset + 1
    return (TextEdit(line, col, line, col, text, byte_columns=True),)


def _drop_assignment(node: ast.Assign) -> tuple[TextEdit, ...]:
    """`xs = xs.sort()` -> `xs.sort()`: delete from the target up to the call."""
    start, call = (node.lineno, node.col_offset + 1), node.value
    return (TextEdit(*start, call.lineno, call.col_offset + 1, "", byte_columns=True),)


def _has_inplace_true(call: ast.Call) -> bool:
    return any(
        keyword.arg == "inplace"
        and isinstance(keyword.value, ast.Constant)
        and keyword.value.value is True
        for keyword in call.keywords
    )


def _assigned_none(node: ast.Assign) -> Iterator[Finding]:
    """`df = df.dropna(inplace=True)` and `xs = xs.sort()` assign None."""
    call = node.value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
        return
    if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
        return
    method = call.func.attr
    target = node.targets[0].id
    if _has_inplace_true(call):
        yield Finding(
            "ast",
            "RD102",
            f"`{method}(..., inplace=True)` returns None, so `{target}` becomes None",
            node.lineno,
            node.col_offset + 1,
            node.end_lineno,
            severity="error",
            fix=f"either `{target} = ....{method}(...)` without inplace, "
            "or call it with inplace=True and no assignment",
        )
    elif method in _NONE_RETURNING_METHODS and ast.unparse(call.func.value) == target:
        detail = (
            "; DataFrame.append was removed in pandas 2.0 (use pd.concat)"
            if method == "append"
            else ""
        )
        yield Finding(
            "ast",
            "RD103",
            f"`{target}.{method}(...)` changes `{target}` in place and returns None for "
            f"lists, dicts and sets, so `{target}` becomes None{detail}",
            node.lineno,
            node.col_offset + 1,
            node.end_lineno,
            severity="warning",
            fix=f"call `{target}.{method}(...)` without assigning it",
            edits=_drop_assignment(node),
        )
