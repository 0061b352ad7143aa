"""A notebook's static review in one pass: every cell's findings, as `review_cell` gives
them one request at a time, plus the cross-cell findings, from one parse per cell and
one ruff process per `static.RUFF_BATCH_FILES` cells.

Why a pass of its own: the front end's "review the whole notebook" sent one request per
code cell, each with the sources of the cells above. On 2 cores (2026-12-02) 100 pdsh
cells took 8.76 s over REST (4.95 s in process): ~100 ruff processes (7-50 ms each,
depending on load) and ~5,000 parses of cells above (cell k re-read all k-1 before it).
Here each cell is parsed once for the names it binds (shared with the cross-cell analysis,
`notebook.parse_cells`), the names above cell k are a lookup of "first bound at a position
before k" (no set is copied per cell), and ruff runs once over all cells as files.

The findings are those of `review_cell(source, known_names=..., above=<code cells above>)`
for each cell, finding for finding (tests/unit/test_review_batch.py checks it on the pdsh
notebooks). Blocking: the server calls it from a thread.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from .cellfix import CellReview, with_fixes
from .notebook import CellFinding, NotebookCell, analyze_parsed, parse_cells
from .static import (
    IPYTHON_NAMES,
    RUFF_TIMEOUT_S,
    finish_python,
    names_bound,
    prepare_python,
    run_ruff_many,
)


@dataclass(frozen=True, slots=True)
class NotebookReview:
    # Parallel to the reviewed range of cells: (position in the cells given, its review).
    static: list[tuple[int, CellReview]]
    notebook: list[CellFinding]  # the cross-cell findings of all the cells given


class NamesAbove:
    """The names known at one position of the notebook: bound by a cell above it, or given
    (kernel variables, IPython's own). A `Container` for `static.finish_python`, which only
    asks `name in names`: O(1) per ask, nothing copied per cell."""

    __slots__ = ("_extra", "_first", "_position")

    def __init__(self, first: dict[str, int], position: int, extra: frozenset[str]) -> None:
        self._first, self._position, self._extra = first, position, extra

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        first = self._first.get(name)
        return (first is not None and first < self._position) or name in self._extra


def first_bindings(binds: Sequence[Collection[str]]) -> dict[str, int]:
    """name -> position of the first cell that binds it."""
    first: dict[str, int] = {}
    for position, names in enumerate(binds):
        for name in names:
            first.setdefault(name, position)
    return first


def review_notebook(
    cells: Sequence[NotebookCell],
    *,
    known_names: Collection[str] = (),
    static: range | None = None,
    cross_cell: bool = True,
    timeout: float = RUFF_TIMEOUT_S,
) -> NotebookReview:
    """The static review of the cells at the positions in `static` (all of them when None;
    an empty range for none), each with the code cells before it as the cells above, and,
    with `cross_cell`, the cross-cell findings of all `cells`.

    `static` lets a client review a long notebook in slices (progress, cancel) and still
    send the whole notebook each time: the names above come from every cell before the
    slice, and only the slice pays for ruff. A slice that is not the last asks no
    `cross_cell`: then the cells above are not parsed again but looked up
    (`static.names_bound`, remembered from the slice before). Measured 2026-12-03 on the
    1,145 pdsh cells as one notebook: 12 slices of 100 took 4.8 s with the full analysis
    each time, one request 1.0 s."""
    positions = range(len(cells)) if static is None else static
    stop = positions.stop if positions else 0
    parsed = parse_cells(cells) if cross_cell else []
    # The cross-cell parse gives the same names as `defined_names` (both mask, both take
    # the top-level bindings): one parse a cell when both are wanted.
    if cross_cell:
        binds: list[Collection[str]] = [p.binds for p in parsed[:stop]]
    else:
        binds = [names_bound(cell.source) for cell in cells[:stop]]
    first = first_bindings(binds)
    extra = frozenset(known_names) | IPYTHON_NAMES
    prepared = [prepare_python(cells[k].source, cell=True) for k in positions]
    checked = [p.source for p in prepared if p.tree is not None]
    diagnostics = iter(run_ruff_many(checked, timeout=timeout) if checked else [])
    reviews: list[tuple[int, CellReview]] = []
    for position, prep in zip(positions, prepared, strict=True):
        found = (
            prep.early
            if prep.tree is None
            else finish_python(prep, next(diagnostics), NamesAbove(first, position, extra))
        )
        reviews.append((position, with_fixes(cells[position].source, found)))
    return NotebookReview(reviews, analyze_parsed(parsed) if cross_cell else [])
