"""pytest skeletons from function signatures, for `generate_tests` without a model.

One test per public function and public method, parametrized over its arguments with
placeholder cases (arguments with defaults start at their default), a TODO per case, and
a `pytest.raises` test for each exception type the function raises itself. The skeleton is
valid Python that imports the module; it fails until the TODOs are filled in, on purpose:
arguments are `...` and expected results a `TODO` sentinel that equals nothing else.
"""

from __future__ import annotations

import ast
import keyword
from dataclasses import dataclass
from typing import Literal

from .cells import parse_cell

# (pytest id, what the case should cover)
CASES = (
    ("typical", "a typical input"),
    ("edge", "an edge case (empty, zero, None, a boundary)"),
)
Definition = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    default: str | None  # source of the default value
    passing: Literal["positional", "keyword", "star", "starstar"]

    @property
    def variable(self) -> str:
        reserved = keyword.iskeyword(self.name) or self.name in ("expected", "pytest", "obj")
        return f"{self.name}_" if reserved else self.name

    @property
    def placeholder(self) -> str:
        if self.default is not None:
            return self.default
        return {"star": "()", "starstar": "{}"}.get(self.passing, "...")

    def argument(self, value: str) -> str:
        prefix = {"keyword": f"{self.name}=", "star": "*", "starstar": "**"}.get(self.passing, "")
        return f"{prefix}{value}"


def _exported(tree: ast.Module) -> set[str] | None:
    """The names in `__all__`, when the module declares it as a literal."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            try:
                return set(ast.literal_eval(node.value))
            except ValueError:
                return None
    return None


def _parameters(args: ast.arguments, *, skip_first: bool) -> list[_Param]:
    positional = args.posonlyargs + args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults += args.defaults
    params = [
        _Param(arg.arg, ast.unparse(default) if default is not None else None, "positional")
        for arg, default in zip(positional, defaults, strict=True)
    ]
    if skip_first:
        params = params[1:]  # self or cls
    if args.vararg:
        params.append(_Param(args.vararg.arg, None, "star"))
    params += [
        _Param(arg.arg, ast.unparse(default) if default is not None else None, "keyword")
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    if args.kwarg:
        params.append(_Param(args.kwarg.arg, None, "starstar"))
    return params


def _raised_types(node: Definition) -> list[str]:
    """Exception classes the function raises itself (`raise ValueError(...)`)."""
    names: list[str] = []
    for child in ast.walk(node):
        if isinstance(child, ast.Raise) and child.exc is not None:
            exc = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
            if isinstance(exc, ast.Name | ast.Attribute):
                name = ast.unparse(exc)
                if name not in names and name.rsplit(".", 1)[-1][:1].isupper():
                    names.append(name)
    return names


def _is_generator(node: Definition) -> bool:
    stack: list[ast.AST] = list(node.body)
    while stack:
        child = stack.pop()
        if isinstance(child, ast.Yield | ast.YieldFrom):
            return True
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            stack.extend(ast.iter_child_nodes(child))
    return False


def _returns_none(node: Definition) -> bool:
    return isinstance(node.returns, ast.Constant) and node.returns.value is None


def _call(callee: str, params: list[_Param], node: Definition, *, placeholders: bool) -> str:
    values = [param.placeholder if placeholders else param.variable for param in params]
    call = f"{callee}({', '.join(p.argument(v) for p, v in zip(params, values, strict=True))})"
    generator = _is_generator(node)
    if isinstance(node, ast.AsyncFunctionDef):
        return f"asyncio.run(_collect({call}))" if generator else f"asyncio.run({call})"
    return f"list({call})" if generator else call


class _Skeleton:
    def __init__(self) -> None:
        self.blocks: list[list[str]] = []
        self.uses_asyncio = False
        self.uses_collect = False

    def add_test(
        self, test_name: str, callee: str, node: Definition, *, setup: str | None, bound: bool
    ) -> None:
        """`bound`: the first parameter is self/cls and is not filled in."""
        if isinstance(node, ast.AsyncFunctionDef):
            self.uses_asyncio = True
            self.uses_collect |= _is_generator(node)
        params = _parameters(node.args, skip_first=bound)
        expects = not _returns_none(node)
        columns = [param.variable for param in params] + (["expected"] if expects else [])
        returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
        lines = [f"# {callee}({ast.unparse(node.args)}){returns}"]
        if params:
            row = ", ".join([p.placeholder for p in params] + (["TODO"] if expects else []))
            names = ", ".join(repr(column) for column in columns)
            lines += ["@pytest.mark.parametrize(", f"    ({names},),", "    ["]
            for case_id, what in CASES:
                lines.append(f"        # TODO: {what}")
                lines.append(f"        pytest.param({row}, id={case_id!r}),")
            lines += ["    ],", ")"]
            lines.append(f"def {test_name}({', '.join(columns)}):")
        else:
            lines.append(f"def {test_name}():")
        if setup:
            lines.append(f"    obj = {setup}  # TODO: constructor arguments")
        call = _call(callee, params, node, placeholders=False)
        if not expects:
            lines.append(f"    {call}")
            lines.append(f'    pytest.fail("TODO: assert the effect of {callee}")')
        elif params:
            lines.append(f"    assert {call} == expected")
        else:
            lines.append(f"    assert {call} == TODO  # the expected result")
        for exc in _raised_types(node):
            lines += ["", "", f"def {test_name}_raises_{exc.rsplit('.', 1)[-1].lower()}():"]
            if setup:
                lines.append(f"    obj = {setup}  # TODO: constructor arguments")
            lines.append(f"    with pytest.raises({exc}):  # TODO: arguments that raise it")
            lines.append(f"        {_call(callee, params, node, placeholders=True)}")
        self.blocks.append(lines)

    def add_class(self, node: ast.ClassDef) -> None:
        methods = [
            item
            for item in node.body
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            and not item.name.startswith("_")
        ]
        added = 0
        for method in methods:
            decorators = {ast.unparse(d) for d in method.decorator_list}
            if decorators & {"property", "cached_property", "functools.cached_property"}:
                continue  # an attribute, not a call
            on_class = bool(decorators & {"staticmethod", "classmethod"})
            self.add_test(
                f"test_{node.name}_{method.name}",
                f"{node.name}.{method.name}" if on_class else f"obj.{method.name}",
                method,
                setup=None if on_class else f"{node.name}(...)",
                bound="staticmethod" not in decorators,
            )
            added += 1
        if not added:
            self.blocks.append(
                [
                    f"def test_{node.name}():",
                    f"    obj = {node.name}(...)  # TODO: constructor arguments",
                    f"    assert isinstance(obj, {node.name})",
                ]
            )


def _import_order(name: str) -> tuple[int, str]:
    """isort's order by type: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return 0, name
    return (1, name) if name[:1].isupper() else (2, name)


def test_skeleton(source: str, module_name: str) -> str:
    """A pytest module testing the public functions and classes of `source`, importable as
    `module_name` (public: listed in `__all__` if the module has one, else no leading `_`).
    Raises SyntaxError when the source does not parse."""
    tree = parse_cell(source)
    exported = _exported(tree)
    skeleton = _Skeleton()
    imported: list[str] = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if (node.name not in exported) if exported is not None else node.name.startswith("_"):
            continue
        imported.append(node.name)
        if isinstance(node, ast.ClassDef):
            skeleton.add_class(node)
        else:
            skeleton.add_test(f"test_{node.name}", node.name, node, setup=None, bound=False)

    header = [f'"""Tests for {module_name} (a generated skeleton: fill in every TODO)."""', ""]
    if skeleton.uses_asyncio:
        header += ["import asyncio", ""]
    header += ["import pytest", ""]
    if imported:
        names = ", ".join(sorted(imported, key=_import_order))
        header.append(f"from {module_name} import {names}")
    else:
        header.append(f"import {module_name}  # noqa: F401  (no public functions found)")
    if any("TODO" in line and "# TODO" not in line for b in skeleton.blocks for line in b):
        header += ["", "TODO = object()  # a placeholder that equals nothing: replace each use"]
    if skeleton.uses_collect:
        header += ["", "", "async def _collect(agen):", "    return [item async for item in agen]"]
    body = [line for block in skeleton.blocks for line in ["", "", *block]]
    return "\n".join(header + body).rstrip() + "\n"


test_skeleton.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name
