"""Embeddings from a provider's API through litellm (OpenAI, Azure, Mistral, Cohere,
Ollama, vLLM, a LiteLLM proxy...). Blocking: call it from a worker thread.

Chunks are cut with the bundled MiniLM tokenizer at a configurable window (default 256,
MiniLM's own). Provider tokenizers differ, but for English text and code they count within
a few tens of percent of WordPiece, and every provider model accepts far more than 256
tokens, so chunks never get truncated; keeping the window lets the chunkers stay the same
and makes results comparable across embedders. The vector width is learnt from the
provider with one short request when the index is opened.

It lived in `index/embedder_api.py`, which made the index import `llm/` internals (the
client's error classification, litellm's import, the retry policy): the index knows only
the `Embedder` protocol, and `app.py` and the CLI hand `provider_embedder` to
`index.embedder_config.build_embedder` for `litellm:<model>`.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..index.embedder_config import EmbedderConfig, EmbedderError
from .client import TRANSIENT, FailureKind, ProviderFailure, _import_litellm, classify
from .config import ENV_REFERENCE
from .retry import RetryPolicy

if TYPE_CHECKING:
    import numpy as np

    from ..index.tokens import TokenCounter

log = logging.getLogger(__name__)

DEFAULT_API_BATCH = 64
DEFAULT_API_TIMEOUT_S = 60.0
# OpenAI-compatible local servers (vLLM, Ollama) need no key, but the SDK sends one.
_KEYLESS = "sk-no-key-required"
_PROBE_TEXT = "dimension probe"


class EmbeddingProviderError(EmbedderError):
    """The provider could not embed: the message says what failed and what to check."""

    def __init__(self, model: str, failure: ProviderFailure, attempts: int) -> None:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(
            f"The embedding model {model!r} failed{tries} ({failure.kind.value}): "
            f"{failure.detail}. Check c.RubberDuckApp.index_embedder and its api_base/api_key, "
            "or use index_embedder = 'minilm' (local, no provider)."
        )
        self.model = model
        self.kind = failure.kind


def resolved_api_key(config: EmbedderConfig, env: Mapping[str, str] | None = None) -> str | None:
    """The configured key, or the variable an `os.environ/NAME` key names (LiteLLM's way)."""
    environ = os.environ if env is None else env
    if config.api_key.startswith(ENV_REFERENCE):
        return environ.get(config.api_key[len(ENV_REFERENCE) :]) or None
    return config.api_key or None


def provider_embedder(config: EmbedderConfig, counter: TokenCounter) -> LiteLLMEmbedder:
    """The embedder of `litellm:<model>`: what `build_embedder(..., provider=...)` calls."""
    return LiteLLMEmbedder(
        config.model,
        counter,
        api_base=config.api_base or None,
        api_key=resolved_api_key(config),
        batch_size=config.batch_size or DEFAULT_API_BATCH,
        redact=config.redact,
    )


class LiteLLMEmbedder:
    def __init__(
        self,
        model: str,
        counter: TokenCounter,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        batch_size: int = DEFAULT_API_BATCH,
        timeout: float = DEFAULT_API_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        redact: Callable[[Sequence[str]], list[str]] | None = None,
    ) -> None:
        self.model = model
        # Project files and queries leave the machine here: secrets are taken out first.
        # Vectors of redacted text are what the index stores and compares, for both.
        self._redact = redact
        self.counter = counter
        self.api_base = api_base or None
        self._api_key = api_key or None
        self.batch_size = max(1, batch_size)
        self.timeout = timeout
        self.retry = retry or RetryPolicy(max_attempts=4, base_delay=0.5, max_retry_after=30.0)
        self._sleep = sleep
        self._rng = random.Random()
        self._dim: int | None = None
        self._dim_lock = threading.Lock()
        self._sdk_client: Any = None
        self.requests = 0  # calls that reached the provider, retries included

    @property
    def dim(self) -> int:
        if self._dim is None:
            with self._dim_lock:
                if self._dim is None:
                    self._dim = int(self._request([_PROBE_TEXT]).shape[1])
        return self._dim

    @property
    def id(self) -> str:
        # The window changes the chunks, so a store built with another window is rebuilt.
        return f"litellm:{self.model}:{self.dim}d:w{self.counter.window}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._redact is not None:
            texts = self._redact(texts)
        parts = [
            self._request(list(texts[start : start + self.batch_size]))
            for start in range(0, len(texts), self.batch_size)
        ]
        vectors = np.concatenate(parts)
        if vectors.shape[1] != self.dim:
            raise RuntimeError(
                f"The embedding model {self.model!r} returned {vectors.shape[1]}-d vectors, "
                f"{self.dim}-d before; the index cannot mix them."
            )
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def _call_options(self, litellm: Any) -> dict[str, Any]:
        options: dict[str, Any] = {
            "model": self.model,
            "api_base": self.api_base,
            "api_key": self._api_key,
            "timeout": self.timeout,
            "max_retries": 0,  # retried here, with backoff and Retry-After
        }
        _, provider, _, _ = litellm.get_llm_provider(self.model, api_base=self.api_base)
        if provider == "openai":
            # litellm 1.106 turns max_retries=0 into its default (2) on the OpenAI embedding
            # path, even on a client it is given; this client keeps retries here, counted.
            options["client"] = self._openai_client()
        return options

    def _openai_client(self) -> Any:
        if self._sdk_client is None:
            import openai

            class NoRetryOpenAI(openai.OpenAI):
                # litellm sets its default retries on a client it is given, every call.
                @property  # type: ignore[override]
                def max_retries(self) -> int:
                    return 0

                @max_retries.setter
                def max_retries(self, value: int) -> None:
                    pass

            base = (
                self.api_base
                or os.environ.get("OPENAI_BASE_URL")
                or os.environ.get("OPENAI_API_BASE")
            )
            key = self._api_key or os.environ.get("OPENAI_API_KEY") or _KEYLESS
            self._sdk_client = NoRetryOpenAI(api_key=key, base_url=base, timeout=self.timeout)
        return self._sdk_client

    def _request(self, batch: list[str]) -> np.ndarray:
        litellm = _import_litellm()
        options = self._call_options(litellm)
        # Providers refuse empty strings; a blank chunk or query still needs a vector.
        batch = [text if text.strip() else " " for text in batch]
        attempt = 0
        while True:
            attempt += 1
            self.requests += 1
            try:
                response = litellm.embedding(input=batch, **options)
                return _unit_rows(response, len(batch))
            except Exception as exc:
                failure = classify(exc, started=False, secret=self._api_key)
                delay = (
                    self.retry.delay(attempt - 1, failure.retry_after, self._rng)
                    if failure.kind in TRANSIENT and attempt < self.retry.max_attempts
                    else None
                )
                if delay is None:
                    raise EmbeddingProviderError(self.model, failure, attempt) from exc
                log.info(
                    "RubberDuck: embedding request failed (%s), retry %d in %.1f s",
                    failure.kind.value,
                    attempt,
                    delay,
                )
                self._sleep(delay)


def _unit_rows(response: Any, expected: int) -> np.ndarray:
    import numpy as np

    data = response["data"] if isinstance(response, dict) else response.data
    rows = sorted(data, key=lambda item: _field(item, "index"))
    if len(rows) != expected:
        raise ProviderFailure(
            # A short answer is a provider fault worth a retry, not a crash later.
            FailureKind.SERVER,
            f"asked for {expected} embeddings, got {len(rows)}",
        )
    vectors = np.asarray([_field(item, "embedding") for item in rows], dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def _field(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, dict) else getattr(item, name)
