"""The bundled plugins (/doc, /tests, pandas-review) end to end in a real server: loaded
from our own entry points, answering through the fake provider, reviewing a real cell."""

from __future__ import annotations

import ast
import json
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)

CELL = "def area(r):\n    return 3.14159 * r**2\n"
DOCSTRING_REPLY = (
    "```\nThe area of a circle.\n\nParameters\n----------\nr : float\n    Radius.\n```"
)
TESTS_REPLY = (
    "Tests:\n\n```python\nfrom math import isclose\n\n\ndef test_area_of_one():\n"
    "    assert isclose(area(1), 3.14159)\n```\n"
)


async def _turn(ws: Any, read_turn: Any, msg_id: str, text: str, context: dict[str, Any]) -> Any:
    frame = {"type": "chat", "id": msg_id, "conversation_id": "c", "text": text, "context": context}
    ws.write_message(json.dumps(frame))
    return await read_turn(ws, msg_id)


async def test_the_bundled_plugins_are_loaded_from_our_entry_points(jp_fetch: Any) -> None:
    rows = json.loads((await jp_fetch("rubberduck", "api", "plugins")).body)["plugins"]
    by_name = {r["name"]: r for r in rows}
    for name in ("doc", "tests", "pandas-review"):
        assert by_name[name]["state"] == "loaded", by_name[name]
        assert by_name[name]["source"].startswith("entry point")
    assert by_name["doc"]["permissions"] == ["call_model", "propose_edits", "read_index"]
    assert by_name["pandas-review"]["permissions"] == []


async def test_doc_and_tests_answer_with_suggestions_that_parse(
    jp_ws_fetch: Any, read_turn: Any, fake_llm: Any
) -> None:
    context = {"notebook_path": "geo.ipynb", "active_cell": CELL, "cell_index": 2}
    ws = await jp_ws_fetch("rubberduck", "ws")
    await ws.read_message()
    fake_llm.set_replies([DOCSTRING_REPLY])
    frames = await _turn(ws, read_turn, "d1", "/doc area", context)
    assert next(f for f in frames if f["type"] == "route")["engine"] == "doc"
    (suggestion,) = [f["suggestion"] for f in frames if f["type"] == "suggestion"]
    assert suggestion["mode"] == "replace" and suggestion["target"]["cell_index"] == 2
    proposed = suggestion["proposed"]
    assert proposed.startswith('def area(r):\n    """The area of a circle.')
    assert proposed.rstrip().endswith("return 3.14159 * r**2")
    assert ast.get_docstring(ast.parse(proposed).body[0]).startswith("The area of a circle.")
    assert "area" in fake_llm.requests[-1]["messages"][-1]["content"]

    fake_llm.set_replies([TESTS_REPLY])
    frames = await _turn(ws, read_turn, "t1", "/tests", context)
    (suggestion,) = [f["suggestion"] for f in frames if f["type"] == "suggestion"]
    assert suggestion["mode"] == "insert_after"
    ast.parse(suggestion["proposed"])
    assert "def test_area_of_one" in suggestion["proposed"]
    # checked=True: the test code went through the self-correction check, which knows
    # what the cell defines (`area` is not undefined there): one clean round, no re-prompt.
    corrections = [f for f in frames if f["type"] == "correction"]
    assert [(c["round"], c["fixed"]) for c in corrections] == [(0, True)]
    assert len(fake_llm.requests) == 2  # /doc's call and this one
    assert frames[-1]["type"] == "done"
    ws.close()


async def test_pandas_review_adds_located_findings_to_a_cell_review(jp_fetch: Any) -> None:
    source = "import pandas as pd\ndf = pd.DataFrame({'a': [1]})\ndf.dropna(inplace=True)\n"
    body = json.dumps({"source": source})
    answer = json.loads(
        (await jp_fetch("rubberduck", "api", "review", "cell", method="POST", body=body)).body
    )
    mine = [f for f in answer["findings"] if f.get("plugin") == "pandas-review"]
    assert [(f["code"], f["line"], f["source"]) for f in mine] == [("PD002", 3, "plugin")]
    assert mine[0]["replacement"] == source.replace("df.dropna(inplace=True)", "df = df.dropna()")
