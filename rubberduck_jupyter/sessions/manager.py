"""SessionManager: every chat turn goes through here.

It stores the user's message before anything else, hands the turn to the conversation's
actor (turns of one conversation run in order; other conversations run in parallel),
routes it to an engine, has the answer persisted with its route, steps, sources and usage,
ends the turn with exactly one `done` or `error` frame, and has older turns folded into a
summary when the memory window fills.

Three units since issue 12: running a turn (here), persisting it (`recorder.py`,
`TurnRecorder`) and summarising memory (`summariser.py`, `MemorySummariser`). A turn reads
the store three times: the conversation when its message arrives (who may write to it),
then the conversation and its messages when the turn starts in the actor (earlier turns
may have changed them while it waited). It used to read five to six times: again after
the answer to summarise, and before each write-back of the kind, task and summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from ..context.memory import MemoryWindow, conversation_order
from ..context.mentions import Resolved, resolve_mentions
from ..context.prompt import ChatMessage, build_turn_messages
from ..context.redact import Redactor, restore_redacted
from ..context.retrieval import Retriever
from ..context.rules import ProjectRules, RuleSelection
from ..domain.actions import ProjectFiles
from ..domain.models import (
    CodeSuggestion,
    Conversation,
    Message,
    MessageStatus,
    Project,
    SuggestionTarget,
    User,
    new_id,
)
from ..domain.policies import NotPermitted, require_conversation
from ..engines.base import ChatModel, Engine, Turn
from ..engines.catalog import EngineCatalog
from ..engines.router import (
    CLASSIFY_PROMPT,
    ConversationRouter,
    parse_classification,
    parse_command,
)
from ..llm.errors import LLMError
from ..protocol import (
    ChatContext,
    ChatRequest,
    ErrorCode,
    NoticeCode,
    done_frame,
    error_frame,
    notice_frame,
    route_frame,
)
from .actor import ActorCrashed, ActorRegistry, Job, MailboxFull
from .approvals import ApprovalBroker
from .partial import DEFAULT_EVERY_CHUNKS, DEFAULT_INTERVAL_S, PartialSaver
from .preferences import PreferenceBook
from .recorder import TurnRecorder
from .store import AsyncConversationStore
from .summariser import MemorySummariser

Emit = Callable[[dict[str, Any]], Awaitable[None]]
log = logging.getLogger(__name__)

# What a turn says when its conversation's actor crashed under it (runtime/supervisor.py).
CRASHED_NOTE = (
    "RubberDuck hit an internal error in this conversation (the server log has the "
    "details); your message is saved, send it again."
)
TITLE_CHARS = 60
DEFAULT_CONTEXT_TOKENS = 8192
MAX_HISTORY_TOKENS = 32_000


# What a command's object says when it points at the context rather than naming a file.
_DEICTIC = re.compile(
    r"^(?:(?:this|the|my|current|active)\s+)?(?:cell|notebook|code|error|one|it|this)?\.?$",
    re.IGNORECASE,
)
# A single word that names a file: "calc.py", "src/etl.ipynb".
_FILE_LIKE = re.compile(r"^[\w.~/-]*\.\w+$|^[\w.~-]*/[\w./~-]+$")
# The exception's name on a traceback's last line: "KeyError: 'b'".
_ERROR_NAME = re.compile(r"\b([A-Z]\w*(?:Error|Exception|Warning|Interrupt|Exit))\b")
# Commands whose title is "<Noun> of <what>".
_OF_NOUN = {"review": "Review", "explain": "Explanation", "test": "Tests", "doc": "Docs"}


def _where(context: ChatContext | None) -> str:
    """ "cell 3 in etl.ipynb", "etl.ipynb" or "", from what the client said is active."""
    if context is None or not context.notebook_path:
        return ""
    name = PurePosixPath(context.notebook_path).name
    if context.cell_index is not None:
        return f"cell {context.cell_index + 1} in {name}"
    return name


def _error_name(context: ChatContext | None) -> str | None:
    if context is None or not context.error:
        return None
    names = _ERROR_NAME.findall(context.error)
    return names[-1] if names else None


def title_from(text: str, context: ChatContext | None = None) -> str:
    """A conversation's first title: what its first message is about.

    A plain question is its own title. A slash command says what it acts on: a named
    file ("Review of calc.py"), else the active cell or notebook the client sent
    ("Review of cell 3 in etl.ipynb"), never the words "this cell".
    """
    parsed = parse_command(text)
    if parsed is not None:
        command, rest = parsed
        where = _where(context)
        noun = _OF_NOUN.get(command, command.capitalize())
        if rest and _FILE_LIKE.match(rest):
            text = f"{noun} of {PurePosixPath(rest).name}"
        elif rest and not _DEICTIC.match(rest):
            text = rest
        elif command == "fix":
            error = _error_name(context)
            thing = f"the {error}" if error else "the error"
            text = f"Fix {thing} in {where}" if where else f"Fix {thing}"
        else:
            text = f"{noun} of {where}" if where else noun
    first = " ".join(text.strip().split())
    return first if len(first) <= TITLE_CHARS else first[: TITLE_CHARS - 1].rstrip() + "…"


class TurnHooks(Protocol):
    """What plugins add to a turn (plugin_host.PluginHost implements it). Every call is
    guarded there: a failing plugin costs its own hook, never the turn."""

    async def pre_input(self, text: str, context: ChatContext) -> str: ...

    async def route_hint(self, text: str, context: ChatContext) -> str | None: ...

    async def answered(
        self, user: str, conversation_id: str, stored: Message, engine: str, turn: Turn
    ) -> None: ...


class SessionManager:
    def __init__(
        self,
        *,
        store: AsyncConversationStore,
        model: ChatModel,
        has_model: Callable[[], bool],
        engines: Mapping[str, Engine] | EngineCatalog,
        project: Project,
        retriever: Retriever | None = None,
        history_tokens: Callable[[str | None], int] | None = None,
        files: ProjectFiles | None = None,
        registry: ActorRegistry | None = None,
        correction_rounds: int = 2,
        partial_save_interval: float = DEFAULT_INTERVAL_S,
        partial_save_chunks: int = DEFAULT_EVERY_CHUNKS,
        redactor: Redactor | None = None,
        preferences: PreferenceBook | None = None,
        hooks: TurnHooks | None = None,
        rules: ProjectRules | None = None,
    ) -> None:
        """`engines` are built before the manager (engines/registry.py) and handed to it,
        as a fixed mapping or a catalog read from the plugin registry; `preferences` is the
        book they save `/prefs` through (one over `store` if left out); `hooks` are the
        plugins' turn hooks and event publication (plugin_host.py)."""
        self.store = store
        # AGENTS.md and .rubberduck/rules/*.md of the project (None: no project rules).
        self.rules = rules
        self.preferences = preferences if preferences is not None else PreferenceBook(store)
        # The one the LLM service applies: what the model saw of a file, to map its
        # suggestions back to the user's real values.
        self.redactor = redactor or Redactor()
        self.model = model
        self.has_model = has_model
        self.engines = (
            engines if isinstance(engines, EngineCatalog) else EngineCatalog.fixed(engines)
        )
        self.router = ConversationRouter(self.engines)
        self.hooks = hooks
        self.project = project
        self.retriever = retriever
        self.files = files
        # Not `registry or ...`: an empty registry has len() 0 and is falsy, which silently
        # replaced the configured one (its mailbox size, idle timeout and supervisor).
        self.registry = registry if registry is not None else ActorRegistry()
        self._history_tokens = history_tokens or (lambda _model: DEFAULT_CONTEXT_TOKENS // 2)
        self.correction_rounds = correction_rounds
        self.partial_save_interval = partial_save_interval
        self.partial_save_chunks = partial_save_chunks
        self.recorder = TurnRecorder(store)
        # The agent's open approvals and "allow for this conversation" grants; the chat
        # socket hands it the client's approve and run_result frames.
        self.approvals = ApprovalBroker()
        self.summariser = MemorySummariser(store, self._collect, self._history_tokens)
        self.active_turns = 0
        self._stopping = False  # close() began: a cancelled turn was cut short, not stopped
        self._persisting: set[asyncio.Future[None]] = set()

    # --- the entry point --------------------------------------------------------------

    async def run_turn(self, user_name: str, request: ChatRequest, emit: Emit) -> None:
        """Store the message, queue the turn on its conversation, wait for it to end."""
        user = User(user_name)
        try:
            conversation = await self._conversation_for(user, request)
            question = await self.recorder.store_question(conversation, request)
        except NotPermitted as exc:
            await emit(error_frame(request.id, ErrorCode.NOT_FOUND, str(exc)))
            return
        except Exception:
            # The database refused (disk full, file removed): say so rather than go silent.
            log.exception("RubberDuck could not store the message of turn %s", request.id)
            await emit(
                error_frame(
                    request.id,
                    ErrorCode.INTERNAL,
                    "RubberDuck could not save your message (the server log says why); "
                    "it was not sent. Copy it before reloading.",
                )
            )
            return
        actor = self.registry.get(user.name, conversation.id)
        # The work sees its own Job: a cancel caused by the actor's crash says so.
        job = Job(request.id, lambda: self._process(user, request, question, emit, job))
        try:
            actor.submit(job)
        except MailboxFull:
            message = (
                f"{self.registry.mailbox_size} messages are already waiting in this "
                "conversation; your message is saved, send it again once they are answered."
            )
            await self.recorder.record_failure(question, ErrorCode.BUSY, message)
            await emit(error_frame(request.id, ErrorCode.BUSY, message))
            return
        try:
            await asyncio.shield(job.done)
        except asyncio.CancelledError:
            actor.cancel(request.id)
            raise
        except ActorCrashed:
            # A turn that got far enough recorded its answer so far itself (see _process).
            if not job.recording:
                with contextlib.suppress(Exception):
                    await self.recorder.record_failure(question, ErrorCode.INTERNAL, CRASHED_NOTE)
            await emit(error_frame(request.id, ErrorCode.INTERNAL, CRASHED_NOTE))
        except Exception:
            # A bug before the engine ran (the engine's own failures are answered inside
            # the turn): the question is kept; record it and end the turn with an error.
            message = "RubberDuck hit an internal error; the server log has the details."
            with contextlib.suppress(Exception):
                await self.recorder.record_failure(question, ErrorCode.INTERNAL, message)
            await emit(error_frame(request.id, ErrorCode.INTERNAL, message))

    async def _conversation_for(self, user: User, request: ChatRequest) -> Conversation:
        existing = await self.store.get_conversation(request.conversation_id)
        if existing is not None:
            return require_conversation(user, existing, request.conversation_id, write=True)
        conversation = Conversation(
            id=request.conversation_id,
            user=user.name,
            project_id=self.project.id,
            title=title_from(request.text, request.context),
        )
        try:
            return await self.store.create_conversation(conversation)
        except Exception:
            # Created meanwhile by a parallel first message: use it (if it is ours).
            existing = await self.store.get_conversation(request.conversation_id)
            return require_conversation(user, existing, request.conversation_id, write=True)

    # --- one turn, inside the conversation's actor ------------------------------------

    async def _process(
        self,
        user: User,
        request: ChatRequest,
        question: Message,
        emit: Emit,
        job: Job | None = None,
    ) -> None:
        conversation = await self.store.get_conversation(question.conversation_id)
        if conversation is None:  # deleted while the message waited
            await emit(
                error_frame(request.id, ErrorCode.NOT_FOUND, "The conversation was deleted.")
            )
            return
        history = [
            m
            for m in conversation_order(await self.store.messages(conversation.id))
            if m.id != question.id
        ]
        preferences = await self.preferences.for_message(user, request.text)
        rules = await self._rules_for(request)
        has_model = self.has_model()
        hint = None
        if self.hooks is not None:
            # The message is stored as the user wrote it; plugins' pre_input hooks change
            # only what is routed and answered.
            text = await self.hooks.pre_input(request.text, request.context)
            if text != request.text:
                request = replace(request, text=text)
            hint = self.hooks.route_hint
        route = await self.router.route(
            request.text,
            request.context,
            engine=request.engine,
            has_task=conversation.task is not None,
            classify=self._classifier(user, request, conversation) if has_model else None,
            hint=hint,
        )
        await emit(
            route_frame(
                request.id,
                engine=route.engine,
                reason=route.reason,
                forced=route.forced,
                confidence=route.confidence,
            )
        )
        answer_id = new_id("msg")
        saver = PartialSaver(
            self.store,
            lambda: self.recorder.partial_message(answer_id, turn, route, question),
            interval_s=self.partial_save_interval,
            every_chunks=self.partial_save_chunks,
        )
        turn = Turn(
            request=request,
            text=route.text,
            user=user,
            conversation=conversation,
            history=history,
            preferences=preferences,
            rules=rules,
            emit=emit,
            model=self.model,
            has_model=has_model,
            retriever=self.retriever,
            project_root=self.project.root,
            build_messages=self._builder(
                request.model, history, await self._mentioned(request, emit)
            ),
            new_suggestion=self._suggestion_maker(user, conversation.id, answer_id),
            save_task=functools.partial(self.recorder.save_task, conversation.id),
            command=route.command,
            correction_rounds=self.correction_rounds,
            files=self.files,
            on_text=saver.touch,
            # Only a client that said it runs cells answers approvals (the sidebar).
            approvals=(
                self.approvals.channel(user.name, conversation.id, request.id, emit)
                if request.context.agent.can_run
                else None
            ),
            suggestion_status=functools.partial(self._suggestion_statuses, conversation.id),
        )
        engine = self.engines.get(route.engine)
        if engine is None:  # switched off (plugins_deny, a disabled plugin) since routing
            message = (
                f"The {route.engine!r} mode is turned off on this server; `/help` lists "
                "what is available."
            )
            await self.recorder.record_failure(question, ErrorCode.UNKNOWN_ENGINE, message)
            await emit(error_frame(request.id, ErrorCode.UNKNOWN_ENGINE, message))
            return
        status = MessageStatus.COMPLETE
        failure: tuple[ErrorCode, str] | None = None
        cancelled = False
        stored: Message | None = None
        self.active_turns += 1
        if job is not None:
            job.recording = True  # from here the finally below records the answer
        try:
            await engine.run(turn)
        except LLMError as exc:
            failure = (exc.code, exc.message)
            status = MessageStatus.INCOMPLETE if turn.answer_parts else MessageStatus.ERROR
            await emit(error_frame(request.id, exc.code, exc.message, retry_after=exc.retry_after))
        except asyncio.CancelledError:
            status = MessageStatus.INCOMPLETE if turn.answer_parts else MessageStatus.ERROR
            if job is not None and job.crashed:
                failure = (ErrorCode.INTERNAL, CRASHED_NOTE)  # not the user's Stop
            else:
                cancelled = True
                failure = (ErrorCode.INTERNAL, "cancelled")
            raise
        except Exception:
            log.exception("RubberDuck turn %s (%s) failed", request.id, route.engine)
            failure = (
                ErrorCode.INTERNAL,
                "RubberDuck hit an internal error; the server log has the details.",
            )
            status = MessageStatus.INCOMPLETE if turn.answer_parts else MessageStatus.ERROR
            await emit(error_frame(request.id, *failure))
        finally:
            self.active_turns -= 1
            saver.close()
            # Shielded and tracked: a cancelled turn still records what was said before it
            # stopped, and a server stop waits for that record (see close()).
            persist = asyncio.ensure_future(
                self.recorder.persist_answer(
                    answer_id,
                    turn,
                    route,
                    engine,
                    question,
                    status,
                    failure,
                    cancelled,
                    conversation,
                    stopping=self._stopping,
                )
            )
            self._persisting.add(persist)
            persist.add_done_callback(self._persisting.discard)
            stored = await asyncio.shield(persist)
        if failure is None:
            last = turn.calls[-1] if turn.calls else None
            await emit(
                done_frame(
                    request.id,
                    turn.total_usage(),
                    "stop" if last is None else (last.finish_reason or "stop"),
                    model=last.model_name if last else None,
                    cost_usd=turn.total_cost(),
                    cached=bool(last and last.cached),
                    attempts=[a for call in turn.calls for a in call.attempts],
                    engine=route.engine,
                    conversation_id=conversation.id,
                    message_id=answer_id,
                )
            )
        if self.hooks is not None and stored is not None:
            await self.hooks.answered(user.name, conversation.id, stored, route.engine, turn)
        if stored is None:  # not saved (the conversation was deleted meanwhile): no memory
            return
        # The conversation as the store now holds it, without reading it again.
        after = conversation_order(
            [*history, replace(question, status=MessageStatus.ANSWERED), stored]
        )
        with contextlib.suppress(Exception):
            await self.summariser.summarise_if_full(
                user, request.model, turn.conversation, after, has_model
            )

    # --- helpers the turn gets -------------------------------------------------------

    async def _mentioned(self, request: ChatRequest, emit: Emit) -> Resolved | None:
        """The turn's @ attachments; each file not attached is told to the user."""
        if not request.context.mentions:
            return None
        resolved = await resolve_mentions(
            request.context.mentions,
            root=Path(self.project.root),
            notebook_path=request.context.notebook_path,
            index=self.retriever.index if self.retriever is not None else None,
        )
        for refusal in resolved.refusals:
            await emit(notice_frame(request.id, NoticeCode.FILE_REFUSED, refusal))
        return resolved

    async def _rules_for(self, request: ChatRequest) -> RuleSelection | None:
        if self.rules is None:
            return None
        try:
            # A few stat calls, and a read when a rules file changed: in a thread.
            return await asyncio.to_thread(self.rules.select, request.context.notebook_path)
        except Exception:
            log.warning("RubberDuck could not read the project rules", exc_info=True)
            return None

    def _builder(
        self, model: str | None, history: Sequence[Message], mentioned: Resolved | None = None
    ) -> Callable[..., list[ChatMessage]]:
        window = MemoryWindow(self._history_tokens(model))

        def build(
            *,
            turn: Turn,
            system: str,
            question: str,
            retrieved: Sequence[Any] = (),
            include_context: bool = True,
            include_history: bool = True,
        ) -> list[ChatMessage]:
            return build_turn_messages(
                system=system,
                preferences=turn.preferences.prompt(),
                rules=turn.rules.prompt(),
                conversation=turn.conversation,
                history=history,
                window=window,
                context=turn.context,
                question=question,
                retrieved=retrieved,
                include_context=include_context,
                include_history=include_history,
                mentioned=mentioned,
            )

        return build

    def _classifier(
        self, user: User, request: ChatRequest, conversation: Conversation
    ) -> Callable[[str, Any], Awaitable[tuple[str, str] | None]]:
        async def classify(text: str, _context: Any) -> tuple[str, str] | None:
            # The LLM service redacts every message at its door.
            messages = [
                {"role": "system", "content": CLASSIFY_PROMPT},
                {"role": "user", "content": text[:2000]},
            ]
            reply = await self._collect(user, request.model, conversation.id, messages)
            return parse_classification(reply)

        return classify

    async def _collect(
        self, user: User, model: str | None, conversation_id: str, messages: list[dict[str, str]]
    ) -> str:
        parts: list[str] = []
        stream = self.model.stream(
            user=user.name, messages=messages, model=model, conversation_id=conversation_id
        )
        async with contextlib.aclosing(stream):
            async for piece in stream:
                parts.append(piece.text)
        return "".join(parts)

    async def _suggestion_statuses(
        self, conversation_id: str, ids: Sequence[str]
    ) -> dict[str, str]:
        # One query by id: this turn's few, not the conversation's every suggestion.
        found: dict[str, str] = await self.store.suggestion_statuses(conversation_id, list(ids))
        return found

    def _suggestion_maker(
        self, user: User, conversation_id: str, message_id: str
    ) -> Callable[..., Awaitable[CodeSuggestion | None]]:
        async def make(
            *, target: Any, proposed: str, title: str = "", mode: str = "replace"
        ) -> CodeSuggestion | None:
            # The model saw the code redacted: lines it kept come back with their secrets;
            # a changed line that still holds a placeholder is not offered at all.
            proposed, unresolved = restore_redacted(target.source or "", proposed, self.redactor)
            if unresolved:
                return None
            suggestion = CodeSuggestion(
                id=new_id("sug"),
                user=user.name,
                conversation_id=conversation_id,
                message_id=message_id,
                target=SuggestionTarget(target.path, target.cell_index, target.cell_id),
                original=target.source,
                proposed=proposed,
                title=title,
                mode=mode,
            )
            return await self.store.add_suggestion(suggestion)

        return make

    # --- health -----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"active_turns": self.active_turns, **self.registry.snapshot()}
        sync = getattr(self.store, "sync", None)
        if getattr(sync, "shared", False):
            # Not an error: both servers read and write the conversations (SQLite WAL). Said
            # because the index is the first server's alone, and questions left pending by a
            # crash are only closed by a server that starts alone.
            out["shared"] = True
            out["note"] = (
                f"Another Jupyter server uses these conversations ({sync.path}); both see "
                "the same history. Questions a crash left unanswered are marked once a server "
                "starts alone."
            )
        return out

    async def close(self) -> None:
        self._stopping = True
        await self.registry.stop()
        if self._persisting:
            await asyncio.wait(set(self._persisting), timeout=5)


def litellm_context_tokens(model: str) -> int | None:
    """The model's input window from litellm's local map, if litellm is already loaded
    (it is after the first model call; this never imports it on the event loop)."""
    if sys.modules.get("litellm") is None:
        return None
    return _known_context_tokens(model)


@functools.lru_cache(maxsize=256)
def _known_context_tokens(model: str) -> int | None:
    # litellm's map is static for the process; asked on every turn, once is enough.
    litellm = sys.modules["litellm"]
    try:
        info = litellm.get_model_info(model)
    except Exception:
        return None
    value = info.get("max_input_tokens") if isinstance(info, dict) else None
    return int(value) if value else None


__all__ = ["MAX_HISTORY_TOKENS", "SessionManager", "litellm_context_tokens"]
