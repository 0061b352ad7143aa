"""A static embedder distilled from the bundled all-MiniLM-L6-v2 with model2vec.

Distilled once, offline, on first use (~25 s on 2 cores; it needs torch and transformers,
which the `embed` extra brings), then cached (~15 MB) under the Jupyter data dir and
loaded from there with model2vec alone, no torch. Embedding is a token-vector lookup and
mean: thousands of chunks per second on a laptop CPU. It is weaker alone than MiniLM, and
fine fused with BM25, which hybrid search does.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .tokens import TokenCounter, minilm_dir

log = logging.getLogger(__name__)

DEFAULT_PCA_DIMS = 256
BASE_NAME = "all-MiniLM-L6-v2"
_lock = threading.Lock()


class Model2VecEmbedder:
    def __init__(
        self,
        cache_dir: Path,
        counter: TokenCounter,
        *,
        base_dir: Path | None = None,
        pca_dims: int = DEFAULT_PCA_DIMS,
    ) -> None:
        if base_dir is None:
            base_dir = minilm_dir()
        self.base_dir = base_dir
        self.counter = counter
        self.dim = pca_dims
        self.id = f"model2vec:{BASE_NAME}-distilled:{pca_dims}d"
        self.model_dir = cache_dir / f"model2vec-{BASE_NAME}-{pca_dims}d"
        self._model: Any = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def unavailable(self) -> str | None:
        """Why it cannot embed at once (without distilling first), or None when it can:
        progressive indexing uses it as its first tier only then (service.py)."""
        if self._model is not None:
            return None
        if importlib.util.find_spec("model2vec") is None:
            return "model2vec is not installed (the 'static' extra)"
        if not (self.model_dir / "model.safetensors").exists():
            return "not distilled yet"
        return None

    def can_distil(self) -> bool:
        """Whether `load` could distil it here: model2vec, torch and transformers present."""
        return all(
            importlib.util.find_spec(name) is not None
            for name in ("model2vec", "torch", "transformers")
        )

    def load(self) -> None:
        if self._model is not None:
            return
        with _lock:
            if self._model is not None:
                return
            if not (self.model_dir / "model.safetensors").exists():
                self._distil()
            from model2vec import StaticModel

            self._model = StaticModel.from_pretrained(str(self.model_dir))

    def _distil(self) -> None:
        try:
            from model2vec.distill import distill
        except ImportError as exc:
            raise RuntimeError(
                "index_embedder = 'model2vec' needs model2vec and, to distil it once, torch "
                'and transformers: pip install -c constraints.txt "rubberduck-jupyter[embed,'
                f'static]" ({exc})'
            ) from exc
        started = time.perf_counter()
        log.info("RubberDuck: distilling a static embedder from %s (once)", BASE_NAME)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        partial = self.model_dir.with_name(self.model_dir.name + f".partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        quiet = os.environ.get("TQDM_DISABLE")
        os.environ["TQDM_DISABLE"] = "1"  # its progress bars would fill the server log
        try:
            model = distill(model_name=str(self.base_dir), pca_dims=self.dim, device="cpu")
        finally:
            if quiet is None:
                os.environ.pop("TQDM_DISABLE", None)
            else:
                os.environ["TQDM_DISABLE"] = quiet
        partial.parent.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(partial))
        # A rename, so a crash mid-save never leaves a half model that loads.
        shutil.rmtree(self.model_dir, ignore_errors=True)
        partial.rename(self.model_dir)
        log.info(
            "RubberDuck: static embedder ready in %.1f s at %s",
            time.perf_counter() - started,
            self.model_dir,
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        vectors = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
