"""AgentConversation (`/agent`): the model works through the notebook with tools.

A loop: the model is offered RubberDuck's tools (tools/), answers with text and tool
calls, each call runs through the dispatcher (validated, timed out, truncated) and its
result goes back as a `role: "tool"` message; the loop ends when the model answers
without calling a tool. Read tools look; write tools become suggestions the user
approves, after the review gate; run tools (run_cell, interrupt_kernel) ask the user and
run in their client, offered only to a client that runs cells (`context.agent.can_run`).
Nothing the agent does writes a file or runs code by itself.

Bounded three ways, each a constructor setting (the app wires traitlets later): model
calls (`max_steps`), tokens over all calls (`max_tokens`), and wall time (`max_seconds`,
tool calls included). Stop cancels the turn like any other: the model's stream is closed
and the running tool call is cancelled. Each tool call is a collapsible step (its
arguments and result), and the whole transcript is kept on the turn (`Turn.transcript`)
for the answer's record. A model that cannot call tools gets a notice and the
generation engine instead.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..context.prompt import BASE_PROMPT
from ..llm.errors import ToolsUnsupported
from ..protocol import NoticeCode
from ..tools.base import Permission, ToolContext
from ..tools.dispatch import Dispatcher, ToolOutcome
from ..tools.registry import ToolRegistry, ToolSource, default_tools
from .base import Engine, EngineInfo, Turn
from .generation import GenerationConversation

if TYPE_CHECKING:
    from ..domain.models import Message

AGENT_PROMPT = BASE_PROMPT + (
    " You work in the user's notebook through tools. Look before you change: list or read "
    "the cells, search the project for the user's own helpers and patterns, read the "
    "variables. Then propose changes with insert_cell, replace_cell, delete_cell or "
    "edit_file: each becomes a suggestion the user approves, so never claim a change is "
    "made. Cells are numbered from 1. When a tool answers with an error, correct the call. "
    "When you are done, answer without calling tools: say in a few sentences what you "
    "suggested and why."
)
# Added when the client runs cells: the loop the issue asks for (run, see, fix, run).
RUN_PROMPT = (
    " You can also run a code cell with run_cell (the user is asked first and may "
    "decline) and see its output and error; run a cell you inserted or changed to check "
    "it, fix what fails with replace_cell, and run it again. A cell you just inserted "
    "below cell N is cell N+1 when you run it."
)
# Suggestions the user answered while the turn ran, told to the model before its next call.
DECISION_WORDS = {"applied": "applied", "rejected": "rejected (it is not in the notebook)"}

# Notice codes of this engine (the protocol's NoticeCode lists the shared ones).
NOTICE_NO_TOOLS = NoticeCode.AGENT_NO_TOOLS
NOTICE_LIMIT = NoticeCode.AGENT_LIMIT

# Model calls per turn: a list / search / read / edit task takes 4-8; 12 leaves room for
# a correction round or two without letting a looping model run on.
DEFAULT_MAX_STEPS = 12
# Tokens over every call of the turn (prompts grow with each tool result): ~10 calls of a
# 6,000-token prompt; at gpt-4o-mini prices a few cents.
DEFAULT_MAX_TOKENS = 120_000
# Wall time for the whole turn, model and tools: past this the user has waited enough.
DEFAULT_MAX_SECONDS = 300.0
# A step's text in the UI shows this much of a tool's arguments and answer.
STEP_PREVIEW_CHARS = 2_000
# An earlier agent answer's tool calls, replayed into the next turn's prompt: enough to
# remember what was read (the cell listing, a file) without resending whole files.
EARLIER_RESULT_CHARS = 1_500
EARLIER_TRANSCRIPT_CHARS = 16_000
# A tool result as the answer's record keeps it (12 steps of 4,000: ~50 kB a message).
TRANSCRIPT_RESULT_CHARS = 4_000


class AgentConversation:
    info = EngineInfo(
        name="agent",
        title="Agent",
        description=(
            "Works across your notebook with tools: reads cells, files, the index and "
            "variables, and proposes edits you approve."
        ),
        commands=("/agent",),
        context_type="feature_request",
    )

    def __init__(
        self,
        *,
        tools: ToolRegistry | None = None,
        max_steps: int = DEFAULT_MAX_STEPS,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        max_seconds: float = DEFAULT_MAX_SECONDS,
        tool_timeout_s: float = 10.0,
        review: bool = True,
        fallback: Engine | None = None,
        tool_source: ToolSource | None = None,
        run_timeout_s: float = 120.0,
    ) -> None:
        self.tools = tools if tools is not None else default_tools()
        # A client that cannot run cells (REST, magics, an old sidebar) is not offered them.
        self._without_run = self.tools.only(p for p in Permission if p is not Permission.RUN)
        self.run_timeout_s = run_timeout_s
        # Tools that join ours per turn (MCP servers), asked once at the turn's start.
        self.tool_source = tool_source
        self.dispatcher = Dispatcher(self.tools, timeout_s=tool_timeout_s)
        self._dispatcher_without_run = Dispatcher(self._without_run, timeout_s=tool_timeout_s)
        self.max_steps = max_steps
        self.max_tokens = max_tokens
        self.max_seconds = max_seconds
        self.review = review
        self.fallback = fallback or GenerationConversation()

    async def run(self, turn: Turn) -> None:
        if not turn.has_model:
            # The generation engine says there is no model and answers from the index.
            await self.fallback.run(turn)
            return
        request = turn.text or "Look at the active cell and improve it."
        can_run = self._can_run(turn)
        prompt = AGENT_PROMPT + (RUN_PROMPT if can_run else "")
        messages = with_earlier_transcript(
            [dict(m) for m in turn.messages(prompt, request)], turn.history
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_seconds
        ctx = self._context(turn, deadline, can_run)
        dispatcher = await self._turn_dispatcher(turn, can_run)
        schemas = dispatcher.registry.schemas()
        steps = 0
        outcomes: list[ToolOutcome] = []
        told: dict[str, str] = {}  # suggestion id -> the status the model last heard
        while True:
            limit = self._limit_reached(turn, steps, deadline - loop.time())
            if limit is not None:
                await self._stop_at_limit(turn, limit, outcomes)
                return
            if steps:
                news = await self._decisions(turn, told)
                if news:
                    messages.append({"role": "user", "content": news})
            steps += 1
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    # No tool_choice: "auto" is the default wherever tools are offered,
                    # and some servers refuse the explicit value.
                    call = await turn.ask(messages, tools=schemas)
            except ToolsUnsupported as exc:
                if steps > 1:
                    raise
                await turn.notice(
                    NOTICE_NO_TOOLS,
                    f"{exc.model_name} cannot use tools, so this answer comes from the "
                    "generation engine instead of the agent.",
                )
                await self.fallback.run(turn)
                return
            except TimeoutError:
                await self._stop_at_limit(turn, self._time_limit(), outcomes)
                return
            if not call.tool_calls:
                return  # the model answered: its text is the answer
            assistant = {
                "role": "assistant",
                "content": call.text or None,
                "tool_calls": [c.to_message() for c in call.tool_calls],
            }
            messages.append(assistant)
            turn.transcript.append(assistant)
            if call.text:
                await turn.answer("\n\n")
            for tool_call in call.tool_calls:
                try:
                    # A tool call counts against the turn's time too: a run waiting for
                    # the user, a hung MCP server. The call's own waits end first (they
                    # are capped by the deadline); this is the net.
                    async with asyncio.timeout(max(0.0, deadline - loop.time()) + 1.0):
                        outcome = await self._run_tool(
                            turn, ctx, tool_call, len(outcomes) + 1, dispatcher
                        )
                except TimeoutError:
                    await self._stop_at_limit(turn, self._time_limit(), outcomes)
                    return
                outcomes.append(outcome)
                message = outcome.message()
                messages.append(message)
                # The record keeps a shorter result: the next turn replays at most
                # EARLIER_RESULT_CHARS of it, the UI's step already shows its start.
                kept = message["content"]
                if len(kept) > TRANSCRIPT_RESULT_CHARS:
                    kept = kept[:TRANSCRIPT_RESULT_CHARS] + "… [cut]"
                turn.transcript.append({**message, "content": kept})

    @staticmethod
    def _can_run(turn: Turn) -> bool:
        return turn.context.agent.can_run and turn.can_ask

    def _context(self, turn: Turn, deadline: float, can_run: bool) -> ToolContext:
        suggest = turn.suggest
        if turn.context.agent.auto_apply:
            suggest = functools.partial(turn.suggest, auto_apply=True)

        async def pending() -> list[dict[str, Any]]:
            statuses = await turn.suggestion_statuses([s["id"] for s in turn.suggestions])
            return [s for s in turn.suggestions if statuses.get(s["id"]) == "proposed"]

        return ToolContext(
            context=turn.context,
            user=turn.user.name,
            files=turn.files,
            retriever=turn.retriever,
            suggest=suggest,
            on_findings=turn.correction,
            on_citations=turn.cite,
            review=self.review,
            request_approval=turn.request_approval if can_run else None,
            run_timeout_s=self.run_timeout_s,
            deadline=deadline,
            pending_suggestions=pending,
        )

    async def _decisions(self, turn: Turn, told: dict[str, str]) -> str:
        """What the user did with this turn's suggestions since the model last heard, as
        read from the store (they apply and reject while the turn runs); "" if nothing."""
        ids = [s["id"] for s in turn.suggestions]
        if not ids:
            return ""
        statuses = await turn.suggestion_statuses(ids)
        lines = []
        for suggestion in turn.suggestions:
            sid = suggestion["id"]
            status = statuses.get(sid, "proposed")
            if status == told.get(sid, "proposed"):
                continue
            told[sid] = status
            lines.append(
                f"- The user {DECISION_WORDS.get(status, status)} suggestion {sid} "
                f"({suggestion.get('title') or 'a change'}){_where(suggestion)}."
            )
        if not lines:
            return ""
        return "(RubberDuck, not the user's words) Since your last call:\n" + "\n".join(lines)

    async def _turn_dispatcher(self, turn: Turn, can_run: bool = False) -> Dispatcher:
        """Our tools (the run tools only for a client that runs cells), with the tool
        source's (MCP) for this turn when there is one."""
        ours = self.dispatcher if can_run else self._dispatcher_without_run
        if self.tool_source is None:
            return ours
        # A turn that can ask (a sidebar answering approvals) gets the MCP tools that ask.
        offered = await self.tool_source.turn_tools(turn.notice, can_ask=can_run)
        if not offered:
            return ours
        return Dispatcher(
            ours.registry.extended(offered),
            timeout_s=self.dispatcher.timeout_s,
            max_result_chars=self.dispatcher.max_result_chars,
        )

    async def _run_tool(
        self, turn: Turn, ctx: ToolContext, call: Any, n: int, dispatcher: Dispatcher
    ) -> ToolOutcome:
        title = f"{call.name}({_short_arguments(call.arguments)})"
        tool = _step_tool(call.name, call.arguments, turn.context.notebook_path)
        async with turn.step(f"tool-{n}", title, tool=tool) as record:
            outcome = await dispatcher.run(call, ctx)
            mark = "" if outcome.result.ok else " (error)"
            await turn.step_text(
                record,
                f"Arguments: {_clip(call.arguments or '{}')}\n\n"
                f"Result{mark}:\n{_clip(outcome.result.text)}",
            )
        return outcome

    def _limit_reached(self, turn: Turn, steps: int, remaining_s: float) -> str | None:
        if steps >= self.max_steps:
            return f"the agent's step limit ({self.max_steps} model calls)"
        used = turn.total_usage().total_tokens
        if used >= self.max_tokens:
            return f"the agent's token budget ({used} of {self.max_tokens} tokens used)"
        if remaining_s <= 0:
            return self._time_limit()
        return None

    def _time_limit(self) -> str:
        return f"the agent's time limit ({self.max_seconds:g} s)"

    async def _stop_at_limit(self, turn: Turn, limit: str, outcomes: list[ToolOutcome]) -> None:
        await turn.notice(NOTICE_LIMIT, f"The agent stopped at {limit}.")
        suggested = [o.result.data["suggestion"] for o in outcomes if "suggestion" in o.result.data]
        done = f"{len(outcomes)} tool call(s)"
        pending = (
            f"; {len(suggested)} suggestion(s) are pending your approval"
            if suggested
            else "; no change was suggested"
        )
        await turn.answer(
            f"\n\nI stopped at {limit} after {done}{pending}. Ask again to continue "
            "from here, or narrow the task."
        )


def with_earlier_transcript(
    messages: list[dict[str, Any]], history: Sequence[Message]
) -> list[dict[str, Any]]:
    """`messages` with the tool calls and results of the last earlier agent answer put back
    before that answer, so "now do the same for cell 5" continues from what was read.
    The answer's record holds them as `meta["transcript"]` (recorded from
    `Turn.transcript`); each result is cut to EARLIER_RESULT_CHARS, the whole to
    EARLIER_TRANSCRIPT_CHARS (older entries dropped first, whole call/result groups)."""
    earlier = next(
        (m for m in reversed(history) if m.role == "assistant" and m.meta.get("transcript")),
        None,
    )
    if earlier is None:
        return messages
    groups: list[list[dict[str, Any]]] = []
    for entry in earlier.meta["transcript"]:
        if not isinstance(entry, dict) or entry.get("role") not in ("assistant", "tool"):
            continue
        if entry["role"] == "tool":
            if not groups:
                continue
            content = str(entry.get("content") or "")
            if len(content) > EARLIER_RESULT_CHARS:
                content = content[:EARLIER_RESULT_CHARS] + "… [cut]"
            groups[-1].append({**entry, "content": content})
        else:
            groups.append([dict(entry)])
    # A group whose calls did not all get a result (Stop mid-call) cannot be sent:
    # providers refuse an assistant tool call without its answer.
    groups = [g for g in groups if _answered(g)]
    kept: list[dict[str, Any]] = []
    size = 0
    for group in reversed(groups):
        group_size = sum(len(json.dumps(m)) for m in group)
        if size + group_size > EARLIER_TRANSCRIPT_CHARS:
            break
        kept[:0] = group
        size += group_size
    if not kept:
        return messages
    # Before the earlier answer's own text, where the calls happened.
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if (
            m.get("role") == "assistant"
            and earlier.content
            and m.get("content", "").startswith(earlier.content[:200])
        ):
            return [*messages[:i], *kept, *messages[i:]]
    return messages


def _answered(group: list[dict[str, Any]]) -> bool:
    asked = {c.get("id") for c in group[0].get("tool_calls") or () if isinstance(c, dict)}
    answered = {m.get("tool_call_id") for m in group[1:]}
    return bool(asked) and asked <= answered


def _where(suggestion: dict[str, Any]) -> str:
    target = suggestion.get("target") or {}
    index = target.get("cell_index")
    if not isinstance(index, int):
        return f" on {target['path']}" if target.get("path") else ""
    if str(suggestion.get("mode", "")).startswith("insert"):
        return f" (a new cell below cell {index + 1})"
    return f" on cell {index + 1}"


# The notebook tools: their step's `tool` names the notebook and the cell to scroll to.
_NOTEBOOK_TOOLS = frozenset(
    {
        "list_cells",
        "read_cell",
        "insert_cell",
        "replace_cell",
        "delete_cell",
        "run_cell",
        "interrupt_kernel",
    }
)


def _step_tool(name: str, arguments: str, notebook_path: str | None) -> dict[str, Any]:
    """The step frame's `tool`: the call's parsed arguments (long strings cut: the step's
    text has them), the 1-based cell it reads, edits or runs, and the notebook's path."""
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        parsed = None
    shown: dict[str, Any] = {}
    cell = None
    if isinstance(parsed, dict):
        shown = {k: (_clip(v) if isinstance(v, str) else v) for k, v in parsed.items()}
        for key in ("cell", "after"):
            value = parsed.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
                cell = value
                break
    notebook = name in _NOTEBOOK_TOOLS
    return {
        "name": name,
        "arguments": shown,
        "cell_index": cell if notebook else None,
        "path": notebook_path if notebook else None,
    }


def _clip(text: str, limit: int = STEP_PREVIEW_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _short_arguments(arguments: str) -> str:
    """A step title's view of the arguments: `cell=3, path='a.py'`, long strings cut."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return "invalid JSON"
    if not isinstance(value, dict):
        return "…"
    parts = []
    for key, item in value.items():
        shown = (
            repr(item) if not isinstance(item, str) or len(item) <= 30 else repr(item[:27] + "…")
        )
        parts.append(f"{key}={shown}")
    text = ", ".join(parts)
    return text if len(text) <= 80 else text[:79] + "…"
