"""Review of a whole notebook: problems no single cell shows, found across cells.

A cell reviewed alone cannot tell that it reads a name only a cell *below* defines (it
works only when run out of order), that the kernel ran cells in another order than the
page shows, that it reads a name no cell defines any more (hidden state: a deleted cell,
or a cell that was edited after it ran), or that an import sits in the middle of the
analysis. Those need the notebook, and no model: this is plain `ast` work, linear in the
notebook's size (every cell is parsed once).

Codes (`Finding.code`, source "ast"):
- NB101 (warning): a name read before any cell above defines it, while a cell below does.
- NB102 (warning): a name no cell defines before it is read (none above, none below, the
  cell itself only after the read), in a cell that ran: it comes from hidden state and
  breaks on Restart & Run All.
- NB103 (warning): the cells ran out of order (execution counts not rising top to bottom).
- NB104 (info): an import below the first code that is not an import.

Names bound inside functions, classes, lambdas and comprehensions are their own scope and
are not counted; a function body's reads happen when it is called, so they are not checked.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .cells import mask_magics, parse_python
from .findings import Finding
from .static import bound_names, is_ipython_name

_BUILTINS = frozenset(dir(builtins)) | {"__file__", "__name__"}


@dataclass(frozen=True, slots=True)
class NotebookCell:
    """A code cell: `index` is its position among all the notebook's cells (what the UI
    shows), `execution_count` None when it never ran, `failed` when its last run raised."""

    index: int
    source: str
    execution_count: int | None = None
    failed: bool = False


@dataclass(frozen=True, slots=True)
class CellFinding:
    cell: int  # NotebookCell.index of the cell the finding is on
    finding: Finding
    related_cell: int | None = None  # the other cell involved, when there is one

    def to_json(self) -> dict[str, Any]:
        return {"cell": self.cell, "related_cell": self.related_cell, **self.finding.to_json()}


def cells_from_notebook(notebook: dict[str, Any]) -> list[NotebookCell]:
    """The code cells of an nbformat-4 notebook (as JSON), with their positions."""
    cells = []
    for index, cell in enumerate(notebook.get("cells") or []):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(str(part) for part in source)
        outputs = cell.get("outputs") or []
        count = cell.get("execution_count")
        cells.append(
            NotebookCell(
                index=index,
                source=str(source),
                execution_count=count if isinstance(count, int) else None,
                failed=any(
                    isinstance(o, dict) and o.get("output_type") == "error" for o in outputs
                ),
            )
        )
    return cells


class _Reads(ast.NodeVisitor):
    """Module-level name loads in source order, without nested scopes' own names."""

    def __init__(self) -> None:
        self.reads: list[ast.Name] = []
        self._local: list[set[str]] = []

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load) and not any(node.id in s for s in self._local):
            self.reads.append(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for child in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
            if child is not None:
                self.visit(child)

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for child in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(child)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        args = node.args
        names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
        names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        self._local.append(names)
        self.visit(node.body)
        self._local.pop()

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp) -> None:
        self._scan_comprehension(node.generators, [node.elt])

    visit_ListComp = _comprehension
    visit_SetComp = _comprehension
    visit_GeneratorExp = _comprehension

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._scan_comprehension(node.generators, [node.key, node.value])

    def _scan_comprehension(
        self, generators: list[ast.comprehension], results: Iterable[ast.expr]
    ) -> None:
        self.visit(generators[0].iter)  # evaluated in the enclosing scope
        names: set[str] = set()
        self._local.append(names)
        for number, generator in enumerate(generators):
            if number:
                self.visit(generator.iter)
            names |= {
                n.id
                for n in ast.walk(generator.target)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            }
            for condition in generator.ifs:
                self.visit(condition)
        for result in results:
            self.visit(result)
        self._local.pop()


_COMPOUND = (
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.If,
    ast.With,
    ast.AsyncWith,
    ast.Try,
    ast.TryStar,
    ast.Match,
)


@dataclass
class ParsedCell:
    cell: NotebookCell
    # (name, line, col) read before this cell binds it; None when the cell does not parse.
    reads: list[tuple[str, int, int]] | None
    binds: set[str]
    imports: list[int]  # lines of top-level imports
    other_code: bool  # has a top-level statement that is not an import


def _parse(cell: NotebookCell) -> ParsedCell:
    masked = mask_magics(cell.source)
    if not masked.is_python:
        return ParsedCell(cell, [], set(), [], False)
    try:
        tree = parse_python(masked.source)
    except (SyntaxError, ValueError):
        return ParsedCell(cell, None, set(), [], False)  # per-cell review reports it
    reads: list[tuple[str, int, int]] = []
    bound: set[str] = set()
    imports: list[int] = []
    other = False
    for statement in tree.body:
        visitor = _Reads()
        visitor.visit(statement)
        binds = bound_names([statement])
        # A loop, `with`, `try` or `if` binds names that its own body then reads (`for row
        # in rows: total += row`); per statement, only a simple one reads before it binds.
        own = binds if isinstance(statement, _COMPOUND) else set()
        reads += [
            (n.id, n.lineno, n.col_offset + 1)
            for n in visitor.reads
            if n.id not in bound and n.id not in own
        ]
        bound |= binds
        if isinstance(statement, ast.Import | ast.ImportFrom):
            imports.append(statement.lineno)
        elif not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)):
            other = True  # a docstring-like string is not code
    return ParsedCell(cell, reads, bound, imports, other)


def _known(name: str) -> bool:
    return name in _BUILTINS or is_ipython_name(name)


def parse_cells(cells: Sequence[NotebookCell]) -> list[ParsedCell]:
    """Each cell parsed once (IPython syntax masked), for `analyze_parsed`; `binds` of
    each is also `static.defined_names(cell.source)`, which the batch review uses as the
    names of the cells above instead of parsing every cell again."""
    return [_parse(cell) for cell in cells]


def analyze_notebook(cells: Sequence[NotebookCell]) -> list[CellFinding]:
    """Cross-cell findings, in notebook order (then line)."""
    return analyze_parsed(parse_cells(cells))


def analyze_parsed(parsed: Sequence[ParsedCell]) -> list[CellFinding]:
    """`analyze_notebook` over cells `parse_cells` already parsed."""
    cells = [p.cell for p in parsed]
    binders: dict[str, list[int]] = {}  # name -> positions of the cells binding it, in order
    for position, p in enumerate(parsed):
        for name in p.binds:
            binders.setdefault(name, []).append(position)
    findings: list[CellFinding] = []
    defined_above: set[str] = set()
    seen_code = False
    for position, p in enumerate(parsed):
        told: set[str] = set()
        for name, line, col in p.reads or []:
            if name in defined_above or name in told or _known(name):
                continue
            told.add(name)
            # The first cell below that binds it (this cell binds it only after the read).
            later = next((q for q in binders.get(name, ()) if q > position), None)
            if later is not None:
                other = parsed[later].cell.index
                findings.append(
                    CellFinding(
                        p.cell.index,
                        Finding(
                            "ast",
                            "NB101",
                            f"`{name}` is read here but first defined in cell {other + 1}, "
                            "below: this cell works only when run out of order",
                            line,
                            col,
                            fix=f"move the cell that defines `{name}` above this one",
                        ),
                        related_cell=other,
                    )
                )
            elif p.cell.execution_count is not None and not p.cell.failed:
                findings.append(
                    CellFinding(
                        p.cell.index,
                        Finding(
                            "ast",
                            "NB102",
                            f"`{name}` is read before any cell defines it, yet this cell ran: "
                            "it comes from a deleted or edited cell (hidden state) and fails "
                            "on Restart & Run All",
                            line,
                            col,
                            fix=f"add the code that defines `{name}` back to the notebook",
                        ),
                    )
                )
        defined_above |= p.binds
        if seen_code and p.imports:
            for line in p.imports[:1]:  # once per cell: the fix moves them all
                findings.append(
                    CellFinding(
                        p.cell.index,
                        Finding(
                            "ast",
                            "NB104",
                            "an import in the middle of the notebook: readers and Restart "
                            "& Run All expect imports at the top",
                            line,
                            1,
                            severity="info",
                            fix="move it to the first code cell",
                        ),
                    )
                )
        seen_code = seen_code or p.other_code
    findings += _out_of_order(cells)
    return sorted(findings, key=lambda f: (f.cell, f.finding.line, f.finding.code))


def _out_of_order(cells: Sequence[NotebookCell]) -> list[CellFinding]:
    """One finding per cell that ran before a cell above it (by execution count)."""
    findings = []
    highest: tuple[int, int] | None = None  # (count, cell index) of the latest run above
    for cell in cells:
        count = cell.execution_count
        if count is None:
            continue
        if highest is not None and count < highest[0]:
            findings.append(
                CellFinding(
                    cell.index,
                    Finding(
                        "ast",
                        "NB103",
                        f"this cell ran ([{count}]) before cell {highest[1] + 1} above it "
                        f"([{highest[0]}]): the outputs may not match a top-to-bottom run",
                        1,
                        1,
                        fix="Restart the kernel and run all cells to check",
                    ),
                    related_cell=highest[1],
                )
            )
        if highest is None or count > highest[0]:
            highest = (count, cell.index)
    return findings
