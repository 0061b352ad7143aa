"""The run tools and what they stand on, without a server: the notebook as this turn's
pending suggestions will leave it, run_cell's answer to the model for each outcome, the
approval broker's rules (who may answer, in which order, grants kept bounded), and the
`delete` suggestion mode applied to a real notebook file."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from rubberduck_jupyter.domain.actions import (
    ProjectFiles,
    SuggestionConflict,
    apply_suggestion,
)
from rubberduck_jupyter.domain.models import (
    CodeSuggestion,
    Project,
    SuggestionTarget,
    User,
)
from rubberduck_jupyter.protocol import (
    ApproveRequest,
    ChatContext,
    RunError,
    RunOutput,
    RunResultRequest,
)
from rubberduck_jupyter.sessions import approvals as approvals_module
from rubberduck_jupyter.sessions.approvals import ApprovalBroker, ApprovalRefused
from rubberduck_jupyter.tools.approval import ApprovalAsk, ApprovalKind, ApprovalStatus
from rubberduck_jupyter.tools.base import ToolContext
from rubberduck_jupyter.tools.notebook import expected_cells, parse_cells
from rubberduck_jupyter.tools.run_cell import describe_result, run

NOTEBOOK_CELLS = ["a = 1", "b = a + 1", "print(b)"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    nbformat.write(nb, str(tmp_path / "nb.ipynb"))
    return tmp_path


def files(root: Path) -> ProjectFiles:
    return ProjectFiles(Project.for_root(str(root), "alice"))


def ids(root: Path) -> list[str]:
    return [c["id"] for c in json.loads((root / "nb.ipynb").read_text())["cells"]]


def pending(sid: str, mode: str, index: int, proposed: str, cell_id: str | None = None) -> Any:
    return {
        "id": sid,
        "mode": mode,
        "proposed": proposed,
        "target": {"path": "nb.ipynb", "cell_index": index, "cell_id": cell_id},
    }


def test_expected_cells_lay_this_turns_pending_edits_over_the_saved_ones(root: Path) -> None:
    cell_ids = ids(root)
    suggestions = [
        pending("s-insert", "insert_after", 0, "c = 3", cell_ids[0]),
        pending("s-replace", "replace", 2, "print(b * 2)", cell_ids[2]),
        pending("s-delete", "delete", 1, "", cell_ids[1]),
        pending("s-other", "replace", 0, "elsewhere", None) | {"target": {"path": "x.ipynb"}},
    ]

    async def source() -> list[dict[str, Any]]:
        return suggestions

    ctx = ToolContext(context=ChatContext(notebook_path="nb.ipynb"), pending_suggestions=source)
    cells = parse_cells((root / "nb.ipynb").read_text())
    view = asyncio.run(expected_cells(ctx, "nb.ipynb", cells))
    assert [(c.number, c.source, sids) for c, sids in view] == [
        (1, "a = 1", ()),
        (2, "c = 3", ("s-insert",)),
        (3, "print(b * 2)", ("s-replace",)),
    ]


def result(**changes: Any) -> RunResultRequest:
    values: dict[str, Any] = {"id": "t", "approval_id": "a", "status": "ok"}
    return RunResultRequest(**{**values, **changes})


def test_the_model_reads_outputs_and_the_tracebacks_last_lines_without_colours() -> None:
    ok = describe_result("Cell 3", result(execution_count=4, outputs=(RunOutput("stream", "4\n"),)))
    assert ok == "Cell 3 [4] ran without error.\n\nOutput:\n4"
    traceback = tuple(f"\x1b[0;31mframe {n}\x1b[0m" for n in range(40))
    error = RunError("ValueError", "math domain error", traceback)
    failed = describe_result("Cell 3", result(status="error", error=error))
    assert "Error: ValueError: math domain error" in failed
    assert "frame 39" in failed and "frame 20" not in failed and "\x1b" not in failed
    huge = result(outputs=tuple(RunOutput("stream", "x" * 4000) for _ in range(20)))
    assert len(describe_result("Cell 1", huge)) < 7_000


def test_run_cell_without_a_client_that_runs_says_so(root: Path) -> None:
    ctx = ToolContext(context=ChatContext(notebook_path="nb.ipynb"), files=files(root))
    answer = asyncio.run(run({"cell": 1}, ctx))
    assert not answer.ok and "cannot run cells" in answer.text


def test_run_cell_asks_with_the_cell_as_expected_and_tells_a_decline(root: Path) -> None:
    asked: list[ApprovalAsk] = []

    async def request_approval(ask: ApprovalAsk, *, timeout_s: float) -> Any:
        asked.append(ask)
        from rubberduck_jupyter.tools.approval import ApprovalOutcome

        return ApprovalOutcome(ApprovalStatus.DENIED, decision="deny")

    ctx = ToolContext(
        context=ChatContext(notebook_path="nb.ipynb"),
        files=files(root),
        request_approval=request_approval,
    )
    answer = asyncio.run(run({"cell": 2}, ctx))
    assert "declined to run cell 2" in answer.text and not answer.ok
    assert asked[0].kind is ApprovalKind.RUN and asked[0].cell_index == 2
    assert asked[0].source == "b = a + 1" and asked[0].cell_id == ids(root)[1]


async def _broker_rules() -> None:
    broker = ApprovalBroker()
    frames: list[dict[str, Any]] = []

    async def emit(frame: dict[str, Any]) -> None:
        frames.append(frame)

    channel = broker.channel("alice", "conv", "t1", emit)
    ask = ApprovalAsk(ApprovalKind.RUN, "Run cell 1", "nb.ipynb", 1, None, "a = 1")
    waiting = asyncio.ensure_future(channel.ask(ask, timeout_s=5))
    await asyncio.sleep(0)
    approval_id = frames[0]["approval_id"]
    early = RunResultRequest("t1", approval_id, "ok")
    with pytest.raises(ApprovalRefused, match="not allowed"):
        broker.result("alice", early)  # nothing may have run before the user allowed it
    with pytest.raises(ApprovalRefused) as refused:
        broker.answer("bob", ApproveRequest("t1", approval_id, "allow"))
    assert refused.value.unknown
    broker.answer("alice", ApproveRequest("t1", approval_id, "allow_turn"))
    with pytest.raises(ApprovalRefused, match="already answered"):
        broker.answer("alice", ApproveRequest("t1", approval_id, "deny"))
    await asyncio.sleep(0)
    broker.result("alice", early)
    outcome = await waiting
    assert outcome.status is ApprovalStatus.DONE and outcome.decision == "allow_turn"
    assert [f["type"] for f in frames] == ["approval", "approval.closed"]
    # Allowed for the rest of the turn: the next one is not asked, and closes on its result.
    second = asyncio.ensure_future(channel.ask(ask, timeout_s=5))
    await asyncio.sleep(0)
    assert frames[-1]["auto"] is True
    broker.result("alice", RunResultRequest("t1", frames[-1]["approval_id"], "ok"))
    assert (await second).auto
    assert not broker.allowed_for_conversation("alice", "conv")
    assert broker.snapshot()["open"] == 0


def test_the_broker_takes_answers_in_order_from_their_user_only() -> None:
    asyncio.run(_broker_rules())


def test_conversation_grants_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(approvals_module, "MAX_GRANTS", 3)
    broker = ApprovalBroker()
    for n in range(5):
        broker.grant("alice", f"c{n}")
    assert [broker.allowed_for_conversation("alice", f"c{n}") for n in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]


def _delete(root: Path, original: str, index: int = 1) -> CodeSuggestion:
    return CodeSuggestion(
        id="sug-del",
        user="alice",
        conversation_id="c",
        message_id="m",
        target=SuggestionTarget("nb.ipynb", index, ids(root)[index]),
        original=original,
        proposed="",
        mode="delete",
    )


def test_a_delete_suggestion_removes_the_cell_when_applied(root: Path) -> None:
    applied = asyncio.run(
        apply_suggestion(User("alice"), _delete(root, "b = a + 1"), "sug-del", files(root))
    )
    assert str(applied.status) == "applied"
    cells = nbformat.read(str(root / "nb.ipynb"), as_version=4).cells
    assert [c.source for c in cells] == ["a = 1", "print(b)"]


def test_a_delete_suggestion_is_refused_when_the_cell_changed(root: Path) -> None:
    with pytest.raises(SuggestionConflict):
        asyncio.run(apply_suggestion(User("alice"), _delete(root, "b = 2"), "sug-del", files(root)))
    assert len(nbformat.read(str(root / "nb.ipynb"), as_version=4).cells) == 3


def test_interrupt_kernel_asks_and_reports_the_interrupt() -> None:
    from rubberduck_jupyter.tools.approval import ApprovalOutcome
    from rubberduck_jupyter.tools.interrupt_kernel import run as interrupt

    asked: list[ApprovalAsk] = []

    async def request_approval(ask: ApprovalAsk, *, timeout_s: float) -> Any:
        asked.append(ask)
        return ApprovalOutcome(ApprovalStatus.DONE, decision="allow", result=result())

    ctx = ToolContext(
        context=ChatContext(notebook_path="nb.ipynb"), request_approval=request_approval
    )
    answer = asyncio.run(interrupt({}, ctx))
    assert answer.ok and "interrupted" in answer.text
    assert asked[0].kind is ApprovalKind.INTERRUPT and asked[0].cell_index is None


def _parse(frame: dict[str, Any]) -> Any:
    from rubberduck_jupyter.protocol import parse_client_frame

    return parse_client_frame(json.dumps(frame), max_bytes=1 << 20, max_text_chars=100_000)


def test_approve_and_run_result_frames_are_parsed_and_bounded() -> None:
    from rubberduck_jupyter.protocol import ProtocolError

    base = {"id": "t1", "approval_id": "apr-1"}
    assert _parse({"type": "approve", **base, "decision": "allow_turn"}) == ApproveRequest(
        "t1", "apr-1", "allow_turn"
    )
    parsed = _parse(
        {
            "type": "run_result",
            **base,
            "status": "error",
            "execution_count": 7,
            "outputs": [{"output_type": "stream", "text": "hi\n"}],
            "error": {"ename": "ValueError", "evalue": "bad", "traceback": ["line"]},
        }
    )
    assert parsed.outputs == (RunOutput("stream", "hi\n"),)
    assert parsed.error == RunError("ValueError", "bad", ("line",))
    refused = [
        ({"type": "approve", **base, "decision": "yes"}, "bad_frame", "'decision'"),
        ({"type": "approve", "id": "t1", "decision": "allow"}, "bad_frame", "'approval_id'"),
        ({"type": "run_result", **base, "status": "done"}, "bad_frame", "'status'"),
        (
            {"type": "run_result", **base, "status": "ok", "outputs": [{"output_type": "x"}]},
            "bad_frame",
            "output_type",
        ),
        (
            {
                "type": "run_result",
                **base,
                "status": "ok",
                "outputs": [{"output_type": "stream", "text": "x" * 4001}],
            },
            "frame_too_large",
            "4000",
        ),
        (
            {"type": "run_result", **base, "status": "ok", "outputs": [{}] * 21},
            "bad_frame",
            "at most 20",
        ),
        (
            {"type": "run_result", **base, "status": "ok", "execution_count": True},
            "bad_frame",
            "execution_count",
        ),
    ]
    for frame, code, words in refused:
        with pytest.raises(ProtocolError) as error:
            _parse(frame)
        assert error.value.code == code and words in error.value.message, frame
        assert error.value.frame_id == "t1"


def test_the_chat_context_says_what_the_sidebar_does_for_the_agent() -> None:
    from rubberduck_jupyter.protocol import AgentAbilities, ProtocolError

    chat = {"type": "chat", "id": "t1", "conversation_id": "c", "text": "hi"}
    parsed = _parse({**chat, "context": {"agent": {"can_run": True}}})
    assert parsed.context.agent == AgentAbilities(can_run=True, auto_apply=False)
    assert parsed.context.to_json()["agent"] == {"can_run": True, "auto_apply": False}
    assert "agent" not in _parse(chat).context.to_json()
    with pytest.raises(ProtocolError):
        _parse({**chat, "context": {"agent": {"can_run": "yes"}}})


async def _tool_approval_rules() -> None:
    from rubberduck_jupyter.tools.approval import ToolCallInfo

    broker = ApprovalBroker()
    frames: list[dict[str, Any]] = []

    async def emit(frame: dict[str, Any]) -> None:
        frames.append(frame)

    channel = broker.channel("alice", "conv", "t1", emit)
    tool = ApprovalAsk(
        ApprovalKind.TOOL,
        "Call ops: write_note",
        None,
        None,
        source='{"text": "x"}',
        tool=ToolCallInfo("ops", "write_note", "write"),
    )
    assert tool.scope == "tool:ops" and not tool.needs_result
    waiting = asyncio.ensure_future(channel.ask(tool, timeout_s=5))
    await asyncio.sleep(0)
    approval_id = frames[0]["approval_id"]
    assert frames[0]["tool"] == {"server": "ops", "name": "write_note", "permission": "write"}
    with pytest.raises(ApprovalRefused, match="no result"):
        broker.result("alice", RunResultRequest("t1", approval_id, "ok"))
    broker.answer("alice", ApproveRequest("t1", approval_id, "allow_conversation"))
    outcome = await waiting  # the decision alone answers it: no run_result awaited
    assert outcome.status is ApprovalStatus.ALLOWED and outcome.result is None
    assert [f["type"] for f in frames] == ["approval", "approval.closed"]
    # The tool grant covers that server only: a cell run (and another server) still asks.
    assert broker.allowed_for_conversation("alice", "conv", "tool:ops")
    assert not broker.allowed_for_conversation("alice", "conv", "run")
    assert not broker.allowed_for_conversation("alice", "conv", "tool:other")
    run = ApprovalAsk(ApprovalKind.RUN, "Run cell 1", "nb.ipynb", 1, None, "a = 1")
    asked = asyncio.ensure_future(channel.ask(run, timeout_s=5))
    await asyncio.sleep(0)
    assert "auto" not in frames[-1] and frames[-1]["kind"] == "run"
    asked.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asked
    assert frames[-1] == {**frames[-1], "type": "approval.closed", "reason": "cancelled"}
    # An already allowed tool call is sent marked auto and closed at once.
    again = await channel.ask(tool, timeout_s=5)
    assert again.status is ApprovalStatus.ALLOWED and again.auto
    assert frames[-2]["auto"] is True and frames[-1]["reason"] == "answered"
    broker.revoke("alice", "conv")
    assert not broker.allowed_for_conversation("alice", "conv", "tool:ops")
    assert broker.snapshot()["open"] == 0


def test_a_tool_approval_is_answered_by_the_decision_and_grants_are_scoped() -> None:
    asyncio.run(_tool_approval_rules())
