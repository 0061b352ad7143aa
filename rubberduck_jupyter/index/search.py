"""Hybrid search: vector search and BM25, fused by reciprocal rank.

Embeddings find paraphrases ("standardise against a trailing window") and BM25 finds exact
identifiers and rare words (`seasonal_naive`, an error code) that embeddings blur. Fusing
by rank, not score, needs no calibration between cosine similarities and BM25 scores.
Blocking: the server calls `search` from a worker thread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal

import numpy as np

from .snapshot import IndexSnapshot, StaleSnapshot
from .store import IndexStore

Mode = Literal["hybrid", "vector", "bm25"]
RRF_K = 60  # the constant from Cormack et al. (2009); damps the weight of the very top ranks


@dataclass(frozen=True, slots=True)
class Hit:
    path: str
    kind: str
    score: float  # RRF score in hybrid mode, cosine similarity or BM25 score otherwise
    text: str
    cell: int | None  # first notebook cell of the chunk; None for other files
    cells: tuple[int, ...]
    start_line: int | None  # 1-based inclusive; None for notebooks
    end_line: int | None
    title: str | None
    vector_rank: int | None  # 1-based rank in each list it came from, None if absent
    bm25_rank: int | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "kind": self.kind,
            "score": self.score,
            "text": self.text,
            "title": self.title,
        }
        if self.cells:
            out["cell"] = self.cell
            out["cells"] = list(self.cells)
        else:
            out["start_line"] = self.start_line
            out["end_line"] = self.end_line
        return out


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], k: int = RRF_K
) -> list[tuple[int, float]]:
    """Sum of 1 / (k + rank) over the rankings an id appears in (ranks are 1-based).

    Best first; equal scores keep the order in which ids were first seen, earlier rankings
    first, so the result is deterministic.
    """
    scores: dict[int, float] = {}
    for ranking in rankings:
        weights = _rrf_weights(k, len(ranking))
        if not scores:
            scores = dict(zip(ranking, weights, strict=False))  # the common first pass, in C
            continue
        get = scores.get
        for item, weight in zip(ranking, weights, strict=False):
            scores[item] = get(item, 0.0) + weight
    # Stable, also with reverse=True: equal scores stay in first-seen order.
    return sorted(scores.items(), key=itemgetter(1), reverse=True)


@functools.lru_cache(maxsize=16)
def _rrf_weights(k: int, n: int) -> tuple[float, ...]:
    return tuple(1.0 / (k + rank) for rank in range(1, n + 1))


class HybridSearcher:
    def __init__(self, store: IndexStore, embed_query: Callable[[str], np.ndarray]) -> None:
        self.store = store
        self.embed_query = embed_query

    def search(
        self,
        query: str,
        top_k: int = 10,
        *,
        mode: Mode = "hybrid",
        path_glob: str | None = None,
        kinds: Collection[str] | None = None,
        candidates: int = 50,
        on_degraded: Callable[[BaseException], None] | None = None,
    ) -> list[Hit]:
        """The `top_k` best chunks for `query`; `mode` picks one method alone for comparison.

        Hybrid takes the top `candidates` of each method (at least `top_k`) before fusing.
        Filters apply inside each method, so they never shorten the result list needlessly.
        Both methods and the hits read one snapshot of the index: one consistent state
        (texts and locations come from DuckDB, for the hits only; see `_hits`).
        With `on_degraded`, a hybrid search whose query cannot be embedded (the model will
        not load, the embedding API is down) answers from BM25 alone and reports the error
        there; without it, or in vector mode, the error propagates.
        """
        if mode not in ("hybrid", "vector", "bm25"):
            raise ValueError(f"unknown search mode {mode!r}")
        if not query.strip() or top_k <= 0:
            return []
        pool = top_k if mode != "hybrid" else max(candidates, top_k)
        # Embed before taking the snapshot, so the search sees the newest one.
        query_vector = None
        if mode != "bm25":
            try:
                query_vector = self.embed_query(query)
            except Exception as exc:
                # A keyword-only index (index_embedder = "none") degrades by design.
                chosen = getattr(exc, "keyword_only", False)
                if mode == "vector" or (on_degraded is None and not chosen):
                    raise
                if on_degraded is not None:
                    on_degraded(exc)
                mode = "bm25"

        def run(snapshot: IndexSnapshot) -> list[Hit]:
            return self._hits(snapshot, query, query_vector, mode, top_k, pool, path_glob, kinds)

        return self.store.consistent(run)

    def _hits(
        self,
        snapshot: IndexSnapshot,
        query: str,
        query_vector: np.ndarray | None,
        mode: Mode,
        top_k: int,
        pool: int,
        path_glob: str | None,
        kinds: Collection[str] | None,
    ) -> list[Hit]:
        vector: list[int] = []
        bm25: list[int] = []
        scores: dict[int, float] = {}
        if query_vector is not None:
            rows, values = snapshot.search_vector(
                query_vector, pool, path_glob=path_glob, kinds=kinds
            )
            vector = rows.tolist()
            if mode == "vector":
                scores = dict(zip(vector, values.tolist(), strict=True))
        if mode != "vector":
            terms = self.store.tokenizer.query_terms(query)
            rows, values = snapshot.search_bm25(terms, pool, path_glob=path_glob, kinds=kinds)
            bm25 = rows.tolist()
            if mode == "bm25":
                scores = dict(zip(bm25, values.tolist(), strict=True))
        if mode == "hybrid":
            ranked = reciprocal_rank_fusion([vector, bm25])[:top_k]
        else:
            ranked = [(row, scores[row]) for row in (vector or bm25)[:top_k]]
        vector_ranks = dict(zip(vector, range(1, len(vector) + 1), strict=True))
        bm25_ranks = dict(zip(bm25, range(1, len(bm25) + 1), strict=True))
        # Texts and locations from DuckDB, for these hits only. Ids are never reused, so a
        # chunk found is the one ranked; one missing was removed by a write committed since
        # the snapshot was taken: the whole search runs again on a newer one.
        ids = snapshot.ids[np.array([row for row, _ in ranked], dtype=np.int64)]
        chunks = self.store.chunks(ids.tolist())
        if len(chunks) != len(ranked):
            raise StaleSnapshot()
        return [
            Hit(
                path=chunk.path,
                kind=chunk.kind,
                score=score,
                text=chunk.text,
                cell=chunk.cell,
                cells=chunk.cells,
                start_line=chunk.start_line,
                end_line=chunk.end_line,
                title=chunk.title,
                vector_rank=vector_ranks.get(row),
                bm25_rank=bm25_ranks.get(row),
            )
            for (row, score), chunk in zip(ranked, chunks, strict=True)
        ]
