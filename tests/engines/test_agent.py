"""The agent engine against the fake provider through the real LLMService: a scripted
multi-step task (list cells, search the project, insert a cell) ending with the right
suggestion pending, invalid arguments corrected, the review gate and its one correction
round, the step / token / time bounds stopping a model that calls tools forever, a read
outside the root refused, Stop mid-loop, and a model without tools falling back."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from engine_harness import Harness, answer_text, frames_of

from rubberduck_jupyter.context.retrieval import Retriever
from rubberduck_jupyter.domain.models import SuggestionStatus
from rubberduck_jupyter.engines.agent import NOTICE_LIMIT, NOTICE_NO_TOOLS, AgentConversation
from rubberduck_jupyter.index.service import IndexService
from rubberduck_jupyter.protocol import ChatContext, ChatRequest, KernelVariable
from rubberduck_jupyter.testing.embedding import HashingEmbedder

CONTEXT = ChatContext(
    notebook_path="sales.ipynb",
    cell_index=1,
    active_cell="revenue = orders.groupby('region')['revenue'].sum()",
    variables=(KernelVariable("orders", "DataFrame", "1200 rows, 4 columns"),),
)


def call(name: str, arguments: Any = None, **extra: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments or {}}], **extra}


def tool_messages(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "tool"]


def _notebook(root: Path) -> None:
    nb = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell(
        "from loaders import load_orders\norders = load_orders('o.csv')"
    )
    first.outputs = [nbformat.v4.new_output("stream", text="loaded 1200 rows\n" + "x" * 5000)]
    nb.cells = [
        first,
        nbformat.v4.new_code_cell("revenue = orders.groupby('region')['revenue'].sum()"),
    ]
    nbformat.write(nb, str(root / "sales.ipynb"))
    (root / "loaders.py").write_text(
        "def load_orders(path):\n"
        '    """Read the orders export and parse its dates."""\n'
        "    return read_csv(path, parse_dates=['ordered_at'])\n"
    )


@pytest.fixture
def project(harness: Harness) -> Harness:
    _notebook(harness.root)
    return harness


async def _indexed(harness: Harness, tmp_path: Path) -> IndexService:
    service = IndexService(
        harness.root, tmp_path / "index.duckdb", embedder_factory=HashingEmbedder
    )
    await service.start()
    for _ in range(600):
        if service.state != "indexing":
            break
        await asyncio.sleep(0.05)
    assert service.state == "idle", service.last_error
    harness.manager.retriever = Retriever(service)
    return service


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "litellm"])
async def test_list_search_insert_ends_with_the_suggestion_pending(
    make_harness: Any, tmp_path: Path, direct: bool
) -> None:
    harness: Harness = make_harness(direct_openai_streaming=direct)
    _notebook(harness.root)
    service = await _indexed(harness, tmp_path)
    new_cell = "by_region = orders.groupby('region')['revenue'].sum()\nby_region.plot.bar()"
    harness.fake.set_replies(
        [
            call("list_cells", content="Looking at the notebook first."),
            call("search_project", {"query": "load orders parse dates"}),
            call("insert_cell", {"after": 2, "source": new_cell, "title": "Plot revenue"}),
            "I suggested a new cell below cell 2 that plots revenue by region.",
        ]
    )
    try:
        frames = await harness.chat("/agent plot revenue by region", context=CONTEXT)
    finally:
        await service.close()
    assert frames_of(frames, "route")[0]["engine"] == "agent"
    assert frames[-1]["type"] == "done" and frames[-1]["finish_reason"] == "stop"
    steps = [(f["step"], f["status"], f["title"]) for f in frames_of(frames, "step")]
    assert [s[:2] for s in steps] == [
        (f"tool-{n}", status) for n in (1, 2, 3) for status in ("started", "finished")
    ]
    assert steps[0][2] == "list_cells()" and steps[4][2].startswith("insert_cell(after=2")
    # The one suggestion: a new cell below cell 2 (index 1), pending the user's approval.
    [suggestion] = frames_of(frames, "suggestion")
    data = suggestion["suggestion"]
    assert data["mode"] == "insert_after" and data["proposed"] == new_cell
    assert data["target"]["path"] == "sales.ipynb" and data["target"]["cell_index"] == 1
    stored = harness.store.sync.suggestions(frames[-1]["conversation_id"])
    assert [s.status for s in stored] == [SuggestionStatus.PROPOSED]
    assert frames_of(frames, "citations"), "search_project cites what it found"
    # Every request offered the tools; each later one carries the transcript so far.
    prompts = harness.prompts()
    assert len(prompts) == 4
    assert {t["function"]["name"] for t in harness.fake.requests[0]["tools"]} >= {
        "list_cells",
        "insert_cell",
        "edit_file",
    }
    second = prompts[1]
    assert (
        second[-2]["role"] == "assistant"
        and second[-2]["tool_calls"][0]["function"]["name"] == "list_cells"
    )
    listing = second[-1]["content"]
    assert second[-1]["tool_call_id"] == second[-2]["tool_calls"][0]["id"]
    assert "## Cell 1 [code]" in listing and "loaded 1200 rows" in listing
    assert "x" * 1000 not in listing  # outputs trimmed
    assert "load_orders" in tool_messages(prompts[2])[-1]
    assert "pending their approval" in tool_messages(prompts[3])[-1]
    assert answer_text(frames).endswith("plots revenue by region.")
    # The transcript the turn keeps: 3 assistant turns with calls, 3 tool results.
    transcript = harness.turns[-1].transcript
    assert [m["role"] for m in transcript] == ["assistant", "tool"] * 3


async def test_invalid_arguments_go_back_to_the_model_then_a_good_call(project: Harness) -> None:
    project.fake.set_replies(
        [
            call("read_cell", '{"cell": '),
            call("read_cell", {"cel": 1}),
            call("read_cell", {"cell": 1}),
            "Cell 1 loads the orders.",
        ]
    )
    frames = await project.chat("/agent what does cell 1 do?", context=CONTEXT)
    assert frames[-1]["type"] == "done"
    results = tool_messages(project.prompts()[-1])
    assert "not valid JSON" in results[0]
    assert "missing required field 'cell'" in results[1] and "unknown field(s) cel" in results[1]
    assert "load_orders('o.csv')" in results[2]
    assert answer_text(frames).endswith("Cell 1 loads the orders.")


async def test_the_review_gate_returns_a_syntax_error_once_and_the_fix_is_offered(
    project: Harness,
) -> None:
    broken = "revenue = orders.groupby('region'['revenue'].sum("
    fixed = "revenue = orders.groupby('region')['revenue'].sum()\nrevenue.head()"
    project.fake.set_replies(
        [
            call("replace_cell", {"cell": 2, "source": broken}),
            call("replace_cell", {"cell": 2, "source": fixed}),
            "Fixed and suggested.",
        ]
    )
    frames = await project.chat("/agent show the head of revenue", context=CONTEXT)
    first_result = tool_messages(project.prompts()[1])[-1]
    assert first_result.startswith("Not offered") and "SyntaxError" in first_result
    [suggestion] = frames_of(frames, "suggestion")
    assert suggestion["suggestion"]["proposed"] == fixed
    assert suggestion["suggestion"]["original"] == CONTEXT.active_cell
    corrections = [(c["round"], c["fixed"]) for c in frames_of(frames, "correction")]
    assert corrections == [(1, False), (1, True)]


async def test_code_that_still_does_not_parse_is_never_offered(project: Harness) -> None:
    project.fake.set_replies(
        [
            call("insert_cell", {"after": 1, "source": "def f(:\n    pass"}),
            call("insert_cell", {"after": 1, "source": "def f(x:\n    pass"}),
            "I could not write it.",
        ]
    )
    frames = await project.chat("/agent add a helper", context=CONTEXT)
    assert frames_of(frames, "suggestion") == []
    assert "still does not parse" in tool_messages(project.prompts()[-1])[-1]
    assert project.store.sync.suggestions(frames[-1]["conversation_id"]) == []


@pytest.mark.parametrize(
    ("bounds", "expected_calls", "says"),
    [
        ({"max_steps": 3}, 3, "step limit (3 model calls)"),
        ({"max_tokens": 1}, 1, "token budget"),
    ],
    ids=["steps", "tokens"],
)
async def test_bounds_stop_a_model_that_calls_tools_forever(
    make_harness: Any, bounds: dict[str, Any], expected_calls: int, says: str
) -> None:
    harness: Harness = make_harness(engine_overrides={"agent": AgentConversation(**bounds)})
    harness.fake.set_replies([call("list_variables")] * 30)
    frames = await harness.chat("/agent loop", context=CONTEXT)
    assert len(harness.fake.requests) == expected_calls
    [notice] = [n for n in frames_of(frames, "notice") if n["code"] == NOTICE_LIMIT]
    assert says in notice["message"]
    assert frames[-1]["type"] == "done"
    assert "Ask again to continue" in answer_text(frames)


async def test_the_time_bound_stops_a_looping_model(make_harness: Any) -> None:
    harness: Harness = make_harness(engine_overrides={"agent": AgentConversation(max_seconds=1.0)})
    harness.fake.update_settings({"chunk_delay": 0.05})
    harness.fake.set_replies([call("list_variables", content="again " * 5)] * 200)
    frames = await harness.chat("/agent loop", context=CONTEXT)
    [notice] = [n for n in frames_of(frames, "notice") if n["code"] == NOTICE_LIMIT]
    assert "time limit (1 s)" in notice["message"]
    assert frames[-1]["type"] == "done"
    assert len(harness.fake.requests) < 200


async def test_read_file_outside_the_root_or_hidden_is_refused(
    project: Harness, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("TOP SECRET OUTSIDE")
    (project.root / ".env").write_text("PASSWORD=hunter2-hidden")
    (project.root / "link.txt").symlink_to(outside)
    project.fake.set_replies(
        [
            call("read_file", {"path": "../outside.txt"}),
            call("read_file", {"path": ".env"}),
            call("read_file", {"path": "link.txt"}),
            call("read_file", {"path": "loaders.py"}),
            "Done reading.",
        ]
    )
    frames = await project.chat("/agent read files", context=CONTEXT)
    assert frames[-1]["type"] == "done"
    results = tool_messages(project.prompts()[-1])
    assert "outside the project" in results[0]
    assert results[1].startswith("Error: cannot read .env")
    assert results[2].startswith("Error: cannot read link.txt")
    assert "def load_orders(path):" in results[3]
    sent = json.dumps(project.fake.requests)
    assert "TOP SECRET" not in sent and "hunter2-hidden" not in sent


async def test_stop_mid_loop_closes_the_stream_and_runs_nothing_more(project: Harness) -> None:
    project.fake.update_settings({"chunk_delay": 0.05})
    project.fake.set_replies([call("list_cells"), "word " * 400, call("list_cells")])
    frames: list[dict[str, Any]] = []

    async def emit(frame: dict[str, Any]) -> None:
        frames.append(frame)

    request = ChatRequest(id="t-stop", conversation_id="c-stop", text="/agent go", context=CONTEXT)
    task = asyncio.ensure_future(project.manager.run_turn("alice", request, emit))
    for _ in range(400):  # until the second model call streams text
        if any(f["type"] == "chunk" and "step" not in f for f in frames):
            break
        await asyncio.sleep(0.025)
    assert [f["status"] for f in frames_of(frames, "step")] == ["started", "finished"]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    for _ in range(200):
        if project.fake.active_streams == 0:
            break
        await asyncio.sleep(0.025)
    assert project.fake.active_streams == 0
    await asyncio.sleep(0.2)
    assert len(project.fake.requests) == 2  # no third call after Stop
    [_question, answer] = project.store.sync.messages("c-stop")
    assert answer.meta["steps"][0]["step"] == "tool-1"


async def test_a_model_without_tools_answers_through_generation(make_harness: Any) -> None:
    harness: Harness = make_harness(model="openai/gpt-3.5-turbo-instruct")
    harness.fake.set_replies(
        ["- one function", "```python\ndef total(xs):\n    return sum(xs)\n```"]
    )
    frames = await harness.chat("/agent write a total function", context=CONTEXT)
    assert frames[-1]["type"] == "done"
    [notice] = [n for n in frames_of(frames, "notice") if n["code"] == NOTICE_NO_TOOLS]
    assert "cannot use tools" in notice["message"]
    assert "tools" not in harness.fake.requests[0]
    [suggestion] = frames_of(frames, "suggestion")
    assert suggestion["suggestion"]["mode"] == "insert_after"


async def test_a_later_turn_continues_from_the_earlier_transcript(project: Harness) -> None:
    project.fake.set_replies([call("read_cell", {"cell": 1}), "Cell 1 loads orders.", "Yes."])
    first = await project.chat(
        "/agent what does cell 1 do?", context=CONTEXT, conversation="c-cont"
    )
    assert first[-1]["type"] == "done"
    # The recorder keeps the transcript with the stored answer (meta["transcript"]).
    _question, answer = project.store.sync.messages("c-cont")
    assert answer.meta["transcript"] == project.turns[-1].transcript
    assert [m["role"] for m in answer.meta["transcript"]] == ["assistant", "tool"]
    await project.chat("/agent and is it saved?", context=CONTEXT, conversation="c-cont")
    sent = project.prompts()[-1]
    roles = [m["role"] for m in sent]
    at = roles.index("tool")
    assert sent[at - 1]["tool_calls"][0]["function"]["name"] == "read_cell"
    assert sent[at]["tool_call_id"] == sent[at - 1]["tool_calls"][0]["id"]
    assert "load_orders('o.csv')" in sent[at]["content"]
    assert sent[at + 1] == {"role": "assistant", "content": "Cell 1 loads orders."}
    assert sent[-1]["role"] == "user" and "is it saved?" in sent[-1]["content"]
