"""POST /rubberduck/api/review/notebook: cross-cell findings for the cells a client sends,
and, with ``"static"``, every cell's static findings in the same pass (review/batch.py).
POST /rubberduck/api/review/cell: one cell's static findings, each with its checked fix.

The client sends what its notebook model holds (unsaved edits included), so nothing is read
from disk here: no path to check, and the review matches what the user sees. Resource
``rubberduck:chat`` (write), like the rest of the assistant's answers, so a kernel's token
may use it too: it reads nothing of anyone's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..domain.models import content_hash
from ..protocol import ErrorCode
from ..review.notebook import NotebookCell, analyze_notebook
from .base import RubberDuckAPIHandler, RubberDuckError, error_body

# A notebook with more code cells than this is not one a person reviews at once; the body
# size is bounded by max_frame_bytes already.
MAX_CELLS = 5_000
# Names of the cells above and the kernel's variables; more is not a notebook a person wrote.
MAX_KNOWN_NAMES = 20_000
# Notebook static passes at once, per server: 2 cores, and each pass's ruff uses both.
MAX_STATIC_PASSES = 2


def parse_cells(body: dict[str, Any]) -> list[NotebookCell]:
    """`{"cells": [{"index", "source", "execution_count"?, "failed"?}, ...]}`, checked."""
    raw = body.get("cells")
    if not isinstance(raw, list):
        raise RubberDuckError(400, ErrorCode.BAD_FRAME, "'cells' must be a list of code cells.")
    if len(raw) > MAX_CELLS:
        raise RubberDuckError(
            400, ErrorCode.BAD_FRAME, f"At most {MAX_CELLS} cells can be reviewed at once."
        )
    cells = []
    for n, cell in enumerate(raw):
        if not isinstance(cell, dict):
            raise RubberDuckError(400, ErrorCode.BAD_FRAME, f"cells[{n}] must be an object.")
        index, source = cell.get("index"), cell.get("source")
        count, failed = cell.get("execution_count"), cell.get("failed", False)
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise RubberDuckError(
                400, ErrorCode.BAD_FRAME, f"cells[{n}].index must be an integer of at least 0."
            )
        if not isinstance(source, str):
            raise RubberDuckError(400, ErrorCode.BAD_FRAME, f"cells[{n}].source must be text.")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
            raise RubberDuckError(
                400, ErrorCode.BAD_FRAME, f"cells[{n}].execution_count must be an integer or null."
            )
        if not isinstance(failed, bool):
            raise RubberDuckError(
                400, ErrorCode.BAD_FRAME, f"cells[{n}].failed must be true or false."
            )
        cells.append(NotebookCell(index, source, count, failed))
    return cells


def parse_static(body: dict[str, Any], n_cells: int) -> range | None:
    """`"static"`: absent or false (cross-cell findings only, as before), true (every
    cell), or `{"start": int, "stop": int}`, the positions in `cells` to review (a slice,
    so a client can show progress and cancel between slices of a long notebook)."""
    raw = body.get("static", False)
    if raw is False:
        return None
    if raw is True:
        return range(n_cells)
    if isinstance(raw, dict) and set(raw) == {"start", "stop"}:
        start, stop = raw["start"], raw["stop"]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stop)) and (
            0 <= start <= stop <= n_cells
        ):
            return range(start, stop)
    raise RubberDuckError(
        400,
        ErrorCode.BAD_FRAME,
        '\'static\' must be true, false, or {"start": int, "stop": int} with '
        f"0 <= start <= stop <= {n_cells} (the number of cells sent).",
    )


def parse_known_names(body: dict[str, Any]) -> list[str]:
    names = body.get("known_names", [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise RubberDuckError(400, ErrorCode.BAD_FRAME, "'known_names' must be a list of names.")
    if len(names) > MAX_KNOWN_NAMES:
        raise RubberDuckError(
            400, ErrorCode.BAD_FRAME, f"At most {MAX_KNOWN_NAMES} known names can be sent."
        )
    return names


class NotebookReviewHandler(RubberDuckAPIHandler):
    """Cross-cell findings; with `static`, each cell's static findings too (the shape of
    `POST /review/cell`'s answer, with the cell's `index`), equal to what the per-cell
    endpoint answers for that cell with the code cells before it as `above`.

    Static passes in flight are counted: each runs ruff on both cores for up to ~0.1 s a
    100 cells, so a third at once would only queue behind the two in the thread pool; it
    is answered 429 `busy` with Retry-After instead (the house rule: overload is answered,
    never buffered). Cross-cell-only requests (~0.14 ms a cell) are not counted.
    """

    auth_resource = "rubberduck:chat"
    # Per server process; the event loop is the only writer, so no lock is needed.
    static_in_flight = 0

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        cells = parse_cells(body)
        static = parse_static(body, len(cells))
        cross_cell = body.get("cross_cell", True)
        if not isinstance(cross_cell, bool) or (static is None and not cross_cell):
            raise RubberDuckError(
                400,
                ErrorCode.BAD_FRAME,
                "'cross_cell' must be true or false, and false only with 'static'.",
            )
        analyzer = self.rubberduck.plugins.analyzer()  # None: static-review is denied
        if static is None:
            # Parsing every cell is ~0.14 ms a cell here: a big notebook would hold the loop.
            findings = await asyncio.to_thread(analyze_notebook, cells) if analyzer else []
            self.finish({"cells": len(cells), "findings": [f.to_json() for f in findings]})
            return
        names = parse_known_names(body)
        if NotebookReviewHandler.static_in_flight >= MAX_STATIC_PASSES:
            # Written here, not raised: tornado's send_error clears headers (Retry-After).
            self.set_status(429)
            self.set_header("Retry-After", "1")
            self.set_header("Content-Type", "application/json")
            message = f"{MAX_STATIC_PASSES} notebook reviews are running; retry in a second."
            self.finish(error_body(ErrorCode.BUSY, message))
            return
        NotebookReviewHandler.static_in_flight += 1
        try:
            if analyzer is not None:
                review = await asyncio.to_thread(
                    analyzer.review_notebook,
                    cells,
                    known_names=names,
                    static=static,
                    cross_cell=cross_cell,
                )
                notebook = [f.to_json() for f in review.notebook]
                per_cell = [(pos, r.to_json()) for pos, r in review.static]
            else:
                notebook, per_cell = [], [(pos, []) for pos in static]
            entries = []
            for position, found in per_cell:
                cell = cells[position]
                found += await self.rubberduck.plugins.augment(
                    cell.source, found, {"kind": "cell", "cell_index": cell.index}
                )
                entries.append(
                    {
                        "index": cell.index,
                        "source_hash": content_hash(cell.source),
                        "findings": found,
                    }
                )
        finally:
            NotebookReviewHandler.static_in_flight -= 1
        self.rubberduck.plugins.analysis_done(
            "notebook", len(notebook) + sum(len(e["findings"]) for e in entries)
        )
        self.finish({"cells": len(cells), "findings": notebook, "static": entries})


def parse_cell_body(body: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    """`{"source": str, "known_names"?: [str, ...], "above"?: [str, ...]}`, checked.

    `above` is the source of the code cells above: the names they bind are not undefined
    here (a cell reviewed alone would otherwise flag every `df` made two cells up)."""
    source, above = body.get("source"), body.get("above", [])
    if not isinstance(source, str):
        raise RubberDuckError(400, ErrorCode.BAD_FRAME, "'source' must be the cell's text.")
    names = parse_known_names(body)
    if not isinstance(above, list) or not all(isinstance(cell, str) for cell in above):
        raise RubberDuckError(
            400, ErrorCode.BAD_FRAME, "'above' must be a list of the cells' sources."
        )
    if len(above) > MAX_CELLS:
        raise RubberDuckError(
            400, ErrorCode.BAD_FRAME, f"At most {MAX_CELLS} cells can be sent above."
        )
    return source, names, above


class CellReviewHandler(RubberDuckAPIHandler):
    """The findings widget under a cell shows this at once, before any model answers.

    `source_hash` is the content hash of the source reviewed: the client keeps it to tell
    when the cell changed (its findings go stale) and checks it again before a fix lands.
    """

    auth_resource = "rubberduck:chat"

    @web.authenticated
    @authorized
    async def post(self) -> None:
        source, names, above = parse_cell_body(self.json_body())
        plugins = self.rubberduck.plugins
        analyzer = plugins.analyzer()  # None: the built-in static-review plugin is denied
        found: list[dict[str, Any]] = []
        if analyzer is not None:
            review = await asyncio.to_thread(
                analyzer.review_cell, source, known_names=names, above=above
            )
            found = review.to_json()
        # Plugins' findings (analysis_augment) after ours, each tagged with its plugin.
        found += await plugins.augment(source, found, {"kind": "cell"})
        plugins.analysis_done("cell", len(found))
        self.finish({"source_hash": content_hash(source), "findings": found})
