"""run_cell: runs a cell of the open notebook in the user's kernel, once they allow it.

The server does not run it: the sidebar does, in the notebook the user has open, so the
outputs land where the user sees them and the kernel is the one they work in. The tool
asks through the turn (an `approval` frame with the cell's code as the agent expects it,
and the pending suggestions that make it so, for the client to apply first), waits for
the decision and the `run_result`, and gives the model the outputs and the error,
trimmed. Offered only to a client that said it can run cells (`context.agent.can_run`).

No server-side fallback through jupyter_server's kernel manager: running in the session's
kernel behind the open notebook's back would leave its outputs out of the notebook the
user sees (and out of the file until the next save races the browser's copy), and a
client that cannot run cells (REST, magics) has no user in front of an approval card.
"""

from __future__ import annotations

import re
from typing import Any

from ..protocol import RunResultRequest
from .approval import ApprovalAsk, ApprovalKind, ApprovalOutcome, ApprovalStatus
from .base import Permission, Tool, ToolContext, ToolResult
from .notebook import cell_by_number, expected_cells, notebook_cells

# What the model reads of a run: the outputs' text and the traceback's last lines are
# what say whether it worked; a 20-output cell of 4,000 characters each is not read.
MAX_RESULT_TEXT = 6_000
TRACEBACK_LINES = 12
# Waits are bounded by agent_run_timeout and the turn's time (ToolContext.run_wait_s),
# twice (decision, then result); the dispatcher's own timeout is only a net above them.
RUN_TOOL_TIMEOUT_S = 24 * 3600.0
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def describe_result(label: str, result: RunResultRequest) -> str:
    """The run's outcome as the model reads it."""
    count = "" if result.execution_count is None else f" [{result.execution_count}]"
    if result.status == "aborted":
        # The kernel was interrupted or restarted, or the client refused to run it (the
        # cell no longer holds the code the approval showed): its error says which.
        head = f"{label}{count} did not run to the end (aborted)."
    elif result.status == "error" or result.error is not None:
        head = f"{label}{count} ran and raised an error."
    else:
        head = f"{label}{count} ran without error."
    parts = [head]
    texts = [o.text.rstrip("\n") for o in result.outputs if o.text.strip()]
    if texts:
        parts.append("Output:\n" + "\n".join(texts))
    elif result.status == "ok":
        parts.append("It printed nothing.")
    if result.error is not None:
        error = result.error
        lines = [_ANSI.sub("", line).rstrip() for line in error.traceback]
        lines = [line for chunk in lines for line in chunk.splitlines() if line.strip()]
        tail = "\n".join(lines[-TRACEBACK_LINES:])
        parts.append(f"Error: {error.ename}: {error.evalue}" + (f"\n{tail}" if tail else ""))
    text = "\n\n".join(parts)
    if len(text) > MAX_RESULT_TEXT:
        text = text[: MAX_RESULT_TEXT // 2] + "\n… [cut] …\n" + text[-MAX_RESULT_TEXT // 2 :]
    return text


def outcome_text(label: str, action: str, outcome: ApprovalOutcome) -> tuple[str, bool]:
    """(what the model reads, whether the tool call worked) for a non-DONE outcome."""
    if outcome.status is ApprovalStatus.DENIED:
        return (
            f"The user declined to {action}. Do not ask again for the same thing; go on "
            "without it, or say what you would have checked.",
            False,
        )
    if outcome.status is ApprovalStatus.NO_ANSWER:
        return (
            f"The user did not answer within {outcome.waited_s:g} s, so {label} was not run. "
            "Go on without it, or finish and tell the user what to run.",
            False,
        )
    if outcome.status is ApprovalStatus.NO_RESULT:
        return (
            f"{label} was started but sent no result within {outcome.waited_s:g} s; it may "
            "still be running (interrupt_kernel stops it).",
            False,
        )
    return ("Error: this client cannot run cells; tell the user what to run.", False)


async def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    if ctx.request_approval is None:
        return ToolResult(
            "Error: this client cannot run cells; tell the user what to run.", ok=False
        )
    path, cells = await notebook_cells(ctx)
    view = await expected_cells(ctx, path, cells)
    cell, suggestion_ids = view[cell_by_number([c for c, _ in view], args["cell"]).number - 1]
    label = f"Cell {cell.number}"
    if cell.cell_type != "code":
        return ToolResult(
            f"Error: cell {cell.number} is a {cell.cell_type} cell; only code cells run.", ok=False
        )
    if not cell.source.strip():
        return ToolResult(f"Error: cell {cell.number} is empty; there is nothing to run.", ok=False)
    outcome = await ctx.ask(
        ApprovalAsk(
            kind=ApprovalKind.RUN,
            title=f"Run cell {cell.number}",
            path=path,
            cell_index=cell.number,
            cell_id=cell.cell_id,
            source=cell.source,
            suggestion_ids=suggestion_ids,
        )
    )
    if outcome.status is not ApprovalStatus.DONE or outcome.result is None:
        text, ok = outcome_text(label, f"run cell {cell.number}", outcome)
        return ToolResult(text, ok=ok, data={"approval": str(outcome.status)})
    result = outcome.result
    data = {
        "approval": str(outcome.status),
        "status": result.status,
        "auto": outcome.auto,
        "suggestions_applied": list(suggestion_ids),
    }
    return ToolResult(describe_result(label, result), ok=result.status == "ok", data=data)


TOOL = Tool(
    name="run_cell",
    description=(
        "Run a code cell of the open notebook in the user's kernel and get its output and "
        "error. The user is asked first (they may decline). Your pending edits of that cell "
        "(or the cell you inserted) are applied before it runs."
    ),
    parameters={
        "type": "object",
        "properties": {"cell": {"type": "integer", "minimum": 1}},
        "required": ["cell"],
        "additionalProperties": False,
    },
    permission=Permission.RUN,
    handler=run,
    timeout_s=RUN_TOOL_TIMEOUT_S,
)
