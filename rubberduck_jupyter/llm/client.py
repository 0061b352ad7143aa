"""Streams chat completions through litellm, imported lazily and off the event loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..protocol import ErrorCode, Usage
from .errors import LLMError, no_model_error
from .settings import ModelSettings

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


@dataclass(frozen=True, slots=True)
class StreamPiece:
    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None


class LiteLLMClient:
    """One configured model; `stream()` yields text pieces, then a final piece with usage."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self._litellm: Any = None
        self._loading: asyncio.Future[Any] | None = None
        self.state = "not_configured" if not settings.configured else "idle"

    async def load(self) -> Any:
        """Import litellm in a worker thread (about 1.5 s), once; later calls return at once."""
        if self._litellm is not None:
            return self._litellm
        if self._loading is None:
            self.state = "loading"
            self._loading = asyncio.ensure_future(asyncio.to_thread(_import_litellm))
        try:
            self._litellm = await asyncio.shield(self._loading)
        except Exception as exc:
            self.state = "failed"
            self._loading = None
            raise LLMError(ErrorCode.INTERNAL, f"Could not load litellm: {exc}") from exc
        self.state = "ready"
        return self._litellm

    def _call_kwargs(self, messages: list[dict[str, str]], *, stream: bool) -> dict[str, Any]:
        settings = self.settings
        kwargs: dict[str, Any] = {
            "model": settings.model,
            "messages": messages,
            "stream": stream,
            "timeout": settings.request_timeout,
            # Retries belong to RubberDuck, not to the SDK underneath.
            "max_retries": 0,
        }
        if stream:
            kwargs["stream_options"] = {"include_usage": True}
        if settings.api_base:
            kwargs["api_base"] = settings.api_base
        if settings.api_key:
            kwargs["api_key"] = settings.api_key
        elif settings.api_base and not os.environ.get("OPENAI_API_KEY"):
            kwargs["api_key"] = _PLACEHOLDER_KEY
        if settings.max_output_tokens:
            kwargs["max_tokens"] = settings.max_output_tokens
        return kwargs

    async def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[StreamPiece]:
        if not self.settings.configured:
            raise no_model_error()
        litellm = await self.load()
        started = False
        try:
            response = await litellm.acompletion(**self._call_kwargs(messages, stream=True))
            finish_reason: str | None = None
            usage: Usage | None = None
            async for chunk in response:
                raw_usage = getattr(chunk, "usage", None)
                if raw_usage is not None and getattr(raw_usage, "total_tokens", None):
                    usage = Usage(
                        prompt_tokens=int(raw_usage.prompt_tokens or 0),
                        completion_tokens=int(raw_usage.completion_tokens or 0),
                        total_tokens=int(raw_usage.total_tokens or 0),
                    )
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                finish_reason = choice.finish_reason or finish_reason
                text = getattr(choice.delta, "content", None) or ""
                if text:
                    started = True
                    yield StreamPiece(text=text)
            yield StreamPiece(usage=usage or Usage(), finish_reason=finish_reason or "stop")
        except LLMError:
            raise
        except Exception as exc:
            raise self._map_error(exc, started=started) from None

    async def complete(self, messages: list[dict[str, str]]) -> str:
        """One non-streamed answer; used by `jupyter rubberduck doctor` to probe the model."""
        if not self.settings.configured:
            raise no_model_error()
        litellm = await self.load()
        try:
            response = await litellm.acompletion(**self._call_kwargs(messages, stream=False))
        except Exception as exc:
            raise self._map_error(exc, started=False) from None
        return str(response.choices[0].message.content or "")

    def _map_error(self, exc: Exception, *, started: bool) -> LLMError:
        name = type(exc).__name__
        # litellm wraps transport failures (e.g. InternalServerError around a refused
        # connection), so the cause chain says more than the outer type.
        chain = _cause_names(exc)
        detail = self._redact(str(exc)) or name
        if len(detail) > 500:
            detail = detail[:500] + "…"
        model = self.settings.model
        if started:
            return LLMError(
                ErrorCode.INCOMPLETE,
                f"The answer from {model} was cut off ({name}); the partial text is kept. "
                "Ask again to get the rest.",
            )
        if name == "RateLimitError":
            retry_after = _retry_after(exc)
            wait = f" Try again in {retry_after:g} s." if retry_after else " Try again shortly."
            return LLMError(
                ErrorCode.RATE_LIMITED,
                f"{model} is rate limiting requests.{wait}",
                retry_after=retry_after,
            )
        if name in {"AuthenticationError", "PermissionDeniedError"}:
            return LLMError(
                ErrorCode.PROVIDER_AUTH,
                f"{model} refused the credentials. Check the provider's key variable "
                f"(for example OPENAI_API_KEY) or RUBBERDUCK_API_KEY. ({detail})",
            )
        if chain & {"Timeout", "APITimeoutError", "TimeoutError", "ReadTimeout", "ConnectTimeout"}:
            return LLMError(
                ErrorCode.TIMEOUT,
                f"{model} did not answer within {self.settings.request_timeout:g} s.",
            )
        if chain & {"APIConnectionError", "ConnectError", "ConnectionRefusedError"}:
            where = self.settings.public_api_base() or "the provider"
            return LLMError(
                ErrorCode.PROVIDER_ERROR,
                f"Could not reach {where} for {model}. Is the server running and the "
                f"address right? ({detail})",
            )
        return LLMError(ErrorCode.PROVIDER_ERROR, f"{model} failed: {detail}")

    def _redact(self, text: str) -> str:
        key = self.settings.api_key
        if key:
            text = text.replace(key, "[redacted]")
        return text


def _cause_names(exc: BaseException) -> set[str]:
    names: set[str] = set()
    current: BaseException | None = exc
    while current is not None and len(names) < 16:
        names.add(type(current).__name__)
        current = current.__cause__ or current.__context__
    return names


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
