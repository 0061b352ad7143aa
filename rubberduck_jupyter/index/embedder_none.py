"""`index_embedder = "none"`: an index searched by keywords alone (BM25), no model.

For a machine that cannot hold an embedding model (Binder: no torch, little memory) or a
project where exact identifiers are what people search for. Files are chunked as usual
(counted with the bundled MiniLM tokenizer, which needs no torch) and stored with a
constant one-dimensional vector, so the store, snapshot and watcher work unchanged. A
hybrid search answers from BM25 alone and says so with the keyword-only notice; a
vector-only search is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .tokens import TokenCounter
from .types import EmbedderError

KEYWORD_ONLY_ID = "none:keyword-only"
KEYWORD_ONLY_REASON = (
    "this index has no embedding model (index_embedder = 'none'), so it matches words, not meaning"
)


class NoEmbedderError(EmbedderError):
    """A query vector asked of the keyword-only embedder: the search uses BM25 instead.
    Chosen by the configuration, so it is not a failure: no warning, no health error."""

    keyword_only = True  # what search.py and service.py look for (no import needed there)


class KeywordOnlyEmbedder:
    id = KEYWORD_ONLY_ID
    dim = 1
    loaded = True

    def __init__(self, counter: TokenCounter) -> None:
        self.counter = counter

    def load(self) -> None:
        return None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        # Unit rows, as the store expects; all equal, so they rank nothing.
        return np.ones((len(texts), 1), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        raise NoEmbedderError(KEYWORD_ONLY_REASON)
