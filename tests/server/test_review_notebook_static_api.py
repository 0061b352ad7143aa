"""POST /rubberduck/api/review/notebook with "static" through a real server: every cell's
static findings in one request, equal to the per-cell endpoint's answers for the same
cells (real pdsh notebooks, read at test time), off the event loop, bounded, and refused
clearly when the body is wrong, too big, unauthenticated or the server is busy."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from rubberduck_jupyter.domain.models import content_hash
from rubberduck_jupyter.handlers.review import MAX_STATIC_PASSES, NotebookReviewHandler
from rubberduck_jupyter.review import static
from rubberduck_jupyter.review.notebook import cells_from_notebook

PDSH = Path("/work/shared/corpora/pdsh")
if not PDSH.is_dir():
    PDSH = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "pdsh"
needs_pdsh = pytest.mark.skipif(not PDSH.is_dir(), reason="pdsh corpus not checked out")


async def _post(jp_fetch: Any, what: str, body: Any, **kwargs: Any) -> Any:
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return await jp_fetch("rubberduck", "api", "review", what, method="POST", body=raw, **kwargs)


def _pdsh_cells(name: str) -> list[dict[str, Any]]:
    notebook = json.loads((PDSH / name).read_text(encoding="utf-8"))
    return [
        {"index": c.index, "source": c.source, "execution_count": c.execution_count}
        for c in cells_from_notebook(notebook)
    ]


@needs_pdsh
@pytest.mark.parametrize(
    ("name", "order"),
    [("06.00-Figure-Code.ipynb", "as-is"), ("05.08-Random-Forests.ipynb", "reversed")],
)
async def test_one_request_answers_what_the_per_cell_requests_answer(
    jp_fetch: Any, name: str, order: str
) -> None:
    cells = _pdsh_cells(name)
    if order == "reversed":  # names read before the cells that bind them: F821s
        cells = cells[::-1]
    answer = json.loads((await _post(jp_fetch, "notebook", {"cells": cells, "static": True})).body)
    cross_only = json.loads((await _post(jp_fetch, "notebook", {"cells": cells})).body)
    assert answer["findings"] == cross_only["findings"]
    assert "static" not in cross_only  # the old shape is unchanged without "static"
    assert [entry["index"] for entry in answer["static"]] == [c["index"] for c in cells]
    sources = [cell["source"] for cell in cells]
    codes: set[str] = set()
    for position, entry in enumerate(answer["static"]):
        body = {"source": sources[position], "above": sources[:position]}
        alone = json.loads((await _post(jp_fetch, "cell", body)).body)
        assert entry["source_hash"] == alone["source_hash"] == content_hash(sources[position])
        assert entry["findings"] == alone["findings"], (name, position)
        codes |= {finding["code"] for finding in alone["findings"]}
    assert codes >= ({"F821"} if order == "reversed" else {"C901", "B006", "F401"})


async def test_a_slice_is_reviewed_with_the_names_of_the_cells_above(jp_fetch: Any) -> None:
    cells = [
        {"index": 0, "source": "import pandas as pd"},
        {"index": 2, "source": "df = pd.DataFrame()\nxs = [2, 1]", "execution_count": 2},
        {"index": 3, "source": "xs = xs.sort()\nprint(df, nope)"},
        {"index": 5, "source": "print(later)", "execution_count": 1},
    ]
    body = {"cells": cells, "static": {"start": 2, "stop": 3}, "known_names": ["nope"]}
    answer = json.loads((await _post(jp_fetch, "notebook", body)).body)
    assert answer["cells"] == 4
    (entry,) = answer["static"]
    assert entry["index"] == 3
    assert [(f["code"], f["line"]) for f in entry["findings"]] == [("RD103", 1)]
    assert entry["findings"][0]["replacement"] == "xs.sort()\nprint(df, nope)"
    # The cross-cell findings still cover every cell sent, the slice's or not.
    assert [(f["cell"], f["code"]) for f in answer["findings"]] == [(5, "NB102"), (5, "NB103")]
    # A slice that is not the last may skip them; its static findings stay the same.
    quiet = json.loads((await _post(jp_fetch, "notebook", {**body, "cross_cell": False})).body)
    assert quiet["findings"] == [] and quiet["static"] == answer["static"]


def _slow_ruff(tmp_path: Path, seconds: float) -> str:
    """The real ruff, started `seconds` late: a pass that takes long enough to watch."""
    script = tmp_path / "slow-ruff"
    script.write_text(f'#!/bin/sh\nsleep {seconds}\nexec "{static._ruff_binary()}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


CELLS = [{"index": n, "source": f"v_{n} = [{n}]\nv_{n} = v_{n}.sort()"} for n in range(20)]


async def test_the_pass_runs_off_the_event_loop(
    jp_fetch: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = _slow_ruff(tmp_path, 1.5)
    monkeypatch.setattr(static, "_ruff_binary", lambda: slow)
    started = time.perf_counter()
    review = asyncio.ensure_future(_post(jp_fetch, "notebook", {"cells": CELLS, "static": True}))
    await asyncio.sleep(0.2)
    await jp_fetch("api", "status")  # answered while ruff runs
    answered = time.perf_counter() - started
    assert not review.done() and answered < 1.5
    answer = json.loads((await review).body)
    assert [[f["code"] for f in e["findings"]] for e in answer["static"]] == [["RD103"]] * 20


async def test_a_third_pass_at_once_is_answered_busy(
    jp_fetch: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = _slow_ruff(tmp_path, 1.5)
    monkeypatch.setattr(static, "_ruff_binary", lambda: slow)
    body = {"cells": CELLS, "static": True}
    running = [asyncio.ensure_future(_post(jp_fetch, "notebook", body)) for _ in range(2)]
    deadline = time.monotonic() + 10
    while NotebookReviewHandler.static_in_flight < MAX_STATIC_PASSES:
        assert time.monotonic() < deadline, "the two passes never started"
        await asyncio.sleep(0.02)
    with pytest.raises(HTTPClientError) as refused:
        await _post(jp_fetch, "notebook", body)
    assert refused.value.code == 429
    assert refused.value.response.headers["Retry-After"] == "1"
    assert json.loads(refused.value.response.body)["code"] == "busy"
    # Cross-cell-only reviews are cheap and not counted: still answered.
    assert (await _post(jp_fetch, "notebook", {"cells": CELLS})).code == 200
    for done in await asyncio.gather(*running):
        assert done.code == 200
    assert NotebookReviewHandler.static_in_flight == 0
    assert (await _post(jp_fetch, "notebook", body)).code == 200


async def test_unauthenticated_requests_are_refused(jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await _post(
            jp_fetch,
            "notebook",
            {"cells": CELLS, "static": True},
            headers={"Authorization": ""},
        )
    assert refused.value.code == 403
    assert json.loads(refused.value.response.body)["code"] == "forbidden"


ONE = [{"index": 0, "source": "x = 1"}]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"cells": ONE, "static": "yes"}, "'static' must be"),
        ({"cells": ONE, "static": 1}, "'static' must be"),
        ({"cells": ONE, "static": {"start": 0}}, "'static' must be"),
        ({"cells": ONE, "static": {"start": 0, "stop": 1, "step": 1}}, "'static' must be"),
        ({"cells": ONE, "static": {"start": 1, "stop": 0}}, "0 <= start <= stop <= 1"),
        ({"cells": ONE, "static": {"start": 0, "stop": 2}}, "0 <= start <= stop <= 1"),
        ({"cells": ONE, "static": {"start": -1, "stop": 1}}, "'static' must be"),
        ({"cells": ONE, "static": {"start": False, "stop": 1}}, "'static' must be"),
        ({"cells": ONE, "static": True, "cross_cell": "no"}, "'cross_cell' must be"),
        ({"cells": ONE, "cross_cell": False}, "false only with 'static'"),
        ({"cells": ONE, "static": True, "known_names": "x"}, "'known_names' must be"),
        ({"cells": ONE, "static": True, "known_names": [3]}, "'known_names' must be"),
        ({"cells": ONE, "static": True, "known_names": ["a"] * 20_001}, "At most 20000"),
        ({"cells": "x = 1", "static": True}, "'cells' must be a list"),
        ({"cells": [{"index": 0, "source": None}], "static": True}, "source must be text"),
        ({"cells": [{"index": 0, "source": ""}] * 5001, "static": True}, "At most 5000 cells"),
    ],
)
async def test_bad_bodies_are_refused_clearly(jp_fetch: Any, body: Any, says: str) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await _post(jp_fetch, "notebook", body)
    assert refused.value.code == 400
    error = json.loads(refused.value.response.body)
    assert error["code"] == "bad_frame"
    assert says in error["message"]


async def test_an_oversized_notebook_is_refused(jp_fetch: Any) -> None:
    cells = [{"index": n, "source": "x = 1\n" * 1000} for n in range(50)]  # ~300 KB
    with pytest.raises(HTTPClientError) as refused:
        await _post(jp_fetch, "notebook", {"cells": cells, "static": True})
    assert refused.value.code == 413
    error = json.loads(refused.value.response.body)
    assert error["code"] == "frame_too_large" and "limit of" in error["message"]
