"""The one small interface every engine implements, and the turn it works on.

An engine gets a `Turn`: the request, the conversation so far, the user's preferences,
and the services it may use (the model, retrieval, static analysis). It speaks only
through the turn (`answer`, `step`, `cite`, ...), which turns its words into protocol
frames and keeps what must be persisted. It never touches a socket or the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..context.prompt import ChatMessage
from ..context.rules import RuleSelection
from ..llm.client import StreamPiece, ToolCall
from ..llm.errors import LLMError, no_model_error
from ..protocol import (
    ChatRequest,
    ErrorCode,
    NoticeCode,
    Usage,
    chunk_frame,
    citations_frame,
    correction_frame,
    notice_frame,
    step_frame,
    suggestion_frame,
    task_frame,
)

if TYPE_CHECKING:
    from ..context.retrieval import Citation, Retriever
    from ..domain.actions import ProjectFiles
    from ..domain.models import CodeSuggestion, Conversation, Message, User
    from ..domain.preferences import Preferences
    from ..tools.approval import ApprovalAsk, ApprovalOutcome, Approvals

Emit = Callable[[dict[str, Any]], Awaitable[None]]

# A suggestion that inserts a new Markdown cell below its target cell (plugins' /doc).
MARKDOWN_CELL_MODE = "insert_markdown_after"

NO_MODEL_NOTICE = (
    "No model is configured, so this answer comes from RubberDuck's own search and static "
    "analysis, not from a language model. To get full answers, set RUBBERDUCK_MODEL (for "
    "example `openai/gpt-4o-mini` or `ollama/llama3.1`) and the provider's key before "
    "starting JupyterLab; `jupyter rubberduck doctor` checks the setup."
)


class ChatModel(Protocol):
    def stream(
        self,
        *,
        user: str,
        messages: list[dict[str, str]],
        model: str | None = None,
        conversation_id: str | None = None,
        # Only passed when a turn offers tools (engines/agent.py); LLMService takes them.
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
    ) -> AsyncIterator[StreamPiece]: ...


@dataclass
class ModelCall:
    """What one model call returned and cost; a turn may make several."""

    text: str
    finish_reason: str | None
    usage: Usage
    model_name: str | None = None
    cost_usd: float | None = None
    cached: bool = False
    attempts: tuple[dict[str, Any], ...] = ()
    # The tools the model called (finish_reason "tool_calls"), when it was offered tools.
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass
class StepRecord:
    step: str
    title: str
    text: str = ""
    # Characters of the answer streamed before the step began: where it sits in the
    # answer (a model's text before its tool call comes first), kept with the answer.
    answer_at: int = 0


class Turn:
    """One message being answered. Engines use it; the session runs it."""

    def __init__(
        self,
        *,
        request: ChatRequest,
        text: str,
        user: User,
        conversation: Conversation,
        history: Sequence[Message],
        preferences: Preferences,
        emit: Emit,
        model: ChatModel | None,
        has_model: bool,
        retriever: Retriever | None,
        project_root: str | None,
        build_messages: Callable[..., list[ChatMessage]],
        new_suggestion: Callable[..., Awaitable[CodeSuggestion | None]] | None = None,
        save_task: Callable[[dict[str, Any] | None], Awaitable[None]] | None = None,
        command: str | None = None,
        correction_rounds: int = 2,
        files: ProjectFiles | None = None,
        on_text: Callable[[], None] | None = None,
        rules: RuleSelection | None = None,
        approvals: Approvals | None = None,
        suggestion_status: Callable[[Sequence[str]], Awaitable[dict[str, str]]] | None = None,
    ) -> None:
        """`rules` are the project rules that apply to this request (context/rules.py).
        `approvals`: how this turn asks its user (the agent's run tools; None when no
        client can answer). `suggestion_status`: this turn's suggestions' statuses as
        stored now (the user may apply or reject them while the turn runs).
        `on_text` is called after each piece of visible text (answer or step) is kept;
        the session uses it to save a partial answer. It must return at once: it runs
        inside the stream."""
        self.request = request
        self.text = text  # the message, any slash command removed
        self.command = command  # the slash command that chose the engine, if any
        self.correction_rounds = correction_rounds
        self.user = user
        self.conversation = conversation
        self.history = list(history)
        self.preferences = preferences
        self.context = request.context
        self.has_model = has_model
        self.retriever = retriever
        self.project_root = project_root
        self.files = files  # the project's files, kept inside its root
        self.rules = rules if rules is not None else RuleSelection()
        self._emit = emit
        self._model = model
        self._build_messages = build_messages
        self._new_suggestion = new_suggestion
        self._save_task = save_task
        self._on_text = on_text
        self._approvals = approvals
        self._suggestion_status = suggestion_status
        self._seq = 0
        self.answer_parts: list[str] = []
        self.steps: list[StepRecord] = []
        self.calls: list[ModelCall] = []
        self.citations: list[Citation] = []
        self.suggestions: list[dict[str, Any]] = []
        self.corrections: list[dict[str, Any]] = []
        self.notices: list[dict[str, str]] = []
        self.partial = False  # a model call was cut off mid-answer
        # A tool-using engine's messages after the question (assistant tool_calls, tool
        # results), kept with the answer so a later turn can continue from them.
        self.transcript: list[dict[str, Any]] = []

    # --- speaking -------------------------------------------------------------------------

    async def answer(self, text: str) -> None:
        """Adds text to the visible answer."""
        if not text:
            return
        self.answer_parts.append(text)
        if self._on_text is not None:
            self._on_text()
        await self._emit(chunk_frame(self.request.id, self._next_seq(), text))

    @contextlib.asynccontextmanager
    async def step(
        self, step: str, title: str, *, tool: dict[str, Any] | None = None
    ) -> AsyncIterator[StepRecord]:
        """A reasoning step: shown collapsed, its text streamed with chunks tagged `step`.
        `tool`: the tool call it is ({name, arguments, cell_index, path}), sent with its
        start for the UI, with `answer_at` (where in the answer the step sits) added."""
        answer_at = sum(len(p) for p in self.answer_parts)
        record = StepRecord(step, title, answer_at=answer_at)
        self.steps.append(record)
        if tool is not None:
            tool = {**tool, "answer_at": answer_at}
        await self._emit(step_frame(self.request.id, step, title, "started", tool=tool))
        try:
            yield record
        finally:
            await self._emit(step_frame(self.request.id, step, title, "finished"))

    async def step_text(self, record: StepRecord, text: str) -> None:
        if not text:
            return
        record.text += text
        if self._on_text is not None:
            self._on_text()
        await self._emit(chunk_frame(self.request.id, self._next_seq(), text, step=record.step))

    async def cite(self, citations: Sequence[Citation]) -> None:
        fresh = [c for c in citations if c not in self.citations]
        if not fresh:
            return
        self.citations.extend(fresh)
        await self._emit(citations_frame(self.request.id, [c.to_json() for c in self.citations]))

    async def correction(self, round_no: int, findings: list[dict[str, Any]], fixed: bool) -> None:
        record = {"round": round_no, "findings": findings, "fixed": fixed}
        self.corrections.append(record)
        await self._emit(correction_frame(self.request.id, round_no, findings, fixed))

    async def notice(self, code: str, message: str) -> None:
        self.notices.append({"code": code, "message": message})
        await self._emit(notice_frame(self.request.id, code, message))

    async def suggest(self, **kwargs: Any) -> CodeSuggestion | None:
        """Records a change the user may apply (see domain.actions) and shows it.

        Every engine's suggestions pass here, so this is where they are checked: line-number
        prefixes copied from the prompt (engines.common.numbered) are removed, then the code
        must parse in its target's language (Python with IPython syntax in cells, JSON,
        TOML, YAML, JavaScript). Code that still does not parse is never offered to apply:
        it is shown as text in a notice, with what is wrong.
        """
        if self._new_suggestion is None:
            return None
        # The agent's edits when the user switched on "auto-apply edits": the client
        # applies them as they arrive (through the same apply path), keeping an Undo.
        auto_apply = bool(kwargs.pop("auto_apply", False))
        target = kwargs.get("target")
        proposed = str(kwargs.get("proposed", ""))
        if kwargs.get("mode") == MARKDOWN_CELL_MODE:
            problem = None  # a new Markdown cell: prose, nothing to parse
        else:
            proposed, problem = await asyncio.to_thread(checked_code, target, proposed)
        if problem is not None:
            await self.notice(
                NoticeCode.SUGGESTION_UNPARSABLE, unparsable_notice(target, problem, proposed)
            )
            return None
        suggestion = await self._new_suggestion(**{**kwargs, "proposed": proposed})
        if suggestion is None:
            await self.notice(
                NoticeCode.SUGGESTION_WITHHELD,
                "The suggested change rewrites a line whose secret the model never saw (it "
                "was sent as [REDACTED]); applying it would write that placeholder into "
                "your code, so it is not offered. Make that change by hand.",
            )
            return None
        data = suggestion.to_json()
        if auto_apply:
            data["auto_apply"] = True
        self.suggestions.append(data)
        await self._emit(suggestion_frame(self.request.id, data))
        return suggestion

    @property
    def can_ask(self) -> bool:
        """Whether someone can answer this turn's approvals (a sidebar that runs cells)."""
        return self._approvals is not None

    async def request_approval(self, ask: ApprovalAsk, *, timeout_s: float) -> ApprovalOutcome:
        """Asks the user (an `approval` frame) and waits, at most `timeout_s` for the
        decision and as long again for the run's result; raises CancelledError on Stop."""
        from ..tools.approval import ApprovalOutcome, ApprovalStatus

        if self._approvals is None:
            return ApprovalOutcome(ApprovalStatus.UNAVAILABLE)
        return await self._approvals.ask(ask, timeout_s=timeout_s)

    async def suggestion_statuses(self, ids: Sequence[str]) -> dict[str, str]:
        """The stored status ("proposed", "applied", "rejected") of each suggestion id."""
        if self._suggestion_status is None or not ids:
            return {}
        return await self._suggestion_status(ids)

    async def set_task(self, task: dict[str, Any] | None) -> None:
        if self._save_task is not None:
            await self._save_task(task)
        self.conversation = self.conversation.with_changes(task=task)
        if task is not None:
            await self._emit(task_frame(self.request.id, task))

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq

    # --- the model ------------------------------------------------------------------------

    def messages(self, system: str, question: str, **extra: Any) -> list[ChatMessage]:
        """The prompt for this turn: system, preferences, memory, context, then `question`."""
        return self._build_messages(turn=self, system=system, question=question, **extra)

    async def ask(
        self,
        messages: list[ChatMessage],
        *,
        to: StepRecord | None = None,
        visible: bool = True,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
    ) -> ModelCall:
        """Streams one model call into the answer (or step `to`), returns what it said.

        `visible=False` collects the text without showing it (classification, plans that
        are parsed before being shown). `tools` offers the model tools: the calls it made
        come back in `ModelCall.tool_calls`. Raises LLMError (ToolsUnsupported when the
        model cannot call tools); partial text stays shown.
        """
        if self._model is None or not self.has_model:
            raise no_model_error()
        parts: list[str] = []
        call = ModelCall(text="", finish_reason=None, usage=Usage())
        extra: dict[str, Any] = {}
        if tools:
            extra = {"tools": tools, "tool_choice": tool_choice}
        stream = self._model.stream(
            user=self.user.name,
            messages=[dict(m) for m in messages],
            model=self.request.model,
            conversation_id=self.conversation.id,
            **extra,
        )
        try:
            async with contextlib.aclosing(stream):
                async for piece in stream:
                    if piece.text:
                        parts.append(piece.text)
                        if visible and to is not None:
                            await self.step_text(to, piece.text)
                        elif visible:
                            await self.answer(piece.text)
                    if piece.finish_reason is not None:
                        call = ModelCall(
                            text="",
                            finish_reason=piece.finish_reason,
                            usage=piece.usage or Usage(),
                            model_name=piece.model_name,
                            cost_usd=piece.cost_usd,
                            cached=piece.cached,
                            attempts=piece.attempts,
                            tool_calls=piece.calls,
                        )
        except LLMError as exc:
            if exc.code is ErrorCode.INCOMPLETE and parts:
                self.partial = True
            raise
        call.text = "".join(parts)
        self.calls.append(call)
        return call

    # --- results --------------------------------------------------------------------------

    @property
    def answer_text(self) -> str:
        return "".join(self.answer_parts)

    def total_usage(self) -> Usage:
        return Usage(
            prompt_tokens=sum(c.usage.prompt_tokens for c in self.calls),
            completion_tokens=sum(c.usage.completion_tokens for c in self.calls),
            total_tokens=sum(c.usage.total_tokens for c in self.calls),
        )

    def total_cost(self) -> float | None:
        """Known costs summed; None when no call was priced (local models, proxies)."""
        known = [c.cost_usd for c in self.calls if c.cost_usd is not None]
        return sum(known) if known else None


@dataclass(frozen=True)
class EngineInfo:
    name: str
    title: str
    description: str
    commands: tuple[str, ...] = ()
    context_type: str = "question"
    examples: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "commands": list(self.commands),
        }


class Engine(Protocol):
    info: EngineInfo

    async def run(self, turn: Turn) -> None:
        """Answer the turn through its methods; raise LLMError for model failures."""
        ...


# What a suggestion's target is written in, by file suffix; a cell (or a target without
# a path: the active cell of an unsaved notebook) is Python, the language every other part
# of RubberDuck reads notebooks in. None: a format with no syntax to check (Markdown, text)
# or one this server has no parser for.
_LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".json": "json",
    ".ipynb": "json",
    ".geojson": "json",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
}
# A notice shows at most this much of the refused code: enough to copy a cell or a short
# module by hand, and a frame that stays small.
MAX_NOTICE_CODE = 8_000


def checked_code(target: Any, proposed: str) -> tuple[str, str | None]:
    """`proposed` with copied line numbers removed when it needs that to parse, and why it
    still does not parse in the target's language (None: it parses). Runs in a thread:
    a 60,000-character module takes tens of milliseconds to parse."""
    from .line_numbers import strip_line_numbers

    language = target_language(target)
    problem = syntax_problem(language, proposed)
    if problem is None:
        return proposed, None
    stripped = strip_line_numbers(proposed)
    if stripped is None:
        return proposed, problem
    # Even when the listing still fails, its code reads better without the numbers.
    stripped = stripped.rstrip("\n")
    return stripped, syntax_problem(language, stripped)


def target_language(target: Any) -> str | None:
    """The language `proposed` must parse in to replace (or go next to) `target`."""
    path = str(getattr(target, "path", "") or "")
    is_cell = getattr(target, "cell_index", None) is not None or (
        getattr(target, "cell_id", None) is not None
    )
    if is_cell or not path:
        return "cell"
    suffix = path[path.rfind(".") :].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return _LANGUAGES.get(suffix)


def syntax_problem(language: str | None, code: str) -> str | None:
    """Why `code` does not parse as `language` ("line 3: invalid syntax"), or None."""
    if language is None:
        return None
    try:
        if language == "cell":
            from ..review.cells import parse_cell

            parse_cell(code)
        elif language == "python":
            from ..review.cells import parse_python

            parse_python(code, top_level_await=False)
        elif language == "json":
            import json

            json.loads(code)
        elif language == "toml":
            import tomllib

            tomllib.loads(code)
        elif language == "yaml":
            return _yaml_problem(code)
        elif language == "javascript":
            return _javascript_problem(code)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except ValueError as exc:  # json.JSONDecodeError, tomllib.TOMLDecodeError, null bytes
        return str(exc)
    return None


def _yaml_problem(code: str) -> str | None:
    try:
        import yaml
    except ImportError:  # jupyter_events brings PyYAML; without it YAML goes unchecked
        return None
    try:
        list(yaml.safe_load_all(code))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        return where + str(getattr(exc, "problem", None) or exc)
    return None


def _javascript_problem(code: str) -> str | None:
    from ..index.chunkers.parsers import parser

    tree = parser("javascript").parse(code.encode("utf-8"))
    if not tree.root_node.has_error:
        return None
    # The first node tree-sitter could not fit, in document order.
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            return f"line {node.start_point[0] + 1}: invalid syntax"
        stack.extend(reversed([c for c in node.children if c.has_error or c.is_missing]))
    return "invalid syntax"


def unparsable_notice(target: Any, problem: str, code: str) -> str:
    """The notice (Markdown) for a change that is not offered: why, and the code as text."""
    label = getattr(target, "label", None) or "the target"
    shown = code if len(code) <= MAX_NOTICE_CODE else code[:MAX_NOTICE_CODE] + "\n…"
    fence = "````" if "```" in shown else "```"
    return (
        f"The suggested change to {label} does not parse ({problem}), so it is not offered "
        "to apply. Here it is as text, to fix by hand if it helps:\n\n"
        f"{fence}text\n{shown}\n{fence}"
    )
