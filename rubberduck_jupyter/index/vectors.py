"""The vector half of the index in memory: one embedder's vectors and their nearest-neighbour
search, as one component (`ExactVectors` or `AnnVectors`) that a snapshot holds.

Below `ann_threshold` chunks (the store's setting, 50k by default) search is exact: numpy over
a float32 matrix, ~4 ms per 100k rows and 1.5 KB per chunk. Above it the vectors live in a
usearch HNSW graph as int8 (~650-850 B per chunk with links and usearch's arenas, in one copy:
usearch holds them, nothing else does) and a search reads ~1 ms of graph at any size instead
of every vector. Building it costs ~0.3-0.6 ms per vector on 2 cores, once: it is saved.

int8 needs a scale, and ours: handed float32, usearch normalizes each vector and multiplies
by 127, so a 384-d unit vector's components (~±0.05) become integers of ~±6 and recall@10
falls to ~0.92 on clustered vectors. So each vector is scaled by 127 / its largest |component|
and rounded here (cosine ignores a vector's length), the query too: recall@10 0.985-0.99 on
the same data. The best `max(MIN_RESCORE, 2k)` candidates are then scored again with the
float32 query against their stored int8 vectors (0.991-0.994 at 30k; 0.983 at 100k, where
exact search over the int8 vectors scores 0.9825: the graph loses nothing more).

At 1M chunks int8 itself is the limit: neighbours 10 and 11 are often closer than int8's
error, and exact search over the int8 vectors reaches only 0.9815 (the graph's 40 candidates
then score 0.9645). So the candidates whose int8 score is too close to the k-th boundary to
tell (within `PRECISE_MARGIN` standard deviations of the rounding error, plus the gap between
the k-th and the next) are scored again with their float32 vectors from DuckDB (`precise`,
the store's point lookups): ~4.4 of 40 candidates per search (at most 8 in 200 searches),
~0.5 ms each, and recall@10 is that of rescoring every candidate in float32 (0.9840 at 1,024
search candidates; 0.9815 at 512). A lookup reading the whole vector column instead (40 ids
by `IN`: ~0.4-1 s at 200k chunks) would cost more than the search, so only these few are read.

An `AnnVectors` is mutable (usearch adds and removes in place) and shared by every snapshot
since it was built; `version` counts the writes applied to it, so a snapshot can tell that a
newer write moved it (its search would mix two states) and search again on the newest one.
Keys are chunk ids, which no write reuses, so a snapshot maps them to its rows and drops
the ones it does not hold.

A snapshot holds the store's own embedder's vectors in one of these, and, while progressive
indexing is under way, a second, smaller set: `StaticVectors`, the fast static embedder's
vectors of the chunks the transformer has not reached yet, keyed by chunk id. Each chunk is
in one set at most, a query is embedded once per set by that set's embedder, and the two
sets' similarities are never compared with each other (search.py fuses their rankings).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .bm25 import top_k

log = logging.getLogger(__name__)

# HNSW shape: 16 links per node (32 on the base layer), usearch's default, is what the
# recall numbers in the docstring and below used; 64 candidates while adding keeps building at a few
# thousand vectors/s on 2 cores (128 halves that for no measurable recall here). Candidates
# while searching, recall@10 on clustered vectors: at 100k 64 -> 0.977, 128 -> 0.983 (the
# int8 ceiling); at 200k 128 -> 0.971, 256 -> 0.976, 512 -> 0.981 for ~1.4 ms a search.
# At 1M, 16 links gave recall@10 0.955 with 512 candidates against 0.9815 for exact search
# over the same int8 vectors: the graph was the limit. 24 links (48 on the base layer):
# 0.965-0.968, for ~93 B per chunk more RSS (892 B per chunk at 1M) and a 1.5x build.
# The links are a property of the saved graph (usearch reads them from the file, not from
# the constructor): the saved stamp carries them, and a graph saved with other links is
# rebuilt, not loaded.
CONNECTIVITY = 24
EXPANSION_ADD = 64
# At 1M, with the boundary rescored in float32 (below): 512 -> 0.9815 (2.1 ms a search),
# 768 -> 0.9835 (3.7 ms), 1024 -> 0.9840 (4.4 ms), 2048 -> 0.9885 (9.8 ms).
EXPANSION_SEARCH = 1024
# Candidates rescored with the float32 query: at least this many, or twice k. At 1M (24
# links) 40 and 200 hold the same true neighbours (0.9815 of them at 512 search candidates,
# 0.9885 at 2048): what is left is the graph's.
MIN_RESCORE = 40
# Candidates within this many standard deviations of int8's rounding error (plus half the
# gap) of the k-th boundary get their float32 score. At 1M: 2 already gives the recall of
# rescoring all 40 candidates in float32 (3.6 lookups a search), 3 (4.4) keeps a margin.
PRECISE_MARGIN = 3.0
# The standard deviation of q . e for a unit q and rounding errors e uniform in +-0.5 on
# every component, in int8 units: 0.5 / sqrt(3); divided by |x| of the int8 vector x.
_ROUNDING_SD = 0.5 / math.sqrt(3.0)
# A filtered search over-fetches k * (live / allowed) * OVERFETCH; past MAX_OVERFETCH
# candidates the filter is selective enough that scoring its rows exactly is cheaper.
OVERFETCH = 1.5
MAX_OVERFETCH = 4096
# Vectors handed to usearch per call while building (bounds the float32 copy in flight).
BUILD_BATCH = 65_536
FILE_FORMAT = 1

# float32 vectors of the chunks with these ids that have one, by id (IndexStore.full_vectors).
Precise = Callable[[Sequence[int]], dict[int, np.ndarray]]

_NO_ROWS = np.zeros(0, dtype=np.int64)
_NO_SCORES = np.zeros(0, dtype=np.float32)


class StaleSnapshot(Exception):
    """A write committed while this search ran on an older snapshot: search again on the
    newest one (after that write has finished)."""


def unit_query(query: np.ndarray, dim: int) -> np.ndarray | None:
    """The query as a float32 unit vector; None if it has no direction (zero or not finite)."""
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    if q.shape != (dim,):
        raise ValueError(f"query vector has {q.size} values, expected {dim}")
    norm = math.sqrt(float(q @ q))
    if not math.isfinite(norm) or norm == 0.0:
        return None
    return q / np.float32(norm)


def roomy_buffer(n: int, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An empty buffer for `n` rows and spare ones after them for later appends; fill
    `buffer[:n]` and pass that view as a column to skip a copy."""
    return np.empty((n + max(1024, n // 8), *shape), dtype=dtype)


def with_room(values: np.ndarray) -> np.ndarray:
    """A buffer holding `values` with spare rows after them for later appends."""
    base = values.base
    if (
        isinstance(base, np.ndarray)
        and base.dtype == values.dtype
        and base.shape[1:] == values.shape[1:]
        and len(base) > len(values)
        and base.flags.c_contiguous
        and values.ctypes.data == base.ctypes.data
    ):
        return base  # `values` is already the start of such a buffer
    buf = roomy_buffer(len(values), values.shape[1:], values.dtype)
    buf[: len(values)] = values
    return buf


def append(buf: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    """`buf[:n]` followed by `values`: in `buf`'s spare room when it has enough (rows
    below `n` are never written, so views of them stay valid), else in a new buffer."""
    end = n + len(values)
    if end > len(buf):
        grown = np.empty((end + max(1024, end // 4), *buf.shape[1:]), dtype=buf.dtype)
        grown[:n] = buf[:n]
        buf = grown
    buf[n:end] = values
    return buf


@dataclass(frozen=True, slots=True)
class Query:
    """What a vector search needs from the snapshot: its rows and which of them count."""

    ids: np.ndarray  # int64 (n,), ascending: the chunk id of each row
    alive: np.ndarray  # bool (n,)
    n_live: int
    allowed: np.ndarray | None  # rows passing the filters (ascending), or None: all live rows
    mask: np.ndarray | None = None  # the same as a bool (n,) mask


class ExactVectors:
    """float32 rows aligned with the snapshot's rows, in an append-only buffer shared by
    the snapshots derived from one another (each reads its first `n` rows only)."""

    kind = "exact"

    def __init__(self, buffer: np.ndarray, n: int, dim: int) -> None:
        self.buffer = buffer
        self.n = n
        self.dim = dim
        self.version = 0  # never moves: an exact set is immutable

    @classmethod
    def of(cls, matrix: np.ndarray, dim: int) -> ExactVectors:
        matrix = np.asarray(matrix, dtype=np.float32).reshape(-1, dim)
        return cls(with_room(matrix), len(matrix), dim)

    @property
    def matrix(self) -> np.ndarray:
        return self.buffer[: self.n]

    @property
    def nbytes(self) -> int:
        return self.matrix.nbytes

    def changed(
        self, removed_ids: np.ndarray, ids: np.ndarray, vectors: np.ndarray
    ) -> ExactVectors:
        """With `vectors` appended as new rows (removed rows stay as tombstones here)."""
        del removed_ids, ids  # rows are positions; the snapshot tracks which are alive
        added = np.asarray(vectors, dtype=np.float32)
        return ExactVectors(append(self.buffer, self.n, added), self.n + len(added), self.dim)

    def filled(self, rows: np.ndarray, vectors: np.ndarray) -> ExactVectors:
        """With `vectors` written into `rows`, in place: only for rows no snapshot ranks
        (uncovered ones, see snapshot.py), so every older reader is undisturbed."""
        self.buffer[rows] = np.asarray(vectors, dtype=np.float32)
        return ExactVectors(self.buffer, self.n, self.dim)

    def compacted(self, keep: np.ndarray) -> ExactVectors:
        return ExactVectors.of(self.matrix[keep], self.dim)

    def search(self, q: np.ndarray, k: int, where: Query) -> tuple[np.ndarray, np.ndarray]:
        scores = self.matrix @ q
        if where.allowed is not None:
            best = top_k(scores, k, where.allowed)
        elif where.n_live < self.n:
            scores[~where.alive] = -np.inf
            best = top_k(scores, min(k, where.n_live))
        else:
            best = top_k(scores, k)
        return best, scores[best]


def to_int8(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled so the largest |component| is 127, rounded: all of int8's range."""
    v = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
    peak = np.abs(v).max(axis=1, keepdims=True)
    peak[peak == 0] = 1.0
    return np.rint(v * (np.float32(127) / peak)).astype(np.int8)


class AnnVectors:
    """int8 vectors in a usearch HNSW graph keyed by chunk id; see the module docstring."""

    kind = "ann"

    def __init__(self, dim: int, index: Any | None = None, precise: Precise | None = None) -> None:
        from usearch.index import Index  # a compiled library: load it only when needed

        self.dim = dim
        self.index = index or Index(
            ndim=dim,
            metric="cos",
            dtype="i8",
            connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD,
            expansion_search=EXPANSION_SEARCH,
        )
        self.version = 0
        self.saved_version: int | None = None  # `version` when last saved or loaded
        # float32 vectors by chunk id for the boundary candidates (the store's DuckDB
        # lookup); ids it leaves out keep their int8 score. None: int8 scores only.
        self.precise = precise
        self._lock = threading.Lock()  # usearch searches run concurrently; changes do not

    @property
    def nbytes(self) -> int:
        return int(self.index.memory_usage)

    def __len__(self) -> int:
        return len(self.index)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.uint64)
        for start in range(0, len(ids), BUILD_BATCH):
            part = slice(start, start + BUILD_BATCH)
            self.index.add(ids[part], to_int8(vectors[part]), threads=0)

    def changed(self, removed_ids: np.ndarray, ids: np.ndarray, vectors: np.ndarray) -> AnnVectors:
        """Applies a write in place and counts it; returns itself (shared, not copied)."""
        with self._lock:
            if len(removed_ids):
                self.index.remove(np.asarray(removed_ids, dtype=np.uint64))
            if len(ids):
                self.add(ids, vectors)
            self.version += 1
        return self

    def compacted(self, keep: np.ndarray) -> AnnVectors:
        del keep  # keyed by id: renumbering rows changes nothing here
        return self

    def search(self, q: np.ndarray, k: int, where: Query) -> tuple[np.ndarray, np.ndarray]:
        n_allowed = where.n_live if where.allowed is None else len(where.allowed)
        if k <= 0 or not n_allowed:
            return _NO_ROWS, _NO_SCORES
        want = max(MIN_RESCORE, 2 * k)
        if where.allowed is not None:
            want = math.ceil(want * OVERFETCH * where.n_live / n_allowed)
            if want > MAX_OVERFETCH:
                return self._exact(q, k, where.ids[where.allowed], where)
        found = self.index.search(to_int8(q[None, :])[0], min(want, len(self.index)))
        rows = _rows_of(where, np.asarray(found.keys, dtype=np.int64))
        if where.allowed is not None:
            mask = where.mask
            if mask is None:
                mask = np.zeros(len(where.ids), dtype=bool)
                mask[where.allowed] = True
            rows = rows[mask[rows]]
            if len(rows) < min(k, n_allowed):
                return self._exact(q, k, where.ids[where.allowed], where)
        return self._rescored(q, k, rows, where)

    def _rescored(
        self, q: np.ndarray, k: int, rows: np.ndarray, where: Query
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best k of `rows` by the cosine of the float32 query and their int8 vectors,
        the ones at the k-th boundary by their float32 vectors; ties to the lower row."""
        if not len(rows):
            return _NO_ROWS, _NO_SCORES
        rows = np.sort(rows)
        scores = self._scores(q, where.ids[rows], k)
        best = top_k(scores, k)
        return rows[best], scores[best]

    def _exact(
        self, q: np.ndarray, k: int, ids: np.ndarray, where: Query
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k among `ids` (a selective filter), over their int8 vectors (the k-th
        boundary's in float32, as `_rescored`)."""
        rows = _rows_of(where, ids)
        scores = self._scores(q, where.ids[rows], k)
        best = top_k(scores, k)
        return rows[best], scores[best]

    def _scores(self, q: np.ndarray, ids: np.ndarray, k: int = 0) -> np.ndarray:
        """Cosines of `q` with these chunks' int8 vectors; with k, the k-th boundary's
        in float32 (`_refine`)."""
        got = self.index.get(np.asarray(ids, dtype=np.uint64), dtype=np.int8)
        matrix = np.asarray(got, dtype=np.float32).reshape(len(ids), self.dim)
        norms = np.linalg.norm(matrix, axis=1)
        norms[norms == 0] = 1.0
        scores = (matrix @ q) / norms
        if self.precise is not None and len(scores) > k > 0:
            self._refine(q, k, ids, scores, norms)
        return scores

    def _refine(
        self, q: np.ndarray, k: int, ids: np.ndarray, scores: np.ndarray, norms: np.ndarray
    ) -> None:
        """Replace, in place, the int8 scores too close to the k-th boundary to rank by their
        float32 ones (see PRECISE_MARGIN)."""
        assert self.precise is not None
        part = np.partition(scores, len(scores) - k - 1)[len(scores) - k - 1 :]
        kth, after = float(part[1:].min()), float(part[0])  # the k-th score and the next
        middle, half_gap = (kth + after) / 2, (kth - after) / 2
        band = np.abs(scores - middle) <= PRECISE_MARGIN * _ROUNDING_SD / norms + half_gap
        near = np.flatnonzero(band)
        try:
            found = self.precise(ids[near].tolist())
        except Exception:  # a lookup that fails costs precision, never the search
            log.debug("float32 rescoring failed; int8 scores kept", exc_info=True)
            return
        for at, chunk_id in zip(near.tolist(), ids[near].tolist(), strict=True):
            vector = found.get(int(chunk_id))
            if vector is None:
                continue  # removed by a later write: its int8 score stands
            length = float(np.linalg.norm(vector))
            if length > 0 and math.isfinite(length):
                scores[at] = float(vector @ q) / length

    # --- persistence ----------------------------------------------------------------------

    def save(self, path: Path, stamp: dict[str, Any]) -> None:
        """Write the graph to `path` and what it matches (`stamp`: the store's identity and
        write version) to `path.json`, each by rename, so a reader sees whole files only;
        a crash between the two leaves a stamp the loader rejects (size or version)."""
        with self._lock:
            tmp = path.with_name(path.name + ".tmp")
            self.index.save(str(tmp))
            os.replace(tmp, path)
            meta = {
                **stamp,
                "format": FILE_FORMAT,
                "connectivity": int(self.index.connectivity),
                "bytes": path.stat().st_size,
                "count": len(self),
            }
            tmp_meta = path.with_name(path.name + ".json.tmp")
            tmp_meta.write_text(json.dumps(meta))
            os.replace(tmp_meta, path.with_name(path.name + ".json"))
            self.saved_version = self.version

    @classmethod
    def load(
        cls, path: Path, stamp: dict[str, Any], dim: int, precise: Precise | None = None
    ) -> tuple[AnnVectors | None, str]:
        """The saved graph if its stamp matches `stamp` exactly, else (None, why not)."""
        meta_path = path.with_name(path.name + ".json")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return None, "no readable stamp"
        if not path.exists():
            return None, "no graph file"
        # A stamp without links is of a graph saved before they were recorded (16).
        wanted = {**stamp, "format": FILE_FORMAT, "connectivity": CONNECTIVITY}
        for key, value in wanted.items():
            if meta.get(key) != value:
                return None, f"{key} is {meta.get(key)!r}, expected {value!r}"
        if meta.get("bytes") != path.stat().st_size:
            return None, "the graph file does not match its stamp"
        ann = cls(dim, precise=precise)
        try:
            ann.index.load(str(path))
        except Exception as exc:  # a damaged file is rebuilt, never trusted
            return None, f"unreadable: {exc}"
        if (
            len(ann) != meta.get("count")
            or ann.index.ndim != dim
            or ann.index.connectivity != CONNECTIVITY
        ):
            return None, "the graph does not match its stamp"
        ann.saved_version = 0
        return ann, ""


def _rows_of(where: Query, ids: np.ndarray) -> np.ndarray:
    """The live rows of these chunk ids (unknown ones left out), in the given order."""
    all_ids = where.ids
    if not len(all_ids) or not len(ids):
        return _NO_ROWS
    rows = np.minimum(np.searchsorted(all_ids, ids), len(all_ids) - 1)
    return rows[(all_ids[rows] == ids) & where.alive[rows]]


VectorSet = ExactVectors | AnnVectors


class StaticVectors:
    """The static tier during progressive indexing: float32 unit vectors of the chunks that
    have no transformer vector yet, keyed by chunk id (ascending: ids only grow), shrinking
    as the transformer's vectors replace them. Immutable: a change returns a new set that
    shares the append-only buffers (each set reads its first `n` rows only), with its own
    `alive` mask; removed rows are copied away once they are a quarter of the rows.

    Exact search only: the tier is transient (seconds to minutes) and usually small; at
    1M chunks it holds ~1 KB per chunk (256-d float32) until the transformer catches up.
    """

    def __init__(
        self, ids: np.ndarray, buffer: np.ndarray, n: int, alive: np.ndarray, dim: int
    ) -> None:
        self.id_buffer = ids
        self.buffer = buffer
        self.n = n
        self.alive = alive
        self.n_alive = int(alive.sum())
        self.dim = dim

    @classmethod
    def of(cls, ids: np.ndarray, matrix: np.ndarray, dim: int) -> StaticVectors:
        ids = np.asarray(ids, dtype=np.int64)
        matrix = np.asarray(matrix, dtype=np.float32).reshape(len(ids), dim)
        order = np.argsort(ids, kind="stable")
        ids, matrix = ids[order], matrix[order]
        return cls(with_room(ids), with_room(matrix), len(ids), np.ones(len(ids), bool), dim)

    @classmethod
    def empty(cls, dim: int) -> StaticVectors:
        return cls.of(np.zeros(0, np.int64), np.zeros((0, dim), np.float32), dim)

    @property
    def ids(self) -> np.ndarray:
        return self.id_buffer[: self.n]

    @property
    def matrix(self) -> np.ndarray:
        return self.buffer[: self.n]

    @property
    def nbytes(self) -> int:
        return self.matrix.nbytes + self.ids.nbytes + self.alive.nbytes

    def __len__(self) -> int:
        return self.n_alive

    def live_ids(self) -> np.ndarray:
        return self.ids[self.alive]

    def changed(
        self, removed_ids: np.ndarray, ids: np.ndarray, vectors: np.ndarray
    ) -> StaticVectors:
        """Without `removed_ids` (unknown ones ignored), with `ids` (new, ascending) added."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) and self.n and ids[0] <= self.ids[-1]:
            raise ValueError("static vectors are added with new ids, ascending")
        alive = np.ones(self.n + len(ids), dtype=bool)
        alive[: self.n] = self.alive
        gone = _positions(self.ids, np.asarray(removed_ids, dtype=np.int64))
        alive[gone] = False
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        following = StaticVectors(
            append(self.id_buffer, self.n, ids),
            append(self.buffer, self.n, matrix),
            self.n + len(ids),
            alive,
            self.dim,
        )
        dead = following.n - following.n_alive
        if dead >= max(1024, following.n // 4):
            keep = following.alive
            return StaticVectors.of(following.ids[keep], following.matrix[keep], self.dim)
        return following

    def search(self, q: np.ndarray, k: int, where: Query) -> tuple[np.ndarray, np.ndarray]:
        """Top-k snapshot rows (and similarities) among this set's chunks that `where`
        allows (live, passing the filters), best first; ties to the lower row."""
        if k <= 0 or not self.n_alive:
            return _NO_ROWS, _NO_SCORES
        mine = np.flatnonzero(self.alive)
        ids = self.ids[mine]
        all_ids = where.ids
        if not len(all_ids):
            return _NO_ROWS, _NO_SCORES
        rows = np.minimum(np.searchsorted(all_ids, ids), len(all_ids) - 1)
        ok = (all_ids[rows] == ids) & where.alive[rows]
        if where.mask is not None:
            ok &= where.mask[rows]
        mine, rows = mine[ok], rows[ok]
        if not len(rows):
            return _NO_ROWS, _NO_SCORES
        scores = self.matrix[mine] @ q
        best = top_k(scores, k)
        return rows[best], scores[best]


def _positions(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions in the ascending `ids` of the `wanted` ids it holds."""
    if not len(ids) or not len(wanted):
        return _NO_ROWS
    at = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
    return at[ids[at] == wanted]
