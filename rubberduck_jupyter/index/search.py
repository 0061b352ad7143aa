"""Hybrid search: vector search and BM25, fused by their scores, each scaled to its list.

Embeddings find paraphrases ("standardise against a trailing window") and BM25 finds exact
identifiers and rare words (`seasonal_naive`, an error code) that embeddings blur. Each
method's top candidates are scaled min-max to [0, 1] within its own list (so cosine
similarities and BM25 scores need no calibration between them) and summed with weights
VECTOR_WEIGHT and 1 - VECTOR_WEIGHT (`score_fusion`). Chosen over reciprocal rank fusion
(RRF, k = 60, until 2026-12-06): ranks drop how far ahead a list's first hit is, so a
definition first by a wide margin in one list lost to chunks ranked ~10th in both.
Measured (benchmarks/index_quality.py, minilm, hybrid hit@5 / MRR, with the BM25 header
weight of bm25.py, before method headers carried their class's summary): RRF k = 60,
RRF k = 5, scores 0.5 / 0.6 to vectors = tornado 0.825/0.634, 0.841/0.652, 0.825/0.684,
0.825/0.684; stdlib 0.852/0.764, 0.889/0.801, 0.889/0.820, 0.889/0.856; held-out
traitlets 0.929/0.738, 0.946/0.762, 0.946/0.736, 0.946/0.778; notebooks 0.981 and
0.974-0.983 in every case.
Blocking: the server calls `search` from a worker thread.

While progressive indexing is under way (indexer.py) some chunks have the transformer's
vector and the others only the static embedder's. A similarity between a MiniLM query and a
static vector means nothing (another model, another space, another dimension), so the query
is embedded by each embedder whose tier holds chunks, each tier ranks only its own chunks,
and the rankings are fused by RRF with BM25's as separate lists (ranks, not scores: two
models' cosines are not comparable, nor is a tier's scale): three lists during the
transition, two (as before) once one tier covers everything. Chosen over "the static tier
alone until the transformer covers everything" because that keeps the static vectors of
every chunk until the end (~1 KB per chunk more at 1M chunks, and again after every file
refresh) and serves the weaker tier longer; fusing by rank is what makes lists from
different models comparable in the first place. Measured (benchmarks/index_quality.py,
hybrid hit@5 / MRR, 2026-12-06, with the BM25 header weight and the score fusion of the
final two lists): static tier alone, half of the chunks moved to MiniLM, all moved = pdsh
notebooks 0.943/0.902, 0.981/0.946, 0.981/0.983; tornado code 0.714/0.530, 0.762/0.591,
0.841/0.698; the last is exactly the index built without progressive indexing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal

import numpy as np

from .snapshot import IndexSnapshot, StaleSnapshot
from .store import IndexStore

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "vector", "bm25"]
RRF_K = 60  # the constant from Cormack et al. (2009); damps the weight of the very top ranks
# The vector list's share of a hybrid score (`score_fusion`), BM25's the rest.
VECTOR_WEIGHT = 0.6


@dataclass(frozen=True, slots=True)
class Hit:
    path: str
    kind: str
    # Fused score in hybrid mode (score_fusion; RRF while a progressive index has two
    # tiers), cosine similarity or BM25 score otherwise.
    score: float
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
    rankings: Sequence[Sequence[int]],
    k: int = RRF_K,
    scales: Sequence[float] | None = None,
) -> list[tuple[int, float]]:
    """Sum of 1 / (k + rank) over the rankings an id appears in (ranks are 1-based).

    `scales` (one per ranking, default 1): a ranking over a part of the index only (one
    tier of a progressive index) counts its ranks as `rank * scale`, its estimate of the
    rank over the whole index (scale = all chunks / the part's chunks), so a tier holding a
    few chunks does not put them all at the top.

    Best first; equal scores keep the order in which ids were first seen, earlier rankings
    first, so the result is deterministic.
    """
    scores: dict[int, float] = {}
    for i, ranking in enumerate(rankings):
        scale = 1.0 if scales is None else float(scales[i])
        weights = (
            _rrf_weights(k, len(ranking))
            if scale == 1.0
            else tuple(1.0 / (k + rank * scale) for rank in range(1, len(ranking) + 1))
        )
        if not scores:
            scores = dict(zip(ranking, weights, strict=False))  # the common first pass, in C
            continue
        get = scores.get
        for item, weight in zip(ranking, weights, strict=False):
            scores[item] = get(item, 0.0) + weight
    # Stable, also with reverse=True: equal scores stay in first-seen order.
    return sorted(scores.items(), key=itemgetter(1), reverse=True)


def score_fusion(
    lists: Sequence[tuple[Sequence[int], Sequence[float]]], weights: Sequence[float]
) -> list[tuple[int, float]]:
    """Weighted sum of each list's scores scaled min-max to [0, 1] within that list.

    `lists`: (ids, scores) per method, best first. An id absent from a list gets 0 there,
    as its list's lowest candidate does: it scored at most that. A list whose scores are
    all equal gives them all 1. Best first; equal scores keep first-seen order, earlier
    lists first, so the result is deterministic.
    """
    fused: dict[int, float] = {}
    for (ids, values), weight in zip(lists, weights, strict=True):
        if not len(ids):
            continue
        scores = np.asarray(values, dtype=np.float64)
        low, high = float(scores.min()), float(scores.max())
        scaled = (scores - low) / (high - low) if high > low else np.ones_like(scores)
        get = fused.get
        for item, value in zip(ids, (scaled * weight).tolist(), strict=True):
            fused[item] = get(item, 0.0) + value
    return sorted(fused.items(), key=itemgetter(1), reverse=True)


@functools.lru_cache(maxsize=16)
def _rrf_weights(k: int, n: int) -> tuple[float, ...]:
    return tuple(1.0 / (k + rank) for rank in range(1, n + 1))


class HybridSearcher:
    def __init__(
        self,
        store: IndexStore,
        embed_query: Callable[[str], np.ndarray],
        embed_static_query: Callable[[str], np.ndarray] | None = None,
    ) -> None:
        """`embed_static_query`: the static embedder of progressive indexing, asked only
        while the index holds chunks that have its vectors and not the transformer's."""
        self.store = store
        self.embed_query = embed_query
        self.embed_static_query = embed_static_query

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
        one_per_definition: bool = True,
    ) -> list[Hit]:
        """The `top_k` best chunks for `query`; `mode` picks one method alone for comparison.

        Hybrid takes the top `candidates` of each method (at least `top_k`) before fusing.
        Filters apply inside each method, so they never shorten the result list needlessly.
        Both methods and the hits read one snapshot of the index: one consistent state
        (texts and locations come from DuckDB, for the hits only; see `_hits`).
        With `on_degraded`, a hybrid search whose query cannot be embedded (the model will
        not load, the embedding API is down) answers from BM25 alone and reports the error
        there; without it, or in vector mode, the error propagates.
        `one_per_definition`: the parts of one split definition (a function, class or
        method too long for one chunk: each part carries its header) count once, at the
        best part's place, instead of filling several of the top places (measured on the
        tornado code set, hybrid: hit@5 0.762 -> 0.794, MRR 0.611 -> 0.619), and so does
        a file's module code (MODULE_KIND).
        """
        if mode not in ("hybrid", "vector", "bm25"):
            raise ValueError(f"unknown search mode {mode!r}")
        if not query.strip() or top_k <= 0:
            return []
        pool = top_k if mode != "hybrid" else max(candidates, top_k)
        if one_per_definition:
            pool = max(pool, COLLAPSE_READS * top_k)  # room for the parts left out
        # Embed before taking the snapshot, so the search sees the newest one; each tier's
        # query only if that tier holds chunks now (a tier that appears meanwhile is left
        # out of this one search rather than compared with another model's query).
        now = self.store.snapshot()
        query_vector = None
        static_vector = None
        if mode != "bm25" and now.static is not None and self.embed_static_query is not None:
            try:
                static_vector = self.embed_static_query(query)
            except Exception:
                log.warning("The static embedder could not embed a query", exc_info=True)
        if mode != "bm25" and (now.n_covered or static_vector is None):
            try:
                query_vector = self.embed_query(query)
            except Exception as exc:
                # A keyword-only index (index_embedder = "none") degrades by design.
                chosen = getattr(exc, "keyword_only", False)
                if static_vector is None and (
                    mode == "vector" or (on_degraded is None and not chosen)
                ):
                    raise
                if on_degraded is not None and static_vector is None:
                    on_degraded(exc)
                if static_vector is None:
                    mode = "bm25"

        def run(snapshot: IndexSnapshot) -> list[Hit]:
            return self._hits(
                snapshot,
                query,
                query_vector,
                mode,
                top_k,
                pool,
                path_glob,
                kinds,
                static_vector,
                one_per_definition,
            )

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
        static_vector: np.ndarray | None = None,
        one_per_definition: bool = False,
    ) -> list[Hit]:
        vector: list[int] = []
        static: list[int] = []
        bm25: list[int] = []
        vector_values: list[float] = []
        bm25_values: list[float] = []
        scores: dict[int, float] = {}
        if query_vector is not None:
            rows, values = snapshot.search_vector(
                query_vector, pool, path_glob=path_glob, kinds=kinds
            )
            vector, vector_values = rows.tolist(), values.tolist()
            if mode == "vector":
                scores = dict(zip(vector, vector_values, strict=True))
        if static_vector is not None and snapshot.static is not None:
            rows, values = snapshot.search_static(
                static_vector, pool, path_glob=path_glob, kinds=kinds
            )
            static = rows.tolist()
            if mode == "vector":
                scores.update(zip(static, values.tolist(), strict=True))
        # Each tier ranks its own chunks only: its ranks scaled to the whole index's.
        tier_scales = [1.0, 1.0]
        if vector and static and snapshot.static is not None:
            live = max(1, snapshot.n_live)
            tier_scales = [
                live / max(1, snapshot.n_covered),
                live / max(1, len(snapshot.static)),
            ]
        if mode == "vector" and vector and static:
            # Two models' cosines are not comparable: their rankings are fused instead.
            fused = reciprocal_rank_fusion([vector, static], scales=tier_scales)
            scores = dict(fused)
            vector, static = [row for row, _ in fused], []
        if mode != "vector":
            terms = self.store.tokenizer.query_terms(query)
            rows, values = snapshot.search_bm25(terms, pool, path_glob=path_glob, kinds=kinds)
            bm25, bm25_values = rows.tolist(), values.tolist()
            if mode == "bm25":
                scores = dict(zip(bm25, bm25_values, strict=True))
        if mode == "hybrid":
            if static:
                ranked = reciprocal_rank_fusion([vector, static, bm25], scales=[*tier_scales, 1.0])
            else:
                ranked = score_fusion(
                    [(vector, vector_values), (bm25, bm25_values)],
                    [VECTOR_WEIGHT, 1.0 - VECTOR_WEIGHT],
                )
        else:
            ranked = [(row, scores[row]) for row in (vector or static or bm25)]
        # Collapsing reads a few more hits than it returns, in case some are later parts.
        ranked = ranked[: COLLAPSE_READS * top_k if one_per_definition else top_k]
        vector_ranks = dict(zip(vector, range(1, len(vector) + 1), strict=True))
        # A chunk is in one tier at most, so its vector rank is its tier's.
        vector_ranks.update(zip(static, range(1, len(static) + 1), strict=True))
        bm25_ranks = dict(zip(bm25, range(1, len(bm25) + 1), strict=True))
        # Texts and locations from DuckDB, for these hits only. Ids are never reused, so a
        # chunk found is the one ranked; one missing was removed by a write committed since
        # the snapshot was taken: the whole search runs again on a newer one.
        ids = snapshot.ids[np.array([row for row, _ in ranked], dtype=np.int64)]
        chunks = self.store.chunks(ids.tolist())
        if len(chunks) != len(ranked):
            raise StaleSnapshot()
        hits = [
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
        return collapse_definitions(hits, top_k) if one_per_definition else hits


# A collapsing search reads this many times top_k hits (texts from DuckDB, ~0.3 ms each) so
# that leaving later parts out still fills top_k; if more than that are later parts, it
# returns fewer than top_k hits rather than reading on.
COLLAPSE_READS = 2
# Kinds whose chunks with one title in one file are parts of one split definition.
DEFINITION_KINDS = frozenset({"function", "class", "method"})
# The code between a file's definitions (imports, constants, a licence comment) is cut into
# many small chunks under one header: together they are the module's own code, one hit.
# Measured as hits of their own, they took places from definitions (tornado: escape.py's
# module chunks above `xhtml_unescape`): hybrid hit@5 0.810 -> 0.825, MRR 0.681 -> 0.684.
MODULE_KIND = "module"


def collapse_definitions(hits: Sequence[Hit], top_k: int) -> list[Hit]:
    """The first `top_k` hits once later parts of a definition already listed, and module
    code of a file already listed, are left out (notebook cells and sections under one
    heading are distinct chunks: all kept)."""
    seen: set[tuple[str, str, str | None]] = set()
    kept: list[Hit] = []
    for hit in hits:
        key: tuple[str, str, str | None] | None = None
        if hit.kind in DEFINITION_KINDS and hit.title:
            key = (hit.path, hit.kind, hit.title)
        elif hit.kind == MODULE_KIND:
            key = (hit.path, hit.kind, None)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        kept.append(hit)
        if len(kept) == top_k:
            break
    return kept
