"""Deterministic stand-in embeddings for tests: a hashed bag of words, L2-normalised.

Texts that share words get similar vectors, so a search finds what it should, and nothing
loads torch or a model. The fake provider's /v1/embeddings serves the same vectors.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections.abc import Sequence
from typing import Any

_WORD = re.compile(r"[A-Za-z0-9_]+")
DEFAULT_DIM = 64


def hashed_bag_of_words(text: str, dim: int = DEFAULT_DIM) -> list[float]:
    """Each lower-cased word adds ±1 to one of `dim` buckets (chosen by its hash)."""
    vector = [0.0] * dim
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "little") % dim
        vector[bucket] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0:
        vector[0] = 1.0  # no words: still a unit vector, as every embedder returns
        return vector
    return [v / norm for v in vector]


class HashingEmbedder:
    """An `Embedder` for tests: the MiniLM tokenizer (no torch) and hashed vectors.

    `texts` records every chunk text embedded (queries apart), so a test can tell a
    re-index from a free pass.
    """

    def __init__(self, dim: int = DEFAULT_DIM, *, window: int = 256) -> None:
        from ..index.tokens import HFTokenCounter, minilm_token_counter, minilm_tokenizer_json

        base = minilm_token_counter()
        self.counter = (
            base
            if window == base.window
            else HFTokenCounter(minilm_tokenizer_json(), window=window)
        )
        self.dim = dim
        self.id = f"test-hashing-{dim}"
        self.texts: list[str] = []
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Any:
        import numpy as np

        with self._lock:
            self.texts.extend(texts)
        rows = [hashed_bag_of_words(text, self.dim) for text in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), self.dim)

    def embed_query(self, text: str) -> Any:
        import numpy as np

        return np.asarray(hashed_bag_of_words(text, self.dim), dtype=np.float32)
