"""POST /rubberduck/api/review/cell through a real server: a cell's static findings with
their checked fixes, the hash of what was reviewed, and clear refusals."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from rubberduck_jupyter.review.cells import parse_cell


async def _review(jp_fetch: Any, body: Any, **kwargs: Any) -> Any:
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return await jp_fetch("rubberduck", "api", "review", "cell", method="POST", body=raw, **kwargs)


CELL = "import os\nxs = [3, 1]\nxs = xs.sort()\nprint(f'done')\nmodel.eval\n%time total = sum(xs)\n"


async def test_a_cells_findings_come_with_fixes_that_parse(jp_fetch: Any) -> None:
    answer = json.loads((await _review(jp_fetch, {"source": CELL})).body)
    assert answer["source_hash"] == hashlib.sha256(CELL.encode()).hexdigest()[:32]
    by_code = {f["code"]: f for f in answer["findings"]}
    assert {"F401", "RD103", "F541", "F821", "RD104"} <= set(by_code)
    assert by_code["F821"]["severity"] == "error" and by_code["F821"]["line"] == 5
    assert by_code["F821"]["replacement"] is None  # no known edit: no change offered
    fixed = by_code["RD103"]["replacement"]
    assert fixed == CELL.replace("xs = xs.sort()", "xs.sort()")
    assert by_code["RD104"]["replacement"] == CELL.replace("model.eval", "model.eval()")
    assert by_code["F541"]["replacement"] == CELL.replace("f'done'", "'done'")
    # The magic line is kept as the user wrote it, and every offered change parses.
    for finding in answer["findings"]:
        if finding["replacement"] is not None:
            assert "%time total = sum(xs)" in finding["replacement"]
            parse_cell(finding["replacement"])


async def test_known_names_are_not_undefined(jp_fetch: Any) -> None:
    body = {"source": "model.eval()\n", "known_names": ["model"]}
    answer = json.loads((await _review(jp_fetch, body)).body)
    assert answer["findings"] == []


async def test_names_the_cells_above_bind_are_not_undefined(jp_fetch: Any) -> None:
    body = {
        "source": "print(df.shape, total)\n",
        "above": ["import pandas as pd", "df = pd.DataFrame()"],
    }
    answer = json.loads((await _review(jp_fetch, body)).body)
    assert [f["message"] for f in answer["findings"]] == ["Undefined name `total`"]


async def test_a_syntax_error_is_one_finding_and_no_fix(jp_fetch: Any) -> None:
    answer = json.loads((await _review(jp_fetch, {"source": "def f(:\n    pass\n"})).body)
    assert [(f["code"], f["severity"], f["replacement"]) for f in answer["findings"]] == [
        ("SyntaxError", "error", None)
    ]


async def test_a_50_line_cell_is_reviewed_quickly(jp_fetch: Any) -> None:
    source = "".join(
        f"value_{n} = [{n}, {n + 1}]\nvalue_{n} = value_{n}.sort()\n" for n in range(25)
    )
    started = time.perf_counter()
    answer = json.loads((await _review(jp_fetch, {"source": source})).body)
    elapsed = time.perf_counter() - started
    assert len([f for f in answer["findings"] if f["code"] == "RD103"]) == 25
    assert elapsed < 2.0  # generous on a shared machine; benchmarks/review_cell.py measures


async def test_unauthenticated_requests_are_refused(jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await _review(jp_fetch, {"source": "x = 1"}, headers={"Authorization": ""})
    assert refused.value.code == 403


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ("not json", "bad_json", ""),
        ("[1, 2]", "bad_frame", "must be a JSON object"),
        ({}, "bad_frame", "'source' must be"),
        ({"source": 3}, "bad_frame", "'source' must be"),
        ({"source": "x", "known_names": "x"}, "bad_frame", "'known_names' must be"),
        ({"source": "x", "known_names": [1]}, "bad_frame", "'known_names' must be"),
        ({"source": "x", "known_names": ["a"] * 20_001}, "bad_frame", "At most 20000"),
        ({"source": "x", "above": "x = 1"}, "bad_frame", "'above' must be"),
        ({"source": "x", "above": [None]}, "bad_frame", "'above' must be"),
    ],
)
async def test_bad_bodies_are_refused_clearly(
    jp_fetch: Any, body: Any, code: str, says: str
) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await _review(jp_fetch, body)
    assert refused.value.code == 400
    error = json.loads(refused.value.response.body)
    assert error["code"] == code
    assert says in error["message"]


async def test_an_oversized_body_is_refused(jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await _review(jp_fetch, {"source": "x = 1\n" * 400_000})
    assert refused.value.code == 413
    assert json.loads(refused.value.response.body)["code"] == "frame_too_large"
