"""Chat completions streamed straight from OpenAI-compatible endpoints, without litellm.

Why: under load, litellm's per-chunk machinery (the OpenAI SDK's chunk models and
litellm's CustomStreamWrapper) cost ~0.9-1 ms of CPU per chunk on our 2 cores, plus
~4.6 ms of call setup and ~4.3 ms of end-of-stream work: ~30 ms of one GIL per 24-chunk
answer, 42% + 17% of the server's CPU at 200 users (docs/benchmarks.md, "Load"). Here a
chunk costs one `json.loads` and a few dict lookups.

Which entries: a model `openai/<name>` (OpenAI itself, vLLM, llama.cpp, LM Studio, a
LiteLLM proxy, the fake provider), whose other litellm_params are all ones this module
knows how to send (`BODY_PARAMS`, headers, `organization`, `extra_body`) or may ignore
(`IGNORED_PARAMS`). Anything else (anthropic/, azure/, a bare model name, an unknown
param such as `api_version`) stays on litellm, which knows it.

The contract is LiteLLMGateway.stream's (client.py), so the service cannot tell the two
apart: the same request (`stream_options.include_usage`, `max_tokens`), the same pieces
(text, then one final piece with the provider's usage and finish reason), the same
timeouts and the same `ProviderFailure` kinds for each HTTP status and broken stream, as
litellm + `classify` map them (tests/unit/test_openai_stream.py runs both side by side).
Pooled `httpx.AsyncClient`s (HTTP/1.1, keep-alive; a few shards, see POOL_SHARDS) serve
every call of the process's loop; closing a response that is not finished closes its
connection, which is what Stop relies on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from .. import __version__
from ..protocol import Usage
from .client import (
    _PLACEHOLDER_KEY,
    FailureKind,
    ProviderFailure,
    StreamPiece,
    Timeouts,
    ToolCallDelta,
    says_context_window,
    tool_call_deltas,
)
from .config import ModelEntry
from .errors import hide_key
from .sse import SSEError, SSEParser, parse_retry_after

log = logging.getLogger(__name__)

OPENAI_PREFIX = "openai/"
DEFAULT_API_BASE = "https://api.openai.com/v1"
# Where litellm looks for an OpenAI endpoint when the entry names none, in its order.
API_BASE_ENV = ("OPENAI_BASE_URL", "OPENAI_API_BASE")

# litellm_params sent as they are in the request body: OpenAI's own chat parameters.
BODY_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "logit_bias",
        "user",
        "response_format",
        "reasoning_effort",
        "max_tokens",
        "max_completion_tokens",
        "service_tier",
    }
)
# litellm_params that change nothing on the wire: litellm's router and cost knobs, and a
# timeout RubberDuck replaces with its own (as LiteLLMGateway does).
IGNORED_PARAMS = frozenset(
    {
        "timeout",
        "stream_timeout",
        "rpm",
        "tpm",
        "input_cost_per_token",
        "output_cost_per_token",
        "drop_params",
    }
)
HEADER_PARAMS = ("extra_headers", "headers")
KNOWN_PARAMS = BODY_PARAMS | IGNORED_PARAMS | {*HEADER_PARAMS, "organization", "extra_body"}

# An error body is read for its message only; a server that streams megabytes of HTML
# with a 502 gets cut here.
MAX_ERROR_BODY = 64 * 1024
DETAIL_CHARS = 300
# The pool: 200 concurrent answers measured, the rate limiter's queue in front of it; a
# call that finds its pool full waits up to the connect timeout, then fails over.
MAX_CONNECTIONS = 512
# httpcore's pool looks at every one of its connections each time a request starts or a
# response ends (is_idle/has_expired per connection): with one pool of 200 open streams
# that was 19% of the server's GIL in the 200-user load run. Shards of 1/8 the size make
# that scan 8x shorter; each call takes the shard with the fewest streams in flight.
POOL_SHARDS = 8
# Idle connections kept for the next call: enough for a burst to reuse them.
MAX_KEEPALIVE = 128
KEEPALIVE_EXPIRY_S = 30.0
# After [DONE], the rest of the response (its chunked terminator) is read so the
# connection goes back to the pool; a server that keeps it open loses it after this.
DRAIN_READS = 8
DRAIN_S = 1.0


@dataclass(frozen=True, slots=True)
class _Plan:
    """What every call to one entry sends, worked out once."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]  # without messages
    where: str  # the endpoint as anyone may see it: no key, no userinfo
    key_missing: bool


def direct_model_name(entry: ModelEntry) -> str | None:
    """The name to send for an `openai/<name>` entry, else None (litellm's job)."""
    if not entry.model.startswith(OPENAI_PREFIX):
        return None
    name = entry.model[len(OPENAI_PREFIX) :]
    return name or None


def build_plan(entry: ModelEntry, env: Mapping[str, str]) -> _Plan | None:
    """The request for `entry`, or None when litellm should send it (see the module doc)."""
    model = direct_model_name(entry)
    if model is None:
        return None
    params = dict(entry.extra_params)
    if set(params) - KNOWN_PARAMS:
        return None
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        "User-Agent": f"rubberduck-jupyter/{__version__}",
    }
    base = entry.api_base
    if not base:
        base = next((env[v] for v in API_BASE_ENV if env.get(v)), DEFAULT_API_BASE)
    # Key as LiteLLMGateway resolves it: the entry's, else OPENAI_API_KEY, else (for a
    # self-hosted endpoint that needs none) a placeholder the SDK would also send.
    key = entry.api_key or env.get("OPENAI_API_KEY") or None
    if key is None and entry.api_base:
        key = _PLACEHOLDER_KEY
    if key:
        headers["Authorization"] = f"Bearer {key}"
    organization = params.pop("organization", None)
    if organization is not None:
        if not isinstance(organization, str):
            return None
        headers["OpenAI-Organization"] = organization
    for name in HEADER_PARAMS:
        extra = params.pop(name, None)
        if extra is None:
            continue
        if not isinstance(extra, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
        ):
            return None
        headers.update(extra)
    extra_body = params.pop("extra_body", None)
    if extra_body is not None and not isinstance(extra_body, Mapping):
        return None
    body: dict[str, Any] = {k: v for k, v in params.items() if k in BODY_PARAMS}
    body.update(extra_body or {})
    body.update(model=model, stream=True, stream_options={"include_usage": True})
    where = (
        entry.public_api_base()
        if entry.api_base
        else ModelEntry(name="", model="", api_base=base).public_api_base()
    )
    return _Plan(
        url=base.rstrip("/") + "/chat/completions",
        headers=headers,
        body=body,
        where=where or base,
        key_missing=key is None,
    )


class _BadStream(Exception):
    """The provider's stream is not a chat-completion stream (bad SSE, JSON or shape), or
    it reported an error mid-stream; the caller decides the kind (started or not)."""


class _ChunkReader:
    """Chat-completion chunks out of an SSE byte stream; remembers the finish reason and
    the provider's usage as they pass."""

    __slots__ = (
        "_bytes",
        "_parser",
        "_pending",
        "deltas",
        "done",
        "finish_reason",
        "saw_done",
        "usage",
    )

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._bytes = chunks
        self._parser = SSEParser()
        self._pending: deque[bytes] = deque()
        self.done = False
        self.saw_done = False
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        # The tool-call deltas of the chunk `next`/`take` returned last (usually none).
        self.deltas: tuple[ToolCallDelta, ...] = ()

    @property
    def pending(self) -> bool:
        """Whether the next chunk is already here (no read, so no timer needed)."""
        return bool(self._pending) or self.done

    async def next(self) -> str | None:
        """The next chunk's text ("" for one without), or None at [DONE] or the end.

        Each turn of the loop consumes one read of the network; the caller's timeout
        bounds how long that may take."""
        while not self._pending:
            if self.done:
                return None
            try:
                raw = await self._bytes.__anext__()
            except StopAsyncIteration:
                self.done = True
                return None
            try:
                for _event, data in self._parser.feed(raw):
                    self._pending.append(data)
            except SSEError as exc:
                raise _BadStream(str(exc)) from None
        return self.take()

    def take(self) -> str | None:
        if not self._pending:
            return None
        data = self._pending.popleft()
        if data == b"[DONE]":
            self.done = self.saw_done = True
            self._pending.clear()
            self.deltas = ()
            return None
        return self._text(data)

    async def next_text(self) -> str | None:
        """Skips role-only and empty chunks: the first-token clock runs until real text
        (or a tool call's first piece). Bounded by that clock (the caller's timeout)."""
        while True:
            text = await self.next()
            if text is None or text or self.deltas:
                return text

    async def drain(self) -> None:
        """Reads what follows [DONE] (the body's end), so the connection can be reused."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(DRAIN_S):
                for _ in range(DRAIN_READS):
                    await self._bytes.__anext__()

    def _text(self, data: bytes) -> str:
        try:
            chunk = json.loads(data)
        except ValueError:
            raise _BadStream(f"a chunk that is not JSON: {data[:80]!r}") from None
        if not isinstance(chunk, dict):
            raise _BadStream(f"a chunk that is not a JSON object: {data[:80]!r}")
        error = chunk.get("error")
        if error:
            raise _BadStream(f"the provider reported an error mid-stream: {_message_of(error)}")
        try:
            usage = chunk.get("usage")
            if usage and usage.get("total_tokens"):
                self.usage = Usage(
                    prompt_tokens=int(usage.get("prompt_tokens") or 0),
                    completion_tokens=int(usage.get("completion_tokens") or 0),
                    total_tokens=int(usage["total_tokens"]),
                )
            self.deltas = ()
            choices = chunk.get("choices")
            if not choices:
                return ""
            choice = choices[0]
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = str(reason)
            delta = choice.get("delta")
            text = delta.get("content") if delta else None
            if delta and "tool_calls" in delta:
                self.deltas = tool_call_deltas(delta["tool_calls"])
        except (AttributeError, TypeError, ValueError, KeyError, IndexError):
            raise _BadStream(f"a chunk of an unexpected shape: {data[:80]!r}") from None
        if text is None:
            return ""
        if not isinstance(text, str):
            raise _BadStream(f"a chunk whose content is not text: {data[:80]!r}")
        return text


class OpenAICompatibleGateway:
    """LiteLLMGateway.stream's contract, over one pooled httpx client (see module doc)."""

    def __init__(self, *, env: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if env is None else env
        # By model_name; the entry is kept to notice a different entry under the same name.
        self._plans: dict[str, tuple[ModelEntry, _Plan | None]] = {}
        self._clients: list[httpx.AsyncClient] = []
        self._in_flight: list[int] = []
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._timeouts: tuple[Timeouts, httpx.Timeout] | None = None

    def handles(self, entry: ModelEntry) -> bool:
        return self._plan(entry) is not None

    def _plan(self, entry: ModelEntry) -> _Plan | None:
        known = self._plans.get(entry.name)
        if known is None or known[0] is not entry:
            known = (entry, build_plan(entry, self._env))
            self._plans[entry.name] = known
        return known[1]

    def prepare(self) -> None:
        """Builds the pool's clients ahead of the first stream; call it in a worker thread.

        Each client's SSL context loads the CA bundle (~50 ms, on the event loop when done
        lazily: measured as the first chat's largest stall); one context serves them all."""
        self._clients = self._new_clients()
        self._in_flight = [0] * POOL_SHARDS
        self._client_loop = None  # not yet bound: the first loop to stream adopts them

    def _new_clients(self) -> list[httpx.AsyncClient]:
        limits = httpx.Limits(
            max_connections=MAX_CONNECTIONS // POOL_SHARDS,
            max_keepalive_connections=MAX_KEEPALIVE // POOL_SHARDS,
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
        )
        # As the OpenAI SDK: HTTPS_PROXY/NO_PROXY and SSL_CERT_FILE apply.
        ssl_context = httpx.create_ssl_context(trust_env=True)
        return [
            httpx.AsyncClient(
                http1=True,
                http2=False,
                trust_env=True,
                verify=ssl_context,
                follow_redirects=False,
                limits=limits,
            )
            for _ in range(POOL_SHARDS)
        ]

    def _shard(self) -> int:
        """The pool shard with the fewest streams in flight, on this loop."""
        # A client's connections belong to the loop that opened them; tests and
        # benchmarks may run several loops in one process, one after another.
        loop = asyncio.get_running_loop()
        if self._clients and self._client_loop is None:
            self._client_loop = loop  # prepared in a thread, never used: this loop's now
        if not self._clients or self._client_loop is not loop:
            self._clients = self._new_clients()
            self._in_flight = [0] * POOL_SHARDS
            self._client_loop = loop
        counts = self._in_flight
        return counts.index(min(counts))

    def _httpx_timeout(self, timeouts: Timeouts) -> httpx.Timeout:
        # As LiteLLMGateway: connect (and a pool slot) within `connect`; each read and
        # write within `total`. The first-token, idle and total clocks run on top.
        if self._timeouts is None or self._timeouts[0] != timeouts:
            self._timeouts = (
                timeouts,
                httpx.Timeout(timeouts.total, connect=timeouts.connect, pool=timeouts.connect),
            )
        return self._timeouts[1]

    async def aclose(self) -> None:
        clients, self._clients, self._client_loop = self._clients, [], None
        for client in clients:
            with contextlib.suppress(Exception):
                await client.aclose()

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
        plan = self._plan(entry)
        if plan is None:
            raise ProviderFailure(
                FailureKind.BAD_REQUEST,
                f"{entry.name} ({entry.model}) is not an OpenAI-compatible entry this path "
                "can send; it goes through litellm",
            )
        if plan.key_missing:
            raise ProviderFailure(
                FailureKind.AUTH,
                f"no API key for {entry.name}: set OPENAI_API_KEY or the entry's api_key",
            )
        body = dict(plan.body)
        body["messages"] = messages
        if max_output_tokens:
            body["max_tokens"] = max_output_tokens
        if tools:
            body["tools"] = tools
            if tool_choice is not None:
                body["tool_choice"] = tool_choice
        shard = self._shard()
        client = self._clients[shard]
        in_flight = self._in_flight
        request = client.build_request(
            "POST",
            plan.url,
            headers=plan.headers,
            content=json.dumps(body, ensure_ascii=False).encode(),
            timeout=self._httpx_timeout(timeouts),
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeouts.total
        secret = entry.api_key
        started = False
        response: httpx.Response | None = None
        in_flight[shard] += 1
        try:
            try:
                async with asyncio.timeout(min(timeouts.first_token, timeouts.total)):
                    response = await client.send(request, stream=True)
                    if not 200 <= response.status_code < 300:
                        raise await _status_failure(response, plan.where, secret)
                    reader = _ChunkReader(response.aiter_bytes())
                    text = await reader.next_text()
            except TimeoutError:
                raise ProviderFailure(
                    FailureKind.FIRST_TOKEN_TIMEOUT,
                    f"no first token within {timeouts.first_token:g} s",
                ) from None
            while text is not None:
                if text:
                    started = True
                    yield StreamPiece(text=text, tool_calls=reader.deltas)
                elif reader.deltas:
                    started = True
                    yield StreamPiece(tool_calls=reader.deltas)
                if reader.pending:
                    # Already read (several chunks often come in one read): no timer.
                    text = reader.take()
                    continue
                budget = deadline - loop.time()
                cut_by_total = budget <= timeouts.idle
                try:
                    async with asyncio.timeout(max(0.0, min(timeouts.idle, budget))):
                        text = await reader.next()
                except TimeoutError:
                    if cut_by_total:
                        raise ProviderFailure(
                            FailureKind.INCOMPLETE,
                            f"the answer took longer than {timeouts.total:g} s in all",
                            started=started,
                        ) from None
                    raise ProviderFailure(
                        FailureKind.IDLE_TIMEOUT,
                        f"no data for {timeouts.idle:g} s mid-answer",
                        started=started,
                    ) from None
            if reader.saw_done:
                await reader.drain()
            # As on litellm's path: the answer is complete only if the provider said why
            # it stopped; [DONE] alone, or a clean end of the body, is not enough.
            if not reader.finish_reason:
                raise ProviderFailure(
                    FailureKind.INCOMPLETE,
                    "the stream ended without a finish reason or [DONE]",
                    started=started,
                )
            yield StreamPiece(usage=reader.usage or Usage(), finish_reason=reader.finish_reason)
        except ProviderFailure:
            raise
        except _BadStream as exc:
            detail = _clean(f"{exc} (from {plan.where})", secret)
            kind = FailureKind.INCOMPLETE if started else FailureKind.SERVER
            raise ProviderFailure(kind, detail, started=started) from None
        except Exception as exc:
            responded = response is not None
            raise _transport_failure(exc, started, responded, plan.where, secret) from None
        finally:
            # Closing an unfinished response closes its connection: the provider stops
            # generating at once when the user presses Stop.
            in_flight[shard] -= 1
            if response is not None:
                await asyncio.shield(_close_quietly(response))


async def _close_quietly(response: httpx.Response) -> None:
    with contextlib.suppress(Exception):
        await response.aclose()


def _clean(detail: str, secret: str | None) -> str:
    detail = hide_key(detail, secret)
    if len(detail) > DETAIL_CHARS:
        detail = detail[:DETAIL_CHARS] + "…"
    return detail


def _message_of(error: Any) -> str:
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str) and message:
            return message
    return str(error)


async def _read_bounded(response: httpx.Response) -> bytes:
    parts: list[bytes] = []
    size = 0
    with contextlib.suppress(httpx.HTTPError):
        async for part in response.aiter_bytes():
            parts.append(part)
            size += len(part)
            if size >= MAX_ERROR_BODY:
                break
    return b"".join(parts)[:MAX_ERROR_BODY]


async def _status_failure(
    response: httpx.Response, where: str, secret: str | None
) -> ProviderFailure:
    """A non-2xx answer, mapped as litellm's exception types + `classify` map it."""
    status = response.status_code
    raw = await _read_bounded(response)
    message = ""
    try:
        payload = json.loads(raw)
        if isinstance(payload, dict):
            message = _message_of(payload.get("error") or payload.get("detail") or payload)
    except ValueError:
        message = raw.decode("utf-8", "replace").strip()
    detail = _clean(f"HTTP {status} from {where}: {message or response.reason_phrase}", secret)
    if status == 429:
        retry_after = parse_retry_after(response.headers)
        return ProviderFailure(FailureKind.RATE_LIMITED, detail, retry_after=retry_after)
    if status in (401, 403):
        return ProviderFailure(FailureKind.AUTH, detail)
    if status in (408, 504):
        # litellm raises its Timeout for both, which classify calls a first-token timeout.
        return ProviderFailure(FailureKind.FIRST_TOKEN_TIMEOUT, detail)
    if status == 400 and says_context_window(raw[:4000].decode("utf-8", "replace")):
        return ProviderFailure(FailureKind.CONTEXT_WINDOW, detail)
    if 400 <= status < 500:
        # 400, 404 (model not found), 413, 422, ...: another try would get the same.
        return ProviderFailure(FailureKind.BAD_REQUEST, detail)
    return ProviderFailure(FailureKind.SERVER, detail)


def _transport_failure(
    exc: BaseException, started: bool, responded: bool, where: str, secret: str | None
) -> ProviderFailure:
    detail = _clean(f"{type(exc).__name__} talking to {where}: {exc}".rstrip(": "), secret)
    if started:
        return ProviderFailure(FailureKind.INCOMPLETE, detail, started=True)
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout):
        return ProviderFailure(FailureKind.FIRST_TOKEN_TIMEOUT, detail)
    if responded:
        # The endpoint answered, then its body broke before any text: litellm reports this
        # as a mid-stream error, which classify calls a server error.
        return ProviderFailure(FailureKind.SERVER, detail)
    if isinstance(exc, httpx.TransportError | OSError):
        # Refused, reset, cut before any text, no pool slot in time: the endpoint's health.
        return ProviderFailure(FailureKind.CONNECTION, detail)
    return ProviderFailure(FailureKind.SERVER, detail)


# --- text completions (FIM): POST /completions with prompt + suffix -----------------------


class _TextChunkReader(_ChunkReader):
    """`/completions` chunks: the text is `choices[0].text`, not a chat delta."""

    __slots__ = ()

    def _text(self, data: bytes) -> str:
        try:
            chunk = json.loads(data)
        except ValueError:
            raise _BadStream(f"a chunk that is not JSON: {data[:80]!r}") from None
        if not isinstance(chunk, dict):
            raise _BadStream(f"a chunk that is not a JSON object: {data[:80]!r}")
        if chunk.get("error"):
            raise _BadStream(
                f"the provider reported an error mid-stream: {_message_of(chunk['error'])}"
            )
        try:
            usage = chunk.get("usage")
            if usage and usage.get("total_tokens"):
                self.usage = Usage(
                    prompt_tokens=int(usage.get("prompt_tokens") or 0),
                    completion_tokens=int(usage.get("completion_tokens") or 0),
                    total_tokens=int(usage["total_tokens"]),
                )
            choices = chunk.get("choices")
            if not choices:
                return ""
            reason = choices[0].get("finish_reason")
            if reason:
                self.finish_reason = str(reason)
            text = choices[0].get("text")
        except (AttributeError, TypeError, ValueError, KeyError, IndexError):
            raise _BadStream(f"a chunk of an unexpected shape: {data[:80]!r}") from None
        if text is None:
            return ""
        if not isinstance(text, str):
            raise _BadStream(f"a chunk whose text is not text: {data[:80]!r}")
        return text


async def stream_text_completion(
    gateway: OpenAICompatibleGateway,
    entry: ModelEntry,
    prompt: str,
    suffix: str,
    *,
    timeouts: Timeouts,
    max_output_tokens: int,
    stop: tuple[str, ...] = (),
) -> AsyncIterator[StreamPiece]:
    """Fill-in-the-middle over OpenAI's `/completions` (`prompt` + `suffix`): text pieces,
    then one final piece, as `OpenAICompatibleGateway.stream`. Completions are short and
    dropped when stale, so one clock (`first_token`, then `idle` per read) bounds them."""
    plan = gateway._plan(entry)
    if plan is None:
        raise ProviderFailure(
            FailureKind.BAD_REQUEST, f"{entry.name} ({entry.model}) goes through litellm"
        )
    if plan.key_missing:
        raise ProviderFailure(
            FailureKind.AUTH,
            f"no API key for {entry.name}: set OPENAI_API_KEY or the entry's api_key",
        )
    body = {k: v for k, v in plan.body.items() if k not in ("response_format", "tools")}
    body.update(prompt=prompt, suffix=suffix, max_tokens=max_output_tokens)
    if stop:
        body["stop"] = list(stop)[:4]  # OpenAI takes at most four
    shard = gateway._shard()
    client = gateway._clients[shard]
    in_flight = gateway._in_flight
    url = plan.url[: -len("/chat/completions")] + "/completions"
    request = client.build_request(
        "POST",
        url,
        headers=plan.headers,
        content=json.dumps(body, ensure_ascii=False).encode(),
        timeout=gateway._httpx_timeout(timeouts),
    )
    secret = entry.api_key
    started = False
    response: httpx.Response | None = None
    in_flight[shard] += 1
    try:
        try:
            async with asyncio.timeout(min(timeouts.first_token, timeouts.total)):
                response = await client.send(request, stream=True)
                if not 200 <= response.status_code < 300:
                    raise await _status_failure(response, plan.where, secret)
                reader = _TextChunkReader(response.aiter_bytes())
                text = await reader.next_text()
        except TimeoutError:
            raise ProviderFailure(
                FailureKind.FIRST_TOKEN_TIMEOUT,
                f"no first token within {timeouts.first_token:g} s",
            ) from None
        while text is not None:
            if text:
                started = True
                yield StreamPiece(text=text)
            if reader.pending:
                text = reader.take()
                continue
            try:
                async with asyncio.timeout(timeouts.idle):
                    text = await reader.next()
            except TimeoutError:
                raise ProviderFailure(
                    FailureKind.IDLE_TIMEOUT,
                    f"no data for {timeouts.idle:g} s mid-completion",
                    started=started,
                ) from None
        if reader.saw_done:
            await reader.drain()
        if not reader.finish_reason:
            raise ProviderFailure(
                FailureKind.INCOMPLETE,
                "the stream ended without a finish reason or [DONE]",
                started=started,
            )
        yield StreamPiece(usage=reader.usage or Usage(), finish_reason=reader.finish_reason)
    except ProviderFailure:
        raise
    except _BadStream as exc:
        detail = _clean(f"{exc} (from {plan.where})", secret)
        kind = FailureKind.INCOMPLETE if started else FailureKind.SERVER
        raise ProviderFailure(kind, detail, started=started) from None
    except Exception as exc:
        raise _transport_failure(exc, started, response is not None, plan.where, secret) from None
    finally:
        # Closing an unfinished response closes its connection: the provider stops
        # generating the moment the user types again (benchmarks/completion.py).
        in_flight[shard] -= 1
        if response is not None:
            await asyncio.shield(_close_quietly(response))
