"""LLMService: the only door to models.

Per request: rate limits (per user and global, fair), then the chosen model and its
fallbacks in order, each behind its provider's circuit breaker, with retries before the
first token only. Usage and cost are recorded; a recent identical answer may be served,
marked cached, while breakers are open.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..protocol import ErrorCode, Usage
from .breaker import BreakerBoard
from .cache import ResponseCache
from .client import (
    TRANSIENT,
    FailureKind,
    LiteLLMGateway,
    ProviderFailure,
    StreamPiece,
    Timeouts,
    ToolCallAssembler,
    says_no_tools,
)
from .completion import CompletionPrompt
from .config import ModelConfigError, ModelEntry, ModelsConfig
from .errors import LLMError, ToolsUnsupported, no_model_error
from .latency import LatencyBoard
from .ratelimit import FairRateLimiter, Limits
from .retry import RetryBudget, RetryPolicy
from .usage import UsageLedger

if TYPE_CHECKING:
    from .openai_stream import OpenAICompatibleGateway

log = logging.getLogger(__name__)

# The import competes with the server's own start (the GIL); starting it a moment after the
# server listens keeps time-to-ready unchanged (benchmarks/startup.py).
WARM_UP_DELAY_S = 1.0
WARM_UP_ENV = "RUBBERDUCK_LLM_WARM_UP"

# Rough prompt size for admission (about 4 characters a token); settled with real usage.
CHARS_PER_TOKEN = 4
DEFAULT_OUTPUT_ESTIMATE = 512


def message_chars(messages: list[dict[str, Any]]) -> int:
    """The characters of a prompt: contents, and the arguments of earlier tool calls."""
    total = 0
    for m in messages:
        total += len(m.get("content") or "")
        for call in m.get("tool_calls") or ():
            function = call.get("function") or {}
            total += len(function.get("name") or "") + len(function.get("arguments") or "")
    return total


def estimate_tokens(
    messages: list[dict[str, Any]],
    max_output_tokens: int | None,
    tools: list[dict[str, Any]] | None = None,
) -> int:
    chars = message_chars(messages)
    if tools:
        # The schemas go to the model with every call: a dozen tools are ~1,500 tokens.
        chars += len(json.dumps(tools, separators=(",", ":")))
    prompt = chars // CHARS_PER_TOKEN + 1
    return prompt + (max_output_tokens or DEFAULT_OUTPUT_ESTIMATE)


# Prompts up to this size are redacted on the loop (~3 ms at 5 MB/s); larger ones in a thread.
INLINE_REDACT_CHARS = 16_000


@dataclass(frozen=True)
class ServiceSettings:
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_output_tokens: int | None = None
    queue_deadline_s: float = 30.0
    # `openai/<name>` entries stream over httpx without litellm (llm/openai_stream.py);
    # False sends every call through litellm.
    direct_openai_streaming: bool = True


class LLMService:
    def __init__(
        self,
        config: ModelsConfig,
        *,
        settings: ServiceSettings | None = None,
        gateway: LiteLLMGateway | None = None,
        limiter: FairRateLimiter | None = None,
        breakers: BreakerBoard | None = None,
        cache: ResponseCache | None = None,
        ledger: UsageLedger | None = None,
        retry_budget: RetryBudget | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        latency: LatencyBoard | None = None,
        clock: Callable[[], float] = time.perf_counter,
        redactor: Callable[[list[dict[str, str]]], list[dict[str, str]]] | None = None,
    ) -> None:
        self.config = config
        # Every call to every model passes here, so this is where secrets are taken out
        # (app.py injects context.redact; llm/ stays a leaf that knows no secret rules).
        self._redactor = redactor
        self.settings = settings or ServiceSettings()
        self.gateway = gateway or LiteLLMGateway()
        self.limiter = limiter or FairRateLimiter(
            global_limits=Limits(), user_limits=Limits(), max_queue=256
        )
        self.breakers = breakers or BreakerBoard()
        # Not `cache or ...`: an empty cache is falsy (len 0), which replaced the one
        # configured (cache_entries) with a default one.
        self.cache = cache if cache is not None else ResponseCache()
        self.ledger = ledger or UsageLedger()
        self.retry_budget = retry_budget or RetryBudget()
        self._sleep = sleep
        self._rng = rng or random.Random()
        # Time to first token and total per answering model (health and /metrics).
        self.latency = latency or LatencyBoard()
        self._clock = clock
        self._direct: OpenAICompatibleGateway | None = None
        self._direct_loading: asyncio.Future[OpenAICompatibleGateway] | None = None
        # Whether litellm's model map lets each model be offered tools, by litellm model.
        self._tool_support: dict[str, bool] = {}

    async def _gateway_for(self, entry: ModelEntry) -> Any:
        """The direct path for the entries it can send, litellm for the rest."""
        if not self.settings.direct_openai_streaming or not entry.model.startswith("openai/"):
            return self.gateway
        direct = await self._load_direct()
        if direct is None:
            return self.gateway
        return direct if direct.handles(entry) else self.gateway

    async def _load_direct(self) -> OpenAICompatibleGateway | None:
        direct = self._direct
        if direct is None:
            if self._direct_loading is None:
                # httpx's import (~45 ms) and the pool's clients (their SSL context loads
                # the CA bundle) in a thread, once, like litellm's.
                self._direct_loading = asyncio.ensure_future(asyncio.to_thread(_new_direct))
            try:
                direct = self._direct = await asyncio.shield(self._direct_loading)
            except Exception:
                self._direct_loading = None
                log.warning("RubberDuck's direct OpenAI path failed to load", exc_info=True)
                return None
        return direct

    async def _cost_usd(self, entry: ModelEntry, usage: Usage) -> float | None:
        """litellm's local cost map. After a direct stream litellm may not be loaded yet (a
        chat within seconds of the start): its import then runs in its worker thread,
        shared with the warm-up, never on the loop; the text has already streamed."""
        if not usage.total_tokens:
            return None
        if self.gateway.state != "ready":
            try:
                await self.gateway.load()
            except Exception:
                return None
        return self.gateway.cost_usd(entry, usage)

    async def aclose(self) -> None:
        """Closes the direct path's pooled connections (the server is stopping)."""
        if self._direct is not None:
            await self._direct.aclose()

    def warm_up(self, delay_s: float = WARM_UP_DELAY_S) -> asyncio.Task[None] | None:
        """Loads litellm in the background `delay_s` after the server starts, so the first
        chats do not wait for it; a chat that comes sooner starts (and shares) the load.
        Nothing to do without a configured model, or with RUBBERDUCK_LLM_WARM_UP=0 (a
        server that rarely chats keeps ~100-150 MB of litellm out of its idle RSS)."""
        if not self.config.configured or os.environ.get(WARM_UP_ENV, "1").strip() == "0":
            return None

        async def load_later() -> None:
            await asyncio.sleep(delay_s)
            if self.settings.direct_openai_streaming:
                await self._load_direct()  # ~0.2 s; it logs its own failure
            try:
                await self.gateway.load()
            except Exception:
                # The first chat retries the load and reports the failure to its user.
                log.warning("RubberDuck could not load litellm in the background", exc_info=True)

        return asyncio.get_running_loop().create_task(load_later())

    @property
    def state(self) -> str:
        return self.gateway.state if self.config.configured else "not_configured"

    def models_for_users(self) -> dict[str, Any]:
        return {
            "default": self.config.default,
            "models": [self.config.entries[n].describe() for n in self.config.allowed_names()],
        }

    def health(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "model": self.config.default,
            "source": self.config.source,
            "models": self.config.allowed_names(),
            "breakers": self.breakers.snapshot(),
            "rate_limits": self.limiter.snapshot(),
            "cache_entries": len(self.cache),
            "latency": self.latency.snapshot(),
        }

    async def stream(
        self,
        *,
        user: str,
        messages: list[dict[str, Any]],
        model: str | None = None,
        conversation_id: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
    ) -> AsyncIterator[StreamPiece]:
        """Text pieces, then a final piece with usage, cost, the model used and attempts.

        With `tools` (OpenAI's function schemas), pieces may carry `tool_calls` deltas and
        the final piece the assembled `calls` (finish_reason "tool_calls"). Messages may
        hold assistant `tool_calls` and `role: "tool"` results. A model that cannot call
        tools ends in ToolsUnsupported. Tool turns are never cached nor served from cache:
        an old answer to a tool result would act on a state that has changed since."""
        name = self._choose(model)
        messages = await self._redacted(messages)
        estimate = estimate_tokens(messages, self.settings.max_output_tokens, tools)
        # RateLimited is an LLMError whose message says when to come back.
        grant = await self.limiter.acquire(
            user=user, tokens=estimate, deadline_s=self.settings.queue_deadline_s
        )
        used_tokens = 0
        try:
            self.retry_budget.record_request()
            async for piece in self._stream_with_failover(
                user, name, messages, conversation_id, tools, tool_choice
            ):
                if piece.usage is not None:
                    used_tokens = piece.usage.total_tokens
                yield piece
        finally:
            self.limiter.settle(grant, actual_tokens=used_tokens)

    async def _redacted(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self._redactor is None:
            return messages
        size = message_chars(messages)
        if size <= INLINE_REDACT_CHARS:
            return self._redactor(messages)
        # Redaction is linear, ~5 MB/s here: a 100,000-character prompt would hold the loop
        # for ~20 ms, so large prompts are redacted in a worker thread.
        return await asyncio.to_thread(self._redactor, messages)

    async def _stream_with_failover(
        self,
        user: str,
        name: str,
        messages: list[dict[str, Any]],
        conversation_id: str | None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
    ) -> AsyncIterator[StreamPiece]:
        attempts: list[dict[str, Any]] = []
        last: tuple[ModelEntry, ProviderFailure] | None = None
        no_tools: ModelEntry | None = None
        cache_key = None if tools else ResponseCache.key(name, messages)
        tool_kwargs: dict[str, Any] = {}
        if tools:
            # Only when asked: gateways written before tools existed keep working.
            tool_kwargs["tools"] = tools
            if tool_choice is not None:
                tool_kwargs["tool_choice"] = tool_choice
        # A list that grows: a prompt too long for a model sends the rest of the turn to
        # that model's context_window_fallbacks instead of its ordinary ones.
        queue = self.config.candidates(name)
        index = -1
        while index + 1 < len(queue):
            index += 1
            entry = queue[index]
            breaker = self.breakers.get(entry.breaker_key)
            attempt = 0
            if tools and not await self._can_call_tools(entry):
                attempts.append({"model": entry.name, "outcome": "no_tools"})
                no_tools = entry
                continue
            while True:
                if not breaker.allow():
                    attempts.append({"model": entry.name, "outcome": "breaker_open"})
                    break
                parts: list[str] = []
                assembler = ToolCallAssembler() if tools else None
                gateway = await self._gateway_for(entry)
                started = self._clock()
                upstream = gateway.stream(
                    entry,
                    messages,
                    timeouts=self.settings.timeouts,
                    max_output_tokens=self.settings.max_output_tokens,
                    **tool_kwargs,
                )
                try:
                    # aclosing: leaving early (success, Stop) closes the provider's stream now.
                    async with contextlib.aclosing(upstream):
                        async for piece in upstream:
                            if piece.finish_reason is None:
                                if not parts:  # the one per-chunk check: a list's truth
                                    self.latency.first_token(entry.name, self._clock() - started)
                                parts.append(piece.text)
                                if assembler is not None and piece.tool_calls:
                                    assembler.add(piece.tool_calls)
                                yield piece
                                continue
                            breaker.record_success()
                            self.latency.total(entry.name, self._clock() - started)
                            usage = piece.usage or Usage()
                            cost = await self._cost_usd(entry, usage)
                            self.ledger.record(user, conversation_id, entry.name, usage, cost)
                            if cache_key is not None:
                                self.cache.put(cache_key, "".join(parts), entry.name, usage)
                            attempts.append({"model": entry.name, "outcome": "ok"})
                            yield StreamPiece(
                                usage=usage,
                                finish_reason=piece.finish_reason,
                                model_name=entry.name,
                                cost_usd=cost,
                                attempts=tuple(attempts),
                                calls=assembler.calls() if assembler is not None else (),
                            )
                            return
                except ProviderFailure as failure:
                    if failure.kind in (
                        FailureKind.AUTH,
                        FailureKind.BAD_REQUEST,
                        FailureKind.CONTEXT_WINDOW,
                    ):
                        # Says nothing about the provider's health.
                        breaker.release_probe()
                    else:
                        breaker.record_failure()
                    attempts.append({"model": entry.name, "outcome": str(failure.kind)})
                    if failure.started:
                        raise LLMError(
                            ErrorCode.INCOMPLETE,
                            f"The answer from {entry.name} was cut off ({failure.detail}); "
                            "the part above is kept. Ask again to get the rest.",
                        ) from None
                    last = (entry, failure)
                    if failure.kind is FailureKind.CONTEXT_WINDOW:
                        wider = self._wider_models(entry, queue[: index + 1])
                        if wider:
                            queue[index + 1 :] = wider
                            break
                    no_tool_use = failure.kind is FailureKind.BAD_REQUEST and tools
                    if no_tool_use and says_no_tools(failure.detail):
                        raise ToolsUnsupported(entry.name, failure.detail) from None
                    if failure.kind not in TRANSIENT:
                        raise self._final_error(entry, failure, attempts) from None
                    attempt += 1
                    delay = self._retry_delay(attempt, failure)
                    if delay is None:
                        break  # fail over to the next model
                    attempts[-1]["retry_in_s"] = round(delay, 3)
                    await self._sleep(delay)
                except BaseException:
                    # Cancelled (the user pressed Stop): no verdict on the provider.
                    breaker.release_probe()
                    raise
        cached = self.cache.get(cache_key) if cache_key is not None else None
        if cached is not None and any(a["outcome"] == "breaker_open" for a in attempts):
            yield StreamPiece(text=cached.text, cached=True)
            yield StreamPiece(
                usage=Usage(),
                finish_reason="stop",
                model_name=cached.model_name,
                cached=True,
                attempts=(*attempts, {"model": cached.model_name, "outcome": "cached"}),
            )
            return
        if last is not None:
            raise self._final_error(*last, attempts)
        if no_tools is not None and not any(a["outcome"] == "breaker_open" for a in attempts):
            raise ToolsUnsupported(no_tools.name, "litellm's model map says it has no tool calling")
        retry_in = min(
            self.breakers.get(e.breaker_key).retry_in() for e in self.config.candidates(name)
        )
        raise LLMError(
            ErrorCode.PROVIDER_UNAVAILABLE,
            f"{name} is paused after repeated failures (and no fallback is available). "
            f"RubberDuck will try it again in {retry_in:.0f} s.",
            retry_after=retry_in,
        )

    async def stream_completion(
        self,
        *,
        user: str,
        entries: list[ModelEntry],
        prompt: CompletionPrompt,
        limiter: FairRateLimiter,
    ) -> AsyncIterator[StreamPiece]:
        """An inline completion: text pieces, then a final piece with usage and the model.

        Through the same door as chat (redaction, breakers, usage), with three differences
        that make sense for ghost text only: `limiter` is the completions' own (a burst of
        keystrokes never spends chat's budget) and it never queues (a completion that
        waits is stale: the refusal says when to come back); there are no retries (the
        user types on; the next keystroke is the retry); and nothing is cached here (the
        completion layer has its own prefix-aware cache). Failover to the next entry
        happens only before the first text, on a transient failure."""
        if not entries:
            raise no_model_error()
        prompt = await self._redacted_prompt(prompt)
        chars = len(prompt.prompt) + len(prompt.suffix) + message_chars(list(prompt.messages))
        estimate = chars // CHARS_PER_TOKEN + 1 + prompt.max_tokens
        grant = await limiter.acquire(user=user, tokens=estimate, deadline_s=0.0)
        used_tokens = 0
        last: tuple[ModelEntry, ProviderFailure] | None = None
        attempts: list[dict[str, Any]] = []
        try:
            for entry in entries:
                breaker = self.breakers.get(entry.breaker_key)
                if not breaker.allow():
                    attempts.append({"model": entry.name, "outcome": "breaker_open"})
                    continue
                started = self._clock()
                upstream = await self._completion_upstream(entry, prompt)
                label = f"{entry.name} (completion)"
                seen_text = finished = False
                out_chars = 0
                try:
                    async with contextlib.aclosing(upstream):
                        async for piece in upstream:
                            if piece.finish_reason is None:
                                if not seen_text:
                                    seen_text = True
                                    self.latency.first_token(label, self._clock() - started)
                                out_chars += len(piece.text)
                                yield piece
                                continue
                            breaker.record_success()
                            self.latency.total(label, self._clock() - started)
                            usage = piece.usage or Usage()
                            used_tokens = usage.total_tokens
                            # litellm's cost map only when already loaded: a completion's
                            # end never waits on its import.
                            cost = (
                                self.gateway.cost_usd(entry, usage)
                                if self.gateway.state == "ready"
                                else None
                            )
                            self.ledger.record(user, None, entry.name, usage, cost)
                            attempts.append({"model": entry.name, "outcome": "ok"})
                            finished = True  # counted: closing after this adds nothing
                            yield StreamPiece(
                                usage=usage,
                                finish_reason=piece.finish_reason,
                                model_name=entry.name,
                                cost_usd=cost,
                                attempts=tuple(attempts),
                            )
                            return
                except ProviderFailure as failure:
                    if failure.kind in (FailureKind.AUTH, FailureKind.BAD_REQUEST):
                        breaker.release_probe()
                    else:
                        breaker.record_failure()
                    attempts.append({"model": entry.name, "outcome": str(failure.kind)})
                    if failure.started or failure.kind not in TRANSIENT:
                        raise self._final_error(entry, failure, attempts) from None
                    last = (entry, failure)
                except BaseException:
                    # Cancelled (the user typed again) or closed early (enough lines): no
                    # verdict on the provider; what it generated is counted, estimated.
                    if finished:
                        raise
                    breaker.release_probe()
                    if seen_text:
                        out = out_chars // CHARS_PER_TOKEN + 1
                        used_tokens = estimate - prompt.max_tokens + out
                        usage = Usage(estimate - prompt.max_tokens, out, used_tokens)
                        self.ledger.record(user, None, entry.name, usage, None)
                    raise
            if last is not None:
                raise self._final_error(*last, attempts)
            retry_in = min(self.breakers.get(e.breaker_key).retry_in() for e in entries)
            raise LLMError(
                ErrorCode.PROVIDER_UNAVAILABLE,
                f"{entries[0].name} is paused after repeated failures; completions resume "
                f"in {retry_in:.0f} s.",
                retry_after=retry_in,
            )
        finally:
            limiter.settle(grant, actual_tokens=used_tokens)

    async def _completion_upstream(
        self, entry: ModelEntry, prompt: CompletionPrompt
    ) -> AsyncIterator[StreamPiece]:
        """The gateway call for one completion: FIM (`/completions` with a suffix) or chat,
        on the direct OpenAI-compatible path when it can send the entry, else litellm."""
        gateway = await self._gateway_for(entry)
        timeouts = self.settings.timeouts
        if prompt.fim:
            if gateway is self.gateway:
                return self.gateway.stream_text(
                    entry,
                    prompt.prompt,
                    prompt.suffix,
                    timeouts=timeouts,
                    max_output_tokens=prompt.max_tokens,
                    stop=prompt.stop,
                )
            from .openai_stream import stream_text_completion

            return stream_text_completion(
                gateway,
                entry,
                prompt.prompt,
                prompt.suffix,
                timeouts=timeouts,
                max_output_tokens=prompt.max_tokens,
                stop=prompt.stop,
            )
        return gateway.stream(  # type: ignore[no-any-return]
            entry, list(prompt.messages), timeouts=timeouts, max_output_tokens=prompt.max_tokens
        )

    async def _redacted_prompt(self, prompt: CompletionPrompt) -> CompletionPrompt:
        """The prompt with secrets taken out, FIM text and chat messages alike."""
        if self._redactor is None:
            return prompt
        if prompt.fim:
            parts = [
                {"role": "user", "content": prompt.prompt},
                {"role": "user", "content": prompt.suffix},
            ]
            clean = await self._redacted(parts)
            return dataclasses.replace(
                prompt, prompt=clean[0]["content"], suffix=clean[1]["content"]
            )
        messages = await self._redacted(list(prompt.messages))
        return dataclasses.replace(prompt, messages=tuple(messages))

    async def _can_call_tools(self, entry: ModelEntry) -> bool:
        """False only for a model litellm's map knows and marks as without tool calling
        (or not a chat model); a model it does not know (local servers, proxies) is
        offered tools, and the provider's own 400 says if it cannot take them."""
        known = self._tool_support.get(entry.model)
        if known is not None:
            return known
        try:
            litellm = await self.gateway.load()
        except Exception:
            return True  # no map to ask: let the provider answer
        known = _map_allows_tools(litellm.model_cost, entry.model)
        self._tool_support[entry.model] = known
        return known

    def _wider_models(self, entry: ModelEntry, tried: list[ModelEntry]) -> list[ModelEntry]:
        """The models to try after `entry` refused a prompt as too long: its
        context_window_fallbacks (its deployments share its window), minus those tried."""
        base = entry.deployment_of or entry.name
        done = {e.name for e in tried}
        return [e for e in self.config.candidates(base, context_window=True) if e.name not in done]

    def _choose(self, model: str | None) -> str:
        """The model_name a request runs on, or the typed error a user can act on."""
        if not self.config.configured:
            raise no_model_error()
        try:
            name = self.config.choose(model)
        except ModelConfigError as exc:
            raise LLMError(ErrorCode.MODEL_NOT_ALLOWED, str(exc)) from None
        assert name is not None  # configured, so there is a default
        return name

    def _retry_delay(self, attempt: int, failure: ProviderFailure) -> float | None:
        policy = self.settings.retry
        if attempt >= policy.max_attempts or not self.retry_budget.try_spend():
            return None
        return policy.delay(attempt - 1, failure.retry_after, self._rng)

    def _final_error(
        self, entry: ModelEntry, failure: ProviderFailure, attempts: list[dict[str, Any]]
    ) -> LLMError:
        tried = sorted({a["model"] for a in attempts})
        after = f" (tried {', '.join(tried)})" if len(tried) > 1 else ""
        name = entry.name
        kind = failure.kind
        if kind is FailureKind.RATE_LIMITED:
            wait = f" Try again in {failure.retry_after:g} s." if failure.retry_after else ""
            return LLMError(
                ErrorCode.RATE_LIMITED,
                f"{name} is rate limiting requests{after}.{wait or ' Try again shortly.'}",
                retry_after=failure.retry_after,
            )
        if kind is FailureKind.AUTH:
            where = entry.api_key_source or f"the provider's key variable for {entry.provider}"
            return LLMError(
                ErrorCode.PROVIDER_AUTH,
                f"{name} refused the credentials; check {where}. ({failure.detail})",
            )
        if kind is FailureKind.CONNECTION:
            where = entry.public_api_base() or entry.provider
            return LLMError(
                ErrorCode.PROVIDER_ERROR,
                f"Could not reach {where} for {name}{after}. Is it running, and is the "
                "address right?",
            )
        if kind is FailureKind.FIRST_TOKEN_TIMEOUT:
            return LLMError(
                ErrorCode.TIMEOUT,
                f"{name} did not start answering within "
                f"{self.settings.timeouts.first_token:g} s{after}.",
            )
        if kind is FailureKind.CONTEXT_WINDOW:
            return LLMError(
                ErrorCode.PROVIDER_ERROR,
                f"The conversation is too long for {name}'s context window{after}. Start a "
                "new conversation, send less context, or ask the admin to add a "
                "context_window_fallbacks entry for it.",
            )
        if kind is FailureKind.BAD_REQUEST:
            return LLMError(
                ErrorCode.PROVIDER_ERROR, f"{name} rejected the request: {failure.detail}"
            )
        return LLMError(ErrorCode.PROVIDER_ERROR, f"{name} failed{after}: {failure.detail}")


def _map_allows_tools(model_cost: Any, model: str) -> bool:
    info = None
    for key in (model, model.split("/", 1)[1] if "/" in model else None):
        if key and isinstance(model_cost.get(key), dict):
            info = model_cost[key]
            break
    if info is None:
        return True
    supports = info.get("supports_function_calling")
    if supports is not None:
        return bool(supports)
    # Not said either way: a chat model may (the provider's 400 tells), a completion model
    # (gpt-3.5-turbo-instruct) cannot.
    return info.get("mode", "chat") == "chat"


def _new_direct() -> OpenAICompatibleGateway:
    from .openai_stream import OpenAICompatibleGateway

    gateway = OpenAICompatibleGateway()
    gateway.prepare()
    return gateway
