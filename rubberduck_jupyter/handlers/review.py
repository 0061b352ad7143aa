"""POST /rubberduck/api/review/notebook: cross-cell findings for the cells a client sends.
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
from ..review.cellfix import review_cell
from ..review.notebook import NotebookCell, analyze_notebook
from .base import RubberDuckAPIHandler, RubberDuckError

# A notebook with more code cells than this is not one a person reviews at once; the body
# size is bounded by max_frame_bytes already.
MAX_CELLS = 5_000
# Names of the cells above and the kernel's variables; more is not a notebook a person wrote.
MAX_KNOWN_NAMES = 20_000


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


class NotebookReviewHandler(RubberDuckAPIHandler):
    auth_resource = "rubberduck:chat"

    @web.authenticated
    @authorized
    async def post(self) -> None:
        cells = parse_cells(self.json_body())
        # Parsing every cell is ~0.14 ms a cell here: a big notebook would hold the loop.
        findings = await asyncio.to_thread(analyze_notebook, cells)
        self.finish({"cells": len(cells), "findings": [f.to_json() for f in findings]})


def parse_cell_body(body: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    """`{"source": str, "known_names"?: [str, ...], "above"?: [str, ...]}`, checked.

    `above` is the source of the code cells above: the names they bind are not undefined
    here (a cell reviewed alone would otherwise flag every `df` made two cells up)."""
    source, names = body.get("source"), body.get("known_names", [])
    above = body.get("above", [])
    if not isinstance(source, str):
        raise RubberDuckError(400, ErrorCode.BAD_FRAME, "'source' must be the cell's text.")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise RubberDuckError(400, ErrorCode.BAD_FRAME, "'known_names' must be a list of names.")
    if len(names) > MAX_KNOWN_NAMES:
        raise RubberDuckError(
            400, ErrorCode.BAD_FRAME, f"At most {MAX_KNOWN_NAMES} known names can be sent."
        )
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
        review = await asyncio.to_thread(review_cell, source, known_names=names, above=above)
        self.finish({"source_hash": content_hash(source), "findings": review.to_json()})
