"""Which embedder the index uses, from one setting shared by the server and the CLI.

    minilm            all-MiniLM-L6-v2, local (default): minilm:int8 when onnxruntime and
                      onnx are installed (the `embed` extra), else fp32 ONNX, else torch
    minilm:int8       ONNX Runtime, per-channel int8 weights (~1.9x fp32's speed, hit@5
                      and MRR within 0.01 of fp32; other vectors, so its own id)
    minilm:onnx       ONNX Runtime, fp32: torch's vectors and id (exported from the bundled
                      weights once, cached)
    minilm:torch      sentence-transformers (torch), fp32
    model2vec         a static model distilled from MiniLM, cached (local, fast, weaker)
    litellm:<model>   a provider's embedding API through litellm, e.g.
                      litellm:openai/text-embedding-3-small
    none              no embedder: keyword search (BM25) alone, with the keyword-only
                      notice; no torch, no model (Binder; see embedder_none.py)

Parsing imports nothing heavy, so a typo fails at server start; building the embedder
imports its runtime and happens when the index is first opened, in a worker thread.

The index does not import `llm/`: a provider's embedder (`llm/embedder.py`,
`provider_embedder`) is handed to `build_embedder` by whoever wires it (`app.py`, the
CLI). That also ends the old import circle with `index/embedder_api.py`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .types import EmbedderError

if TYPE_CHECKING:
    from .embedder import Embedder
    from .tokens import TokenCounter

KINDS = ("minilm", "model2vec", "litellm", "none")
# How `minilm` runs: "" picks the fastest one installed (see _minilm).
MINILM_BACKENDS = ("", "onnx", "torch", "int8")
# The kind that is the absence of an embedder: built here, not by an embedder plugin.
NO_EMBEDDER = "none"
DEFAULT_EMBEDDER = "minilm"
DEFAULT_WINDOW = 256


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
                f"index_embedder {self.spec!r}: use 'minilm', 'model2vec', 'litellm:<model>' "
                "or 'none' (keyword search alone)"
            )
        if kind == "litellm" and not model.strip():
            raise EmbedderConfigError(
                "index_embedder 'litellm:' needs a model, e.g. "
                "'litellm:openai/text-embedding-3-small'"
            )
        if kind == "minilm" and (model not in MINILM_BACKENDS or (sep and not model)):
            raise EmbedderConfigError(
                f"index_embedder {self.spec!r}: use 'minilm' (ONNX Runtime when installed, "
                "else torch), 'minilm:onnx', 'minilm:torch' or 'minilm:int8'"
            )
        if kind not in ("litellm", "minilm") and sep:
            raise EmbedderConfigError(f"index_embedder {self.spec!r}: {kind!r} takes no model")
        if not 32 <= self.window <= 8192:
            raise EmbedderConfigError("index_embedder_window must be between 32 and 8192")
        if kind == "minilm" and self.window > DEFAULT_WINDOW:
            raise EmbedderConfigError(
                f"all-MiniLM-L6-v2 reads at most {DEFAULT_WINDOW} tokens; "
                "index_embedder_window cannot be larger with 'minilm'"
            )
        return self

    def describe(self) -> dict[str, Any]:
        """For health and logs: never the key."""
        return {"embedder": self.spec, "window": self.window}


# Builds the embedder of `litellm:<model>` from the config and a token counter at its window.
ProviderEmbedder = Callable[[EmbedderConfig, "TokenCounter"], "Embedder"]


# Builds the embedder of one kind from the config (the embedder plugins' factories).
EmbedderFactory = Callable[[EmbedderConfig], "Embedder"]


def build_embedder(
    config: EmbedderConfig,
    provider: ProviderEmbedder | None = None,
    *,
    factories: Callable[[], Mapping[str, EmbedderFactory]] | None = None,
) -> Any:
    """The embedder the config names (heavy imports happen here: call it in a thread).
    `provider` builds a provider's embedder (`llm.embedder.provider_embedder`); without it
    `litellm:<model>` is refused. With `factories` (the server: the loaded embedder
    plugins, by kind), the config's kind is built by its plugin, or refused when that
    plugin is not loaded. `none` is no plugin's: it is always built here."""
    config.validate()
    if config.kind == NO_EMBEDDER:
        from .embedder_none import KeywordOnlyEmbedder
        from .tokens import HFTokenCounter, minilm_token_counter, minilm_tokenizer_json

        base = minilm_token_counter()
        if config.window == base.window:
            return KeywordOnlyEmbedder(base)
        return KeywordOnlyEmbedder(HFTokenCounter(minilm_tokenizer_json(), window=config.window))
    if factories is not None:
        factory = factories().get(config.kind)
        if factory is None:
            raise EmbedderConfigError(
                f"index_embedder {config.spec!r}: the {config.kind!r} embedder plugin is not "
                "loaded (denied by plugins_deny?); `jupyter rubberduck plugins list` says why"
            )
        return factory(config)
    from .tokens import HFTokenCounter, minilm_token_counter, minilm_tokenizer_json

    def counter() -> Any:
        base = minilm_token_counter()
        if config.window == base.window:
            return base
        return HFTokenCounter(minilm_tokenizer_json(), window=config.window)

    if config.kind == "minilm":
        return _minilm(config, counter)
    if config.kind == "model2vec":
        from .embedder_static import Model2VecEmbedder

        cache = config.cache_dir or default_model_cache()
        return Model2VecEmbedder(cache, counter())
    if provider is None:
        raise EmbedderConfigError(
            f"index_embedder {config.spec!r} needs a provider's embedder, and none was wired "
            "here: pass provider=rubberduck_jupyter.llm.embedder.provider_embedder"
        )
    return provider(config, counter())


def onnx_runtime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def onnx_quantizer_available() -> bool:
    import importlib.util

    # onnxruntime's quantizer reads and writes graphs with the `onnx` package.
    return onnx_runtime_available() and importlib.util.find_spec("onnx") is not None


def _minilm(config: EmbedderConfig, counter: Callable[[], Any]) -> Any:
    """`minilm` alone is the fastest MiniLM that passed the quality guard: int8 ONNX when
    onnxruntime and onnx are installed (the `embed` extra), else fp32 ONNX with torch as
    its fallback, else torch. Decided here, before the store reads the embedder's id, so
    vectors of one variant are never stored under another's id."""
    from .embedder import SentenceTransformerEmbedder

    options: dict[str, Any] = {"window": config.window}
    if config.batch_size:
        options["batch_size"] = config.batch_size
    backend = config.model
    if backend == "torch" or (backend == "" and not onnx_runtime_available()):
        return SentenceTransformerEmbedder(**options)
    from .embedder_onnx import OnnxMiniLMEmbedder

    int8 = backend == "int8" or (backend == "" and onnx_quantizer_available())
    return OnnxMiniLMEmbedder(
        config.cache_dir or default_model_cache(),
        counter(),
        batch_size=config.batch_size or None,
        int8=int8,
        # fp32 chosen by `minilm` alone: an export that cannot be made or checked falls
        # back to torch, whose vectors are the same (same id, so no re-index). The int8
        # variant has no fallback: torch's vectors are not its vectors.
        fallback=(lambda: SentenceTransformerEmbedder(**options))
        if backend == "" and not int8
        else None,
    )


MODEL_CACHE_ENV = "RUBBERDUCK_MODEL_CACHE"


def default_model_cache() -> Path:
    """Where derived models (the ONNX export, the model2vec distillation) are kept: the
    folder RUBBERDUCK_MODEL_CACHE names (one cache shared by every user of a machine or hub,
    filled once by an admin; the test suite's, so a model is exported once per run rather
    than once per test's data dir), else the user's Jupyter data dir."""
    shared = os.environ.get(MODEL_CACHE_ENV, "").strip()
    if shared:
        return Path(shared).expanduser()
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "rubberduck" / "models"
