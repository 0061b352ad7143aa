"""BM25 over chunk texts, held in memory: an immutable inverted index (the terms come
from `terms.Tokenizer`).

`BM25Index` knows rows (positions 0..n_rows-1 that the caller maps to chunks), never
DuckDB. It is immutable: `updated()` returns a new index that shares every posting list
the change did not touch, so a search holding the old one is never disturbed, and a
one-file edit costs time in proportion to the terms it touches, not to the index.

A changed list is not copied either: removed rows' postings stay in it (a removed row has
no length, and scores 0) until the next fold, and new postings are appended in the spare
room of a buffer shared with older copies, each of which reads only its own length. At 1M
chunks a common term has ~800k postings: copying each list a write touches cost ~0.2 s.

Score contributions are cached per term and carried across writes. A posting's share of its
row's score is `g * s`: `g = tf / (tf + norm[row])` depends on the row's length and on avgdl,
`s = idf(df, N) * (K1 + 1)` on the term's df and N. The cache holds `g` for common terms (a
dense array over rows, the costly part: a scatter of ~800k postings at 1M) and multiplies by
the current `s` on each read (one pass), so a change of df or N needs nothing recomputed.
avgdl is rounded to AVGDL_BITS significant bits (BM25 is insensitive to it at that
precision: <0.4% off), so a small write leaves it, hence `norm` of every kept row, unchanged:
a carried `g` only gains the rows a write adds (written in the spare room of a buffer shared
with older copies, like postings), and a removed row's stale `g` is masked when scoring (a
removed row has no length; `removed` lists them). The whole cache goes when the rounded avgdl
changes (a write moved the mean length across a rounding step), on a fold or a compaction
(rows and lists are rebuilt), and a term's entry goes when the term becomes rare (sparse
form) or the cache is full. A fresh index computes the same float32 expressions from the same
inputs, so carried and fresh scores are bit-identical.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .chunkers.headers import header_fields
from .terms import MAX_QUERY_TERMS, Tokenizer, default_tokenizer

# The tokenizer lived here first; its names stay importable from this module.
__all__ = [
    "MAX_QUERY_TERMS",
    "BM25Index",
    "Tokenizer",
    "chunk_term_counts",
    "default_tokenizer",
    "top_k",
]

# Okapi BM25 parameters, the usual defaults (and DuckDB FTS's, which this replaces).
K1 = 1.2
B = 0.75
# BM25F-style field weight: each term of a code chunk's header fields (qualified name,
# signature, docstring summary: chunkers/headers.py) counts this many times, the body's
# once, so a question naming what a definition is or does ranks the definition above code
# that merely uses those words. Measured (benchmarks/index_quality.py, with the fusion of
# search.py; hybrid hit@5 / MRR, 2026-12-06): weight 1, 2, 3 = tornado 0.778/0.659,
# 0.825/0.673, 0.825/0.684; held-out traitlets 0.929/0.742, 0.929/0.771, 0.946/0.778.
HEADER_TERM_WEIGHT = 3
# Chunk kinds whose text opens with such a header (notebook and Markdown sections' heading
# lines are titles, counted once like their body).
HEADED_KINDS = frozenset({"function", "class", "method", "module"})
# Top-k of up to SORT_UP_TO scores sorts them all; of SAMPLE_FROM or more, it starts from a
# bound sampled from every SAMPLE_STEP-th score.
SORT_UP_TO = 512
SAMPLE_FROM = 4096
SAMPLE_STEP = 8
# A term in at least 1/DENSE_SHARE of the rows is scored as a dense array; see `weights`.
DENSE_SHARE = 16
# Score contributions cached, in float32 values: the dense `g` of common terms (carried
# across writes) and sparse terms' contributions (per copy). 48M = 192 MB: all 40 terms of
# the 1M-chunk benchmark's vocabulary (each in 78% of the rows) fit.
MAX_CACHED_WEIGHTS = 48_000_000
# avgdl is rounded to this many significant bits (see the module docstring).
AVGDL_BITS = 8
# Folding the changed posting lists back into one CSR array costs one pass over all
# postings; do it once this many terms have their own lists (each write copies the map).
MAX_OVERRIDES = 20_000

# Postings are stored small (6 bytes each: ~190 MB at 1M chunks of ~30 distinct terms, half
# of int64 rows + float32 counts): rows fit uint32 (4G chunks), and a count above 65535 in
# one chunk scores like 65535 (BM25 saturates long before).
ROW = np.uint32
TF = np.uint16
_EMPTY_ROWS = np.zeros(0, dtype=ROW)
_EMPTY_TFS = np.zeros(0, dtype=TF)
_EMPTY_WEIGHTS = np.zeros(0, dtype=np.float32)


def chunk_term_counts(tokenizer: Tokenizer, kind: str, text: str) -> dict[str, int]:
    """A chunk's BM25 term counts: its text's terms, those of a code header's fields
    counted HEADER_TERM_WEIGHT times in all (the path's once, as the body's)."""
    counts = Counter(tokenizer.terms(text))
    if kind in HEADED_KINDS:
        for term in tokenizer.terms(header_fields(text)):
            counts[term] += HEADER_TERM_WEIGHT - 1
    return dict(counts)


def top_k(scores: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Positions of the `k` highest scores (of `rows` only, ascending, if given), best first.

    Equal scores go to the lower row, always: the result does not depend on how a
    selection algorithm happens to break ties, so two indexes with the same content agree.
    """
    values = scores if rows is None else scores[rows]
    n = len(values)
    if k <= 0 or n == 0:
        return _EMPTY_ROWS
    if n <= SORT_UP_TO:
        # A stable sort of the negated scores: best first, ties in ascending position.
        pick = np.argsort(-values, kind="stable")[:k]
    else:
        pick = _top_k_by_sample(values, k) if n >= SAMPLE_FROM else None
        if pick is None:
            pick = _top_k_by_partition(values, k)
    return pick if rows is None else rows[pick]


def _top_k_by_sample(values: np.ndarray, k: int) -> np.ndarray | None:
    """`top_k` over a few candidates instead of all values, or None if that cannot work.

    A bound taken from every SAMPLE_STEP-th value usually leaves ~2k values at or above
    it. If at least k are, the k best are all among them (ties with the k-th included),
    so the answer is exact; selecting among all n values costs several times more.
    """
    n = len(values)
    if n < SAMPLE_STEP * 4 * k:
        return None
    sample = values[::SAMPLE_STEP]
    rank = min(len(sample), k // (SAMPLE_STEP // 2) + 2)
    bound = np.partition(sample, len(sample) - rank)[len(sample) - rank]
    candidates = np.flatnonzero(values >= bound)
    if len(candidates) < k or len(candidates) > n // 2:
        return None
    return candidates[top_k(values[candidates], k)]


def _top_k_by_partition(values: np.ndarray, k: int) -> np.ndarray:
    n = len(values)
    if n <= k:
        pick = np.arange(n)
    else:
        pick = np.argpartition(values, n - k)[n - k :]
        picked = values[pick]
        kth = picked.min()
        if np.count_nonzero(values == kth) > np.count_nonzero(picked == kth):
            # Rows tied with the k-th score were left out: take the lowest ones instead.
            above = pick[picked > kth]
            pick = np.concatenate([above, np.flatnonzero(values == kth)[: k - len(above)]])
    return pick[np.lexsort((pick, -values[pick]))]


def rounded_avgdl(total_len: int, n_docs: int) -> float:
    """The mean row length as BM25 uses it: rounded to AVGDL_BITS significant bits, so a
    small write rarely changes it (and the cached per-row factors stay valid)."""
    if not n_docs or not total_len:
        return 1.0
    mantissa, exponent = math.frexp(total_len / n_docs)
    return math.ldexp(round(mantissa * (1 << AVGDL_BITS)) / (1 << AVGDL_BITS), exponent)


class DenseBuffer:
    """A common term's `g` over rows, with spare room, shared by the copies that append to
    it in turn (each reads its first n_rows values; see `Buffer`)."""

    def __init__(self, values: np.ndarray, used: int) -> None:
        self.values = values
        self.used = used

    def append(self, n: int, values: np.ndarray) -> DenseBuffer:
        end = n + len(values)
        target = self
        if self.used != n or end > len(self.values):
            target = DenseBuffer(np.empty(end + max(16, end // 8), np.float32), n)
            target.values[:n] = self.values[:n]
        target.values[n:end] = values
        target.used = end
        return target


def _sparse(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A term's contributions per posting, from either of the forms `weights` returns."""
    return weights[rows] if len(weights) != len(rows) else weights


class Buffer:
    """Posting arrays with spare room, shared by the copies that append to them in turn."""

    def __init__(self, rows: np.ndarray, tfs: np.ndarray, used: int) -> None:
        self.rows = rows
        self.tfs = tfs
        self.used = used  # how many entries some copy has written: only the end is free

    @classmethod
    def of(cls, rows: np.ndarray, tfs: np.ndarray) -> Buffer:
        return cls(rows, tfs, len(rows))

    def append(self, n: int, rows: np.ndarray, tfs: np.ndarray) -> Buffer:
        """A buffer whose first n + len(rows) entries are this one's first n and the given
        ones: this buffer if it has room and no copy wrote past n, else a new one."""
        end = n + len(rows)
        target = self
        if self.used != n or end > len(self.rows):
            size = end + max(16, end // 4)
            target = Buffer(np.empty(size, ROW), np.empty(size, TF), n)
            target.rows[:n] = self.rows[:n]
            target.tfs[:n] = self.tfs[:n]
        target.rows[n:end] = rows
        target.tfs[n:end] = tfs
        target.used = end
        return target


@dataclass(frozen=True, slots=True)
class Postings:
    """One term's changed list: the first `n` entries of `buffer`, of which `df` are of
    rows still in the index (removed rows' entries stay until a fold)."""

    buffer: Buffer
    n: int
    df: int

    @property
    def rows(self) -> np.ndarray:
        return self.buffer.rows[: self.n]

    @property
    def tfs(self) -> np.ndarray:
        return self.buffer.tfs[: self.n]


@dataclass(frozen=True, eq=False)
class BM25Index:
    """An inverted index over rows: for each term, the rows that contain it (ascending)
    and how often. A base CSR array plus `overrides`, the lists changed since the base
    was built; a term found in `overrides` ignores its base list."""

    vocab: dict[str, int]  # term -> code; shared by updated copies, which only add to it
    terms_by_code: list[str]  # shared the same way
    indptr: np.ndarray  # int64 (n_base_terms + 1,)
    rows: np.ndarray  # ROW, ascending within each term
    tfs: np.ndarray  # TF
    overrides: Mapping[int, Postings]
    doc_len: np.ndarray  # float32 (n_rows,): terms per row, 0 for rows not in the index
    n_docs: int
    total_len: int
    # Rows removed since the lists were last rebuilt (their postings and cached `g` stay).
    removed: np.ndarray = field(default_factory=lambda: _EMPTY_ROWS)
    norm: np.ndarray = field(init=False)  # float32 (n_rows,): the BM25 length factor
    avgdl: float = field(init=False)
    # A sparse term's score contributions per posting: fixed for this copy (N, avgdl and df
    # are), so computed on its first query and reused; a write makes a new copy, a new cache.
    _weights: dict[int, tuple[np.ndarray, np.ndarray]] = field(init=False, default_factory=dict)
    # A common term's `g` over rows (see the module docstring): carried across writes.
    _dense: dict[int, DenseBuffer] = field(init=False, default_factory=dict)
    _weights_size: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        avgdl = rounded_avgdl(self.total_len, self.n_docs)
        norm = (K1 * (1 - B + B * (self.doc_len / np.float32(avgdl)))).astype(np.float32)
        object.__setattr__(self, "norm", norm)
        object.__setattr__(self, "avgdl", avgdl)

    @property
    def cached_bytes(self) -> int:
        """Score contributions cached so far (float32 each; their rows are shared)."""
        return self._weights_size * 4

    @property
    def carried_terms(self) -> int:
        """Common terms whose cached `g` this copy holds (computed or carried)."""
        return len(self._dense)

    @property
    def n_rows(self) -> int:
        return len(self.doc_len)

    @classmethod
    def empty(cls) -> BM25Index:
        return cls.from_postings([], np.zeros(1, np.int64), _EMPTY_ROWS, _EMPTY_TFS, 0)

    @classmethod
    def from_postings(
        cls,
        terms: Sequence[str],
        indptr: np.ndarray,
        rows: np.ndarray,
        tfs: np.ndarray,
        n_rows: int,
    ) -> BM25Index:
        """From CSR postings: term `terms[i]` is in `rows[indptr[i]:indptr[i+1]]`, ascending.

        A row without terms is not a document here (it can never match), so N in the
        IDF counts only rows with at least one term.
        """
        rows = np.asarray(rows, dtype=ROW)
        tfs = np.minimum(np.asarray(tfs), np.iinfo(TF).max).astype(TF, copy=False)
        doc_len = np.bincount(rows, weights=tfs, minlength=n_rows).astype(np.float32)
        terms = list(terms)
        return cls(
            vocab={t: i for i, t in enumerate(terms)},
            terms_by_code=terms,
            indptr=np.asarray(indptr, dtype=np.int64),
            rows=rows,
            tfs=tfs,
            overrides={},
            doc_len=doc_len,
            n_docs=int(np.count_nonzero(doc_len)),
            total_len=int(tfs.sum(dtype=np.float64)),
        )

    # --- reads ----------------------------------------------------------------------------

    def _postings(self, code: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(rows, tfs, df): df counts the rows still in the index; the others score 0."""
        found = self.overrides.get(code)
        if found is not None:
            return found.rows, found.tfs, found.df
        if code + 1 < len(self.indptr):
            start, end = self.indptr[code], self.indptr[code + 1]
            return self.rows[start:end], self.tfs[start:end], int(end - start)
        return _EMPTY_ROWS, _EMPTY_TFS, 0  # a term added after this copy was made

    def idf(self, df: int) -> float:
        # Lucene's form: never negative, so a term in most rows still counts a little.
        return math.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5))

    def weights(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(rows, float32 score contributions) of one term: its share of each row's score.

        For a term in at least 1/DENSE_SHARE of the rows, the contributions come as a
        dense array over all rows (zeros where the term is not), which adds up much faster
        than scattering that many postings; removed rows' entries there may be stale (not
        zero): `scores` masks them.
        """
        rows, weights, g, scale = self._parts(term)
        return (rows, g * scale) if g is not None else (rows, weights)

    def _parts(self, term: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.float32]:
        """(rows, weights, None, scale) of a rare term; (rows, _, g, scale) of a common one,
        whose dense weights are `g * scale` (left to the caller: see `scores`)."""
        one = np.float32(1)
        code = self.vocab.get(term)
        if code is None:
            return _EMPTY_ROWS, _EMPTY_WEIGHTS, None, one
        found = self._weights.get(code)
        if found is not None:
            return found[0], found[1], None, one
        rows, counts, df = self._postings(code)
        if not df:
            return _EMPTY_ROWS, _EMPTY_WEIGHTS, None, one
        scale = np.float32(self.idf(df) * (K1 + 1))
        if len(rows) * DENSE_SHARE >= self.n_rows:
            dense = self._dense.get(code)
            if dense is None:
                dense = self._dense_of(rows, counts)
                # Concurrent searches may both compute it; either result is the same.
                if self._weights_size + self.n_rows <= MAX_CACHED_WEIGHTS:
                    self._dense[code] = dense
                    object.__setattr__(self, "_weights_size", self._weights_size + self.n_rows)
            return rows, _EMPTY_WEIGHTS, dense.values[: self.n_rows], scale
        tfs = counts.astype(np.float32)
        weights = tfs / (tfs + self.norm[rows]) * scale
        if df < len(rows):
            weights[self.doc_len[rows] == 0] = 0  # removed rows, not yet folded away
        if self._weights_size + len(weights) <= MAX_CACHED_WEIGHTS:
            self._weights[code] = (rows, weights)
            object.__setattr__(self, "_weights_size", self._weights_size + len(weights))
        return rows, weights, None, scale

    def _dense_of(self, rows: np.ndarray, counts: np.ndarray) -> DenseBuffer:
        """`g = tf / (tf + norm)` over all rows, in place: one scatter, then contiguous
        passes without gathers (~2x faster for a term in most of 1M rows). A row without
        the term has tf 0, hence g 0; each value is the same float32 expression as a sparse
        term's (and as `_carried`'s)."""
        g = np.zeros(self.n_rows, dtype=np.float32)
        g[rows] = counts
        denominator = g + self.norm
        np.divide(g, denominator, out=g)
        return DenseBuffer(g, self.n_rows)

    def _carried(self, old: BM25Index, grow: Mapping[int, tuple[list[int], list[int]]]) -> None:
        """Take over `old`'s cached `g` of common terms (this copy is `old` after a write
        that kept avgdl): each gains the rows added since, nothing else changed."""
        if self.avgdl != old.avgdl or not old._dense:
            return
        n_old, n_new = old.n_rows, self.n_rows
        size = 0
        for code, dense in old._dense.items():
            rows = self._postings(code)[0]
            if len(rows) * DENSE_SHARE < n_new or size + n_new > MAX_CACHED_WEIGHTS:
                continue  # rare now (sparse form), or no room
            tail = np.zeros(n_new - n_old, dtype=np.float32)
            if code in grow:
                new_rows, new_tfs = grow[code]
                at = np.array(new_rows, dtype=np.int64)
                tfs = np.minimum(np.array(new_tfs, dtype=np.int64), np.iinfo(TF).max)
                tfs = tfs.astype(TF).astype(np.float32)
                tail[at - n_old] = tfs / (tfs + self.norm[at])
            self._dense[code] = dense.append(n_old, tail)
            size += n_new
        object.__setattr__(self, "_weights_size", size)

    def scores(self, terms: Iterable[str]) -> tuple[np.ndarray | None, np.ndarray]:
        """float32 BM25 scores of the rows that have at least one of the terms: (rows
        ascending, their scores) when few rows match, else (None, dense scores over all
        rows with zeros where nothing matched).

        Every row's score is summed in query-term order, whichever way it is computed, and
        the way depends on the live documents only, so two indexes with the same content
        give bit-identical scores.
        """
        found = [parts for parts in map(self._parts, dict.fromkeys(terms)) if len(parts[0])]
        if not found:
            return _EMPTY_ROWS, _EMPTY_WEIGHTS
        if len(found) == 1 and len(found[0][1] if found[0][2] is None else found[0][2]) == len(
            found[0][0]
        ):
            rows, weights, g, scale = found[0]  # one term, sparse: its contributions are the scores
            if g is not None:
                weights = g * scale
                weights[self.removed] = 0  # dense: stale entries
            return rows, weights
        total = sum(len(parts[0]) for parts in found)
        if total * DENSE_SHARE < self.n_docs:
            rows, where = np.unique(np.concatenate([p[0] for p in found]), return_inverse=True)
            scores = np.zeros(len(rows), dtype=np.float32)
            # Adds in input order, i.e. term by term for each row, like the dense way.
            parts = [w if g is None else _sparse(r, g) * scale for r, w, g, scale in found]
            np.add.at(scores, where, np.concatenate(parts))
            if len(self.removed):
                scores[self.doc_len[rows] == 0] = 0  # a dense term's stale entries
            return rows, scores
        scores = np.zeros(self.n_rows, dtype=np.float32)
        spare: np.ndarray | None = None  # one buffer for every dense term's weights
        for rows, weights, g, scale in found:
            if g is not None:
                # Dense (zeros add nothing): g * scale, then added, as `weights` returns it.
                if spare is None:
                    spare = np.empty(self.n_rows, dtype=np.float32)
                np.multiply(g, scale, out=spare)
                scores += spare
            elif len(weights) == self.n_rows:
                scores += weights  # in every row, where positions are rows
            else:
                scores[rows] += weights  # rows are distinct within a term
        scores[self.removed] = 0  # a dense term's stale entries
        return None, scores

    def top(
        self, terms: Iterable[str], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `k` best (rows, scores) among rows matching a term; `allowed` (bool,
        n_rows) filters rows."""
        rows, scores = self.scores(terms)
        if not len(scores) or k <= 0:
            return _EMPTY_ROWS, _EMPTY_WEIGHTS
        if rows is not None:  # rows listed match, unless removed (score 0)
            keep = scores > 0
            if allowed is not None:
                keep &= allowed[rows]
            best = top_k(scores, k, None if keep.all() else np.flatnonzero(keep))
            return rows[best], scores[best]
        if allowed is not None:
            best = top_k(scores, k, np.flatnonzero(allowed & (scores > 0)))
        else:
            best = top_k(scores, k)
            best = best[scores[best] > 0]  # fewer than k rows matched
        return best, scores[best]

    # --- changes --------------------------------------------------------------------------

    def updated(
        self,
        removed: Sequence[tuple[int, Iterable[str]]],
        added: Sequence[tuple[int, Mapping[str, int]]],
        n_rows: int,
    ) -> BM25Index:
        """A copy without the `removed` rows (row, its terms) and with the `added` ones
        (row, term counts), grown to `n_rows`. Added rows must be new and ascending."""
        if n_rows < self.n_rows:
            raise ValueError("rows can only be added; compact to renumber them")
        drop: dict[int, list[int]] = {}
        gone: list[int] = []
        doc_len = np.zeros(n_rows, dtype=np.float32)
        doc_len[: self.n_rows] = self.doc_len
        n_docs, total_len = self.n_docs, self.total_len
        for row, terms in removed:
            distinct = dict.fromkeys(terms)
            if not distinct:
                continue  # a row without terms was never a document
            if not doc_len[row]:
                raise KeyError(f"row {row} is not in the index")
            for term in distinct:
                drop.setdefault(self.vocab[term], []).append(row)
            n_docs -= 1
            total_len -= int(doc_len[row])
            doc_len[row] = 0
            gone.append(row)
        grow: dict[int, tuple[list[int], list[int]]] = {}
        last = self.n_rows - 1
        vocab = self.vocab
        for row, counts in added:
            if row <= last:
                raise ValueError(f"row {row} is not new, or added rows are not ascending")
            last = row
            for term, tf in counts.items():
                code = vocab.get(term)
                if code is None:
                    # Appending to the shared vocabulary is safe: older copies see a code
                    # beyond their lists and find no postings for it.
                    code = vocab.setdefault(term, len(self.terms_by_code))
                    if code == len(self.terms_by_code):
                        self.terms_by_code.append(term)
                pair = grow.get(code)
                if pair is None:
                    grow[code] = pair = ([], [])
                pair[0].append(row)
                pair[1].append(tf)
            size = sum(counts.values())
            doc_len[row] = size
            n_docs += bool(size)
            total_len += size
        overrides = dict(self.overrides)
        for code in drop.keys() | grow.keys():
            found = self.overrides.get(code)
            if found is None:
                rows, tfs, df = self._postings(code)
                found = Postings(Buffer.of(rows, tfs), len(rows), df)
            n, df = found.n, found.df - len(drop.get(code, ()))
            buffer = found.buffer
            if code in grow:
                new_rows, new_tfs = grow[code]
                capped = np.minimum(np.array(new_tfs, dtype=np.int64), np.iinfo(TF).max)
                buffer = buffer.append(n, np.array(new_rows, dtype=ROW), capped.astype(TF))
                n += len(new_rows)
                df += len(new_rows)
            overrides[code] = Postings(buffer, n, df)
        index = BM25Index(
            self.vocab,
            self.terms_by_code,
            self.indptr,
            self.rows,
            self.tfs,
            overrides,
            doc_len,
            n_docs,
            total_len,
            np.concatenate([self.removed, np.array(gone, dtype=ROW)]) if gone else self.removed,
        )
        if len(overrides) > MAX_OVERRIDES:
            return index.compacted()  # a fold: the cache goes with the old lists
        index._carried(self, grow)
        return index

    def compacted(self, new_row: np.ndarray | None = None) -> BM25Index:
        """One CSR array again, without removed rows' postings or terms no row has any
        more. `new_row` (int, n_rows) renumbers rows; rows mapped to -1 must already be out
        of the index."""
        n_terms = len(self.terms_by_code)
        n_base = len(self.indptr) - 1
        lengths = np.zeros(n_terms, dtype=np.int64)
        lengths[:n_base] = np.diff(self.indptr)
        overridden = np.zeros(n_terms, dtype=bool)
        for code, found in self.overrides.items():
            lengths[code] = found.n
            overridden[code] = True
        starts = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        out_rows = np.empty(starts[-1], dtype=ROW)
        out_tfs = np.empty(starts[-1], dtype=TF)
        # Base postings of terms without an override keep their offset within the term.
        base_code = np.repeat(np.arange(n_base), np.diff(self.indptr))
        keep = ~overridden[base_code]
        offset = np.arange(len(self.rows)) - self.indptr[base_code]
        target = starts[base_code[keep]] + offset[keep]
        out_rows[target] = self.rows[keep]
        out_tfs[target] = self.tfs[keep]
        for code, found in self.overrides.items():
            start = starts[code]
            out_rows[start : start + found.n] = found.rows
            out_tfs[start : start + found.n] = found.tfs
        # Drop removed rows' postings (a removed row has no length), then empty terms.
        live = self.doc_len[out_rows] > 0
        codes = np.repeat(np.arange(n_terms), lengths)[live]
        out_rows, out_tfs = out_rows[live], out_tfs[live]
        counts = np.bincount(codes, minlength=n_terms)
        kept_codes = np.flatnonzero(counts)
        indptr = np.zeros(len(kept_codes) + 1, dtype=np.int64)
        np.cumsum(counts[kept_codes], out=indptr[1:])
        doc_len = self.doc_len
        if new_row is not None:
            out_rows = new_row[out_rows].astype(ROW)
            kept_rows = new_row >= 0
            doc_len = np.zeros(int(kept_rows.sum()), dtype=np.float32)
            doc_len[new_row[kept_rows]] = self.doc_len[kept_rows]
        terms = [self.terms_by_code[c] for c in kept_codes.tolist()]
        return BM25Index(
            {t: i for i, t in enumerate(terms)},
            terms,
            indptr,
            out_rows,
            out_tfs,
            {},
            doc_len,
            self.n_docs,
            self.total_len,
        )
