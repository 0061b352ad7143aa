"""One call to one model through litellm, imported lazily and off the event loop.

This layer knows litellm and HTTP; it turns every way a call can fail into a
`ProviderFailure` of a known kind. Retries, failover and breakers live in service.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..protocol import Usage
from .config import ModelEntry
from .errors import hide_key

# Some OpenAI-compatible servers (vLLM, Ollama, llama.cpp) need no key, but the OpenAI SDK
# refuses to send a request without one.
_PLACEHOLDER_KEY = "sk-no-key-required"


def _import_litellm() -> Any:
    # Without this, importing litellm fetches a cost map over the network.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # Model names that mention llama otherwise trigger a tokenizer download that stalls offline.
    litellm.disable_hf_tokenizer_download = True
    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


_WARM_CHUNK_BASE = {"id": "warm", "object": "chat.completion.chunk", "created": 0, "model": "m"}
_WARM_CHUNKS: tuple[dict[str, Any], ...] = (
    {
        **_WARM_CHUNK_BASE,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "a"}}],
    },
    {**_WARM_CHUNK_BASE, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    {
        **_WARM_CHUNK_BASE,
        "choices": [],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    },
)


def _load_and_warm_litellm() -> Any:
    """Imports litellm and does, in this worker thread, what its first call would do on
    the event loop.

    Measured on 2 cores: after the import (~1.5-3 s), the first streamed call still took
    0.81 s, nearly all of it on the loop: ~500 modules (the OpenAI SDK's resources, litellm's
    proxy and logging types), tiktoken's default encoding, pydantic schemas built on first
    use. The first 50 chats after a start all waited on it (5.8 s p50). With the imports
    below and one mocked streamed completion here, the first real call takes ~35 ms. The
    mock sends nothing anywhere: litellm answers `mock_response` itself.
    """
    litellm = _import_litellm()
    with contextlib.suppress(Exception):
        import anyio._backends._asyncio  # noqa: F401  (the SDK's async backend, lazily)
        import litellm._service_logger
        import litellm.litellm_core_utils.default_encoding  # loads tiktoken's encoding
        import openai

        # The SDK imports its resource modules on first attribute access.
        sdk = openai.AsyncOpenAI(api_key=_PLACEHOLDER_KEY, base_url="http://127.0.0.1:9/v1")
        _resources = sdk.chat.completions
        # The SDK builds a pydantic validator per union field the first time a streamed
        # chunk has it (role, finish_reason, usage): ~60 ms on the loop on the first call.
        from openai._models import construct_type
        from openai.types.chat import ChatCompletionChunk

        for chunk in _WARM_CHUNKS:
            construct_type(type_=ChatCompletionChunk, value=chunk)
    with contextlib.suppress(Exception):
        warm = litellm.completion(
            model="openai/rubberduck-warm-up",
            messages=[{"role": "user", "content": "warm up"}],
            mock_response="ready",
            stream=True,
            stream_options={"include_usage": True},
        )
        for _chunk in warm:
            pass
    return litellm


class FailureKind(StrEnum):
    RATE_LIMITED = "rate_limited"
    SERVER = "server_error"
    CONNECTION = "connection_error"
    FIRST_TOKEN_TIMEOUT = "first_token_timeout"
    IDLE_TIMEOUT = "idle_timeout"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    # A prompt longer than the model's window: another model (context_window_fallbacks) can
    # take it, a retry of the same cannot.
    CONTEXT_WINDOW = "context_window"
    INCOMPLETE = "incomplete"


# What a retry or another model can cure: the provider was busy, down or slow to start.
TRANSIENT = {
    FailureKind.RATE_LIMITED,
    FailureKind.SERVER,
    FailureKind.CONNECTION,
    FailureKind.FIRST_TOKEN_TIMEOUT,
}


class ProviderFailure(Exception):
    def __init__(
        self,
        kind: FailureKind,
        detail: str,
        *,
        retry_after: float | None = None,
        started: bool = False,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.retry_after = retry_after
        self.started = started


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    first_token: float = 60.0
    idle: float = 30.0
    total: float = 600.0


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of one tool call as a stream carries it: the first names it (index, id,
    name), the later ones add to its arguments' JSON text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One whole tool call the model made; `arguments` is the JSON text it wrote, which
    may not parse (the tool dispatcher says so to the model)."""

    id: str
    name: str
    arguments: str

    def to_message(self) -> dict[str, Any]:
        """As an assistant message's `tool_calls` entry (OpenAI's shape)."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


class ToolCallAssembler:
    """Joins a stream's tool-call deltas into whole calls, by their index. A delta with a
    new id at an index already in use starts another call: some servers send every call
    whole, each at index 0."""

    __slots__ = ("_calls", "_open")

    def __init__(self) -> None:
        self._calls: list[list[Any]] = []  # [id, name, argument parts], in arrival order
        self._open: dict[int, list[Any]] = {}  # the call each index is adding to

    def add(self, deltas: tuple[ToolCallDelta, ...]) -> None:
        for delta in deltas:
            call = self._open.get(delta.index)
            if call is None or (delta.id and call[0] and delta.id != call[0]):
                call = [None, None, []]
                self._calls.append(call)
                self._open[delta.index] = call
            if delta.id:
                call[0] = delta.id
            if delta.name:
                call[1] = delta.name
            if delta.arguments:
                call[2].append(delta.arguments)

    def calls(self) -> tuple[ToolCall, ...]:
        # A provider that sends no id (some local servers) still gets one to answer to.
        return tuple(
            ToolCall(call_id or f"call_{n}", name or "", "".join(parts))
            for n, (call_id, name, parts) in enumerate(self._calls)
        )


@dataclass(frozen=True, slots=True)
class StreamPiece:
    """A text delta (and/or tool-call deltas), or (with finish_reason set) the end of an
    answer and what it cost; the end of a turn that called tools carries the assembled
    `calls` and finish_reason "tool_calls"."""

    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    model_name: str | None = None
    cost_usd: float | None = None
    cached: bool = False
    attempts: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    tool_calls: tuple[ToolCallDelta, ...] = ()
    calls: tuple[ToolCall, ...] = ()


def tool_call_deltas(raw: Any) -> tuple[ToolCallDelta, ...]:
    """A chunk's `delta.tool_calls` (dicts from JSON, or the SDK's objects) as deltas."""
    if not raw:
        return ()
    out = []
    for item in raw:
        get = item.get if isinstance(item, dict) else lambda k, _i=item: getattr(_i, k, None)
        function = get("function")
        if isinstance(function, dict):
            name, arguments = function.get("name"), function.get("arguments")
        else:
            name = getattr(function, "name", None)
            arguments = getattr(function, "arguments", None)
        index = get("index")
        out.append(
            ToolCallDelta(
                index=int(index) if index is not None else len(out),
                id=get("id") or None,
                name=name or None,
                arguments=arguments or "",
            )
        )
    return tuple(out)


class LiteLLMGateway:
    def __init__(self) -> None:
        self._litellm: Any = None
        self._loading: asyncio.Future[Any] | None = None
        self.state = "idle"

    async def load(self) -> Any:
        """Import and warm litellm in a worker thread (1.5-3 s), once; later calls return at
        once. Every caller waiting meanwhile shares the one load."""
        if self._litellm is not None:
            return self._litellm
        if self._loading is None:
            self.state = "loading"
            self._loading = asyncio.ensure_future(asyncio.to_thread(_load_and_warm_litellm))
        try:
            self._litellm = await asyncio.shield(self._loading)
        except Exception:
            self.state = "failed"
            self._loading = None
            raise
        self.state = "ready"
        return self._litellm

    def _call_kwargs(
        self,
        entry: ModelEntry,
        messages: list[dict[str, str]],
        *,
        stream: bool,
        timeouts: Timeouts,
        max_output_tokens: int | None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
    ) -> dict[str, Any]:
        import httpx

        kwargs: dict[str, Any] = dict(entry.extra_params)
        kwargs.update(
            model=entry.model,
            messages=messages,
            stream=stream,
            timeout=httpx.Timeout(timeouts.total, connect=timeouts.connect),
            # Retries belong to RubberDuck, not to the SDK underneath.
            max_retries=0,
        )
        if stream:
            kwargs["stream_options"] = {"include_usage": True}
        if entry.api_base:
            kwargs["api_base"] = entry.api_base
        if entry.api_key:
            kwargs["api_key"] = entry.api_key
        elif entry.api_base and entry.provider == "openai" and not os.environ.get("OPENAI_API_KEY"):
            kwargs["api_key"] = _PLACEHOLDER_KEY
        if max_output_tokens:
            kwargs["max_tokens"] = max_output_tokens
        if tools:
            kwargs["tools"] = tools
            if tool_choice is not None:
                kwargs["tool_choice"] = tool_choice
        return kwargs

    async def stream(
        self,
        entry: ModelEntry,
        messages: list[dict[str, str]],
        *,
        timeouts: Timeouts,
        max_output_tokens: int | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
    ) -> AsyncIterator[StreamPiece]:
        """Text (and tool-call delta) pieces, then one final piece with usage and
        finish_reason."""
        litellm = await self.load()
        kwargs = self._call_kwargs(
            entry,
            messages,
            stream=True,
            timeouts=timeouts,
            max_output_tokens=max_output_tokens,
            tools=tools,
            tool_choice=tool_choice,
        )
        started = False
        response: Any = None
        try:
            async with asyncio.timeout(timeouts.first_token):
                response = await litellm.acompletion(**kwargs)
                iterator = response.__aiter__()
                first = await _next_text(iterator)
            usage: Usage | None = None
            chunk = first
            while chunk is not None:
                text, chunk_usage, deltas = chunk
                usage = chunk_usage or usage
                if text or deltas:
                    started = True
                    yield StreamPiece(text=text, tool_calls=deltas)
                try:
                    async with asyncio.timeout(timeouts.idle):
                        chunk = await _next_chunk(iterator)
                except TimeoutError:
                    raise ProviderFailure(
                        FailureKind.IDLE_TIMEOUT,
                        f"no data for {timeouts.idle:g} s mid-answer",
                        started=started,
                    ) from None
            # litellm reports finish_reason "stop" even when the stream just ended, so ask
            # whether the provider itself ever said it had finished.
            finish_reason = getattr(response, "received_finish_reason", None)
            if not finish_reason:
                raise ProviderFailure(
                    FailureKind.INCOMPLETE,
                    "the stream ended without a finish reason or [DONE]",
                    started=started,
                )
            yield StreamPiece(usage=usage or Usage(), finish_reason=str(finish_reason))
        except ProviderFailure:
            raise
        except TimeoutError:
            raise ProviderFailure(
                FailureKind.FIRST_TOKEN_TIMEOUT,
                f"no first token within {timeouts.first_token:g} s",
            ) from None
        except Exception as exc:
            raise classify(exc, started=started, secret=entry.api_key) from None
        finally:
            # Closing the response is what stops the upstream stream when the user cancels.
            if response is not None and hasattr(response, "aclose"):
                await asyncio.shield(_close_quietly(response))

    async def complete(
        self, entry: ModelEntry, messages: list[dict[str, str]], *, timeouts: Timeouts
    ) -> str:
        """One non-streamed answer; `jupyter rubberduck doctor` probes models with it."""
        litellm = await self.load()
        kwargs = self._call_kwargs(
            entry, messages, stream=False, timeouts=timeouts, max_output_tokens=None
        )
        try:
            async with asyncio.timeout(timeouts.first_token):
                response = await litellm.acompletion(**kwargs)
        except TimeoutError:
            raise ProviderFailure(
                FailureKind.FIRST_TOKEN_TIMEOUT, f"no answer within {timeouts.first_token:g} s"
            ) from None
        except Exception as exc:
            raise classify(exc, started=False, secret=entry.api_key) from None
        return str(response.choices[0].message.content or "")

    async def stream_text(
        self,
        entry: ModelEntry,
        prompt: str,
        suffix: str,
        *,
        timeouts: Timeouts,
        max_output_tokens: int,
        stop: tuple[str, ...] = (),
    ) -> AsyncIterator[StreamPiece]:
        """Fill-in-the-middle through litellm's `text_completion` (prompt + suffix, for the
        providers whose completion API takes a suffix: Codestral, DeepSeek, Ollama, ...):
        text pieces, then one final piece, as `stream`."""
        litellm = await self.load()
        kwargs = self._call_kwargs(
            entry, [], stream=True, timeouts=timeouts, max_output_tokens=max_output_tokens
        )
        kwargs.pop("messages", None)  # stream_options.include_usage stays: usage is counted
        kwargs.update(prompt=prompt, suffix=suffix)
        if stop:
            kwargs["stop"] = list(stop)[:4]
        started = False
        response: Any = None
        usage: Usage | None = None
        finish_reason: str | None = None
        try:
            async with asyncio.timeout(timeouts.first_token):
                response = await litellm.atext_completion(**kwargs)
                iterator = response.__aiter__()
                while True:  # to the first text: the first-token clock covers it
                    try:
                        chunk = await iterator.__anext__()
                    except StopAsyncIteration:
                        chunk = None
                        break
                    text, usage, finish_reason = _text_chunk(chunk, usage, finish_reason)
                    if text:
                        break
            while chunk is not None:
                if text:
                    started = True
                    yield StreamPiece(text=text)
                try:
                    async with asyncio.timeout(timeouts.idle):
                        chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise ProviderFailure(
                        FailureKind.IDLE_TIMEOUT,
                        f"no data for {timeouts.idle:g} s mid-completion",
                        started=started,
                    ) from None
                text, usage, finish_reason = _text_chunk(chunk, usage, finish_reason)
            yield StreamPiece(usage=usage or Usage(), finish_reason=finish_reason or "stop")
        except ProviderFailure:
            raise
        except TimeoutError:
            raise ProviderFailure(
                FailureKind.FIRST_TOKEN_TIMEOUT,
                f"no first token within {timeouts.first_token:g} s",
            ) from None
        except Exception as exc:
            raise classify(exc, started=started, secret=entry.api_key) from None
        finally:
            if response is not None and hasattr(response, "aclose"):
                await asyncio.shield(_close_quietly(response))

    def cost_usd(self, entry: ModelEntry, usage: Usage) -> float | None:
        """From litellm's local cost map; None for models it does not price (local, proxies)."""
        if self._litellm is None or not usage.total_tokens:
            return None
        try:
            prompt, completion = self._litellm.cost_per_token(
                model=entry.model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
            )
        except Exception:
            return None
        return float(prompt) + float(completion)


def _text_chunk(
    chunk: Any, usage: Usage | None, finish_reason: str | None
) -> tuple[str, Usage | None, str | None]:
    """One chunk of litellm's text-completion stream: its text, and usage and finish
    reason carried forward."""
    raw_usage = getattr(chunk, "usage", None)
    if raw_usage is not None and getattr(raw_usage, "total_tokens", None):
        usage = Usage(
            prompt_tokens=int(raw_usage.prompt_tokens or 0),
            completion_tokens=int(raw_usage.completion_tokens or 0),
            total_tokens=int(raw_usage.total_tokens or 0),
        )
    choices = getattr(chunk, "choices", None) or ()
    if not choices:
        return "", usage, finish_reason
    choice = choices[0]
    get = choice.get if isinstance(choice, dict) else lambda k: getattr(choice, k, None)
    return str(get("text") or ""), usage, get("finish_reason") or finish_reason


async def _close_quietly(response: Any) -> None:
    # The answer is already decided; a failure to close cleanly changes nothing for the user.
    with contextlib.suppress(Exception):
        await response.aclose()


async def _next_chunk(
    iterator: Any,
) -> tuple[str, Usage | None, tuple[ToolCallDelta, ...]] | None:
    try:
        chunk = await iterator.__anext__()
    except StopAsyncIteration:
        return None
    usage: Usage | None = None
    raw_usage = getattr(chunk, "usage", None)
    if raw_usage is not None and getattr(raw_usage, "total_tokens", None):
        usage = Usage(
            prompt_tokens=int(raw_usage.prompt_tokens or 0),
            completion_tokens=int(raw_usage.completion_tokens or 0),
            total_tokens=int(raw_usage.total_tokens or 0),
        )
    text = ""
    deltas: tuple[ToolCallDelta, ...] = ()
    if chunk.choices:
        delta = chunk.choices[0].delta
        text = getattr(delta, "content", None) or ""
        deltas = tool_call_deltas(getattr(delta, "tool_calls", None))
    return text, usage, deltas


async def _next_text(
    iterator: Any,
) -> tuple[str, Usage | None, tuple[ToolCallDelta, ...]] | None:
    """Skips role-only and empty chunks: the first-token clock runs until real text (or
    the first piece of a tool call, the answer of a turn that only calls tools)."""
    while True:
        chunk = await _next_chunk(iterator)
        if chunk is None or chunk[0] or chunk[2]:
            return chunk


# How providers say a prompt is too long (OpenAI's code and message, Anthropic's, Gemini's,
# vLLM's); lower-case substrings, so checking one costs a scan of the error text.
_CONTEXT_WINDOW_HINTS = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "prompt is too long",
    "input is too long",
    "exceeds the maximum number of tokens",
)


def says_context_window(text: str) -> bool:
    """Whether a provider's 400 answer says the prompt does not fit the model's window."""
    low = text.lower()
    return any(hint in low for hint in _CONTEXT_WINDOW_HINTS)


# How providers say a model cannot call tools (Ollama's "does not support tools", vLLM's
# "auto" tool choice without --enable-auto-tool-choice, OpenAI's "tools is not supported in
# this model"); lower-case substrings of a 400's text.
_NO_TOOLS_HINTS = (
    "does not support tools",
    "does not support tool",
    "tools is not supported",
    "tools are not supported",
    "tool use is not supported",
    "tool calling is not supported",
    "function calling is not supported",
    "does not support function calling",
    "enable-auto-tool-choice",
    "tool_choice is not supported",
)


def says_no_tools(text: str) -> bool:
    """Whether a provider's 400 answer says the model cannot be offered tools."""
    low = text.lower()
    return any(hint in low for hint in _NO_TOOLS_HINTS)


def _cause_names(exc: BaseException) -> set[str]:
    names: set[str] = set()
    current: BaseException | None = exc
    while current is not None and len(names) < 16:
        names.add(type(current).__name__)
        current = current.__cause__ or current.__context__
    return names


def _retry_after(exc: BaseException) -> float | None:
    # litellm keeps the provider's headers apart; its `response` may carry none.
    candidates = [
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ]
    for headers in candidates:
        value = headers.get("retry-after") if headers else None
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    return None


def classify(exc: BaseException, *, started: bool, secret: str | None) -> ProviderFailure:
    """Maps litellm's exceptions (which wrap the SDK's, which wrap httpx's) to one kind."""
    detail = str(exc) or type(exc).__name__
    detail = hide_key(detail, secret)
    if len(detail) > 300:
        detail = detail[:300] + "…"
    chain = _cause_names(exc)
    status = getattr(exc, "status_code", None)
    if started:
        return ProviderFailure(FailureKind.INCOMPLETE, detail, started=True)
    if "RateLimitError" in chain or status == 429:
        return ProviderFailure(FailureKind.RATE_LIMITED, detail, retry_after=_retry_after(exc))
    if chain & {"AuthenticationError", "PermissionDeniedError"} or status in (401, 403):
        return ProviderFailure(FailureKind.AUTH, detail)
    if chain & {"APIConnectionError", "ConnectError", "ConnectionRefusedError", "ConnectTimeout"}:
        return ProviderFailure(FailureKind.CONNECTION, detail)
    if chain & {"Timeout", "APITimeoutError", "ReadTimeout"}:
        return ProviderFailure(FailureKind.FIRST_TOKEN_TIMEOUT, detail)
    if "ContextWindowExceededError" in chain or (status == 400 and says_context_window(detail)):
        return ProviderFailure(FailureKind.CONTEXT_WINDOW, detail)
    if isinstance(status, int) and 400 <= status < 500:
        return ProviderFailure(FailureKind.BAD_REQUEST, detail)
    # 5xx, a stream cut before any text, or anything unknown from the provider.
    return ProviderFailure(FailureKind.SERVER, detail)
