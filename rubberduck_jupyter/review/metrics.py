"""Code metrics from the ast: an outline of definitions with their size and cyclomatic
complexity, and a summary of a set of files (modules, definitions, the import graph between
them, the biggest and most branching functions) so an analysis can point at places without
a model. Blocking CPU work."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from .cells import parse_cell

Kind = Literal["function", "async function", "method", "async method", "class"]
TOP_N = 10


@dataclass(frozen=True, slots=True)
class FunctionInfo:
    """A definition. `name` is qualified (`Class.method`, `outer.inner`); lines are 1-based
    and inclusive, from the `def`/`class` line (decorators excluded) to the last line of
    the body. `complexity` is McCabe's: 1 + the decision points of its own body (nested
    definitions are counted separately). For a class, that of its body outside methods."""

    name: str
    kind: Kind
    start_line: int
    end_line: int
    n_lines: int
    complexity: int
    args: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "n_lines": self.n_lines,
            "complexity": self.complexity,
            "args": list(self.args),
        }


_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
# Each adds one path: a branch, a loop (which may run or not), an except clause, a match case.
_BRANCHES = (ast.If, ast.IfExp, ast.For, ast.AsyncFor, ast.While, ast.ExceptHandler, ast.match_case)


def cyclomatic_complexity(node: ast.AST) -> int:
    decisions = 0
    stack = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        if isinstance(child, _DEFINITIONS):
            continue  # nested definitions are measured on their own
        if isinstance(child, _BRANCHES):
            decisions += 1
        elif isinstance(child, ast.BoolOp):
            decisions += len(child.values) - 1
        elif isinstance(child, ast.comprehension):
            decisions += 1 + len(child.ifs)
        stack.extend(ast.iter_child_nodes(child))
    return 1 + decisions


def _arg_names(args: ast.arguments) -> tuple[str, ...]:
    names = [a.arg for a in args.posonlyargs + args.args]
    if args.vararg:
        names.append(f"*{args.vararg.arg}")
    names.extend(a.arg for a in args.kwonlyargs)
    if args.kwarg:
        names.append(f"**{args.kwarg.arg}")
    return tuple(names)


def _nested_statements(node: ast.stmt) -> list[ast.stmt]:
    statements: list[ast.stmt] = []
    for name in ("body", "orelse", "finalbody"):
        statements.extend(getattr(node, name, None) or [])
    for handler in getattr(node, "handlers", None) or []:
        statements.extend(handler.body)
    if isinstance(node, ast.Match):
        for case in node.cases:
            statements.extend(case.body)
    return statements


def _walk_definitions(body: list[ast.stmt], prefix: str, in_class: bool) -> Iterator[FunctionInfo]:
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            is_async = isinstance(node, ast.AsyncFunctionDef)
            base = "method" if in_class else "function"
            kind: Kind = f"async {base}" if is_async else base  # type: ignore[assignment]
            args = _arg_names(node.args)
        elif isinstance(node, ast.ClassDef):
            kind, args = "class", tuple(ast.unparse(base) for base in node.bases)
        else:
            # a def under if/try/with/for at this level still belongs to this scope
            yield from _walk_definitions(_nested_statements(node), prefix, in_class)
            continue
        name = f"{prefix}{node.name}"
        end = node.end_lineno or node.lineno
        yield FunctionInfo(
            name,
            kind,
            node.lineno,
            end,
            end - node.lineno + 1,
            cyclomatic_complexity(node),
            args,
        )
        yield from _walk_definitions(node.body, f"{name}.", isinstance(node, ast.ClassDef))


def outline(source: str) -> list[FunctionInfo]:
    """Every function, method and class of `source`, in source order (nested ones after
    their parent). IPython syntax is masked first, so a notebook cell works too.
    Raises SyntaxError when the source does not parse."""
    tree = parse_cell(source)
    return list(_walk_definitions(tree.body, "", in_class=False))


# ---- a set of files ------------------------------------------------------------------------


def module_name(path: str) -> str:
    """`pkg/sub/mod.py` -> `pkg.sub.mod`; `pkg/__init__.py` -> `pkg`."""
    parts = list(PurePosixPath(path.replace("\\", "/")).with_suffix("").parts)
    parts = [part for part in parts if part not in ("", ".", "/")]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _import_statements(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements at any depth, except under `if TYPE_CHECKING:` (type hints only)."""
    stack: list[ast.stmt] = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            stack.extend(reversed(node.orelse))
        else:
            stack.extend(reversed(_nested_statements(node)))


def _imports(tree: ast.Module, this_module: str, is_package: bool) -> list[tuple[str, ...]]:
    """What this module imports, each as the dotted names it may refer to, most specific
    first: `from a import b` -> (`a.b`, `a`) since b may be a submodule or a name in a.
    Relative imports are resolved against the module's own package."""
    found: list[tuple[str, ...]] = []
    package = this_module if is_package else this_module.rpartition(".")[0]
    for node in _import_statements(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name,) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                keep = len(parts) - (node.level - 1)
                if keep < 0:
                    continue  # beyond the top of the given files
                base = ".".join(part for part in (*parts[:keep], base) if part)
            for alias in node.names:
                found.append((f"{base}.{alias.name}", base) if base else (alias.name,))
    return found


def _resolve(target: str, by_module: Mapping[str, str]) -> str | None:
    """The given file that `target` names: an exact module name, else the longest module
    whose name ends with it (`pkg.mod` matches `src.pkg.mod`)."""
    if target in by_module:
        return by_module[target]
    suffix = f".{target}"
    matches = [name for name in by_module if name.endswith(suffix)]
    return by_module[min(matches, key=len)] if matches else None


def _cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one file (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def connect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, []):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(found)


def architecture_summary(files: Mapping[str, str], *, top_n: int = TOP_N) -> dict[str, Any]:
    """What a set of Python files is made of, for recommendations with locations.

    `files` maps a path (relative, POSIX) to its source. Returns a JSON-ready dict:
    `modules` (per file: module name, lines, docstring's first line, top-level
    definitions, imports of other given files, external imports, whether it has a
    `__main__` guard, a parse error if any), `import_graph` (path -> imported paths among
    the given files), `import_cycles`, `largest_functions` and `most_complex_functions`
    (the `top_n` of each, with path and line), and `totals`.
    """
    by_module = {module_name(path): path for path in files}
    own_names = {part for name in by_module for part in name.split(".")}
    modules: list[dict[str, Any]] = []
    graph: dict[str, list[str]] = {}
    functions: list[dict[str, Any]] = []
    totals = {"files": len(files), "lines": 0, "functions": 0, "classes": 0, "parse_errors": 0}
    for path in sorted(files):
        source = files[path]
        n_lines = source.count("\n") + (0 if source.endswith("\n") or not source else 1)
        totals["lines"] += n_lines
        entry: dict[str, Any] = {"path": path, "module": module_name(path), "lines": n_lines}
        modules.append(entry)
        try:
            tree = parse_cell(source)
        except (SyntaxError, ValueError) as exc:
            entry["parse_error"] = str(exc)
            totals["parse_errors"] += 1
            graph[path] = []
            continue
        docstring = ast.get_docstring(tree)
        entry["docstring"] = docstring.strip().split("\n", 1)[0] if docstring else None
        entry["definitions"] = [
            {
                "name": node.name,
                "kind": "class" if isinstance(node, ast.ClassDef) else "function",
                "line": node.lineno,
            }
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        ]
        entry["has_main_guard"] = any(
            isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) for node in tree.body
        )
        internal: set[str] = set()
        external: set[str] = set()
        for alternatives in _imports(tree, entry["module"], path.endswith("__init__.py")):
            resolved = next(
                (found for name in alternatives if (found := _resolve(name, by_module))), None
            )
            if resolved is None:
                external.add(alternatives[-1].split(".", 1)[0])
            elif resolved != path:
                internal.add(resolved)
        external -= own_names  # a name of ours that matched no file (`from pkg import *`)
        entry["imports"] = sorted(internal)
        entry["external_imports"] = sorted(external)
        graph[path] = sorted(internal)
        for info in _walk_definitions(tree.body, "", in_class=False):
            if info.kind == "class":
                totals["classes"] += 1
                continue
            totals["functions"] += 1
            functions.append({"path": path, **info.to_json()})
    largest = sorted(functions, key=lambda f: (-f["n_lines"], f["path"], f["start_line"]))
    complex_ = sorted(functions, key=lambda f: (-f["complexity"], f["path"], f["start_line"]))
    return {
        "modules": modules,
        "import_graph": graph,
        "import_cycles": _cycles(graph),
        "largest_functions": largest[:top_n],
        "most_complex_functions": complex_[:top_n],
        "totals": totals,
    }
