"""interrupt_kernel: stops what the notebook's kernel runs (a cell that hangs), once the
user allows it; the client interrupts and answers with a run_result (see run_cell.py)."""

from __future__ import annotations

from typing import Any

from .approval import ApprovalAsk, ApprovalKind, ApprovalStatus
from .base import Permission, Tool, ToolContext, ToolResult
from .run_cell import RUN_TOOL_TIMEOUT_S, outcome_text


async def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    if ctx.request_approval is None:
        return ToolResult("Error: this client cannot reach the kernel.", ok=False)
    path = ctx.context.notebook_path
    outcome = await ctx.ask(
        ApprovalAsk(
            kind=ApprovalKind.INTERRUPT, title="Interrupt the kernel", path=path, cell_index=None
        )
    )
    if outcome.status is not ApprovalStatus.DONE or outcome.result is None:
        text, ok = outcome_text("the interrupt", "interrupt the kernel", outcome)
        return ToolResult(text, ok=ok, data={"approval": str(outcome.status)})
    if outcome.result.status == "ok":
        return ToolResult("The kernel was interrupted; what it ran stopped.")
    return ToolResult(f"The interrupt did not go through ({outcome.result.status}).", ok=False)


TOOL = Tool(
    name="interrupt_kernel",
    description=(
        "Interrupt the notebook's kernel (a cell that runs too long). The user is asked first."
    ),
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
    permission=Permission.RUN,
    handler=run,
    timeout_s=RUN_TOOL_TIMEOUT_S,
)
