"""The index in memory: for every chunk its id, path and kind as numbers, its vector (in a
`vectors.VectorSet`) and its BM25 postings, as one snapshot that a search reads without a
DuckDB round trip. Texts and locations stay in DuckDB: a search reads them for the ~10 hits
it returns, in one query (~1-2 ms), instead of holding ~0.6 KB per chunk of Python objects.

Per chunk: 8 B id, 4 B path code, 2 B kind code, 1 B alive, 8 B of BM25 row factors, the
postings (6 B each, ~30 per chunk in the synthetic benchmark) and the vector (1.5 KB float32
below the ANN threshold, ~0.65 KB int8 + graph above it).

The store loads a snapshot once, then derives a new one from each committed write
(`with_changes`) and swaps it in: a search keeps the snapshot it started with, so it never
sees half a write. Deriving is cheap because rows are only appended: column buffers keep
spare room at their end, a new snapshot writes its rows there, and no snapshot ever reads
past its own length `n`, so older ones are undisturbed. Removed rows stay as tombstones
(`alive` False) until they are a quarter of all rows; then `compacted` copies the live rows
into new buffers. An ANN vector set is the exception: it changes in place, and a search on
a snapshot it has moved past raises `StaleSnapshot` (see vectors.py).

Rows are in chunk-id order (ids only grow), so ties broken by row are broken by id.

Progressive indexing (indexer.py) writes chunks before their transformer vectors: then
`covered` marks the rows that have one (None: all rows do, the steady state, at no cost),
vector search ranks only those, and `static` holds the fast static embedder's vectors of
the others (vectors.StaticVectors), searched with that embedder's query vector. An exact
vector set keeps a zero row for an uncovered chunk; `with_full_vectors` writes the real one
into that row in place, which no snapshot reads: an older one has the row uncovered.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .bm25 import BM25Index
from .globs import glob_to_regex
from .vectors import (
    ExactVectors,
    Query,
    StaleSnapshot,
    StaticVectors,
    VectorSet,
    append,
    roomy_buffer,
    unit_query,
    with_room,
)

__all__ = [
    "ChunkRows",
    "IndexSnapshot",
    "Names",
    "StaleSnapshot",
    "empty_rows",
    "roomy_buffer",
]

# Compact once tombstones are this share of the rows (and at least MIN_DEAD_ROWS).
MAX_DEAD_SHARE = 0.25
MIN_DEAD_ROWS = 1024
# Row-aligned columns: ids, and codes for filters.
_COLUMNS = {"ids": np.int64, "path_codes": np.int32, "kind_codes": np.int16}


@dataclass(frozen=True, eq=False)
class ChunkRows:
    """Chunks a write adds, ascending by id."""

    ids: np.ndarray  # int64
    paths: Sequence[str]
    kinds: Sequence[str]
    vectors: np.ndarray | None  # float32 (n, dim), unit rows; None: not embedded yet
    static: np.ndarray | None = None  # the static tier's vectors of the same chunks, if any

    def __len__(self) -> int:
        return len(self.ids)


class Names:
    """Interned strings (paths, kinds) and their codes. Only ever appended to, so
    snapshots share one and each reads the first `n` names it knew."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names: list[str] = []
        self.codes: dict[str, int] = {}
        self.codes_of(list(names))

    def codes_of(self, values: Sequence[str]) -> np.ndarray:
        out = np.empty(len(values), dtype=np.int32)
        codes, names = self.codes, self.names
        for i, value in enumerate(values):
            code = codes.get(value)
            if code is None:
                code = codes[value] = len(names)
                names.append(value)
            out[i] = code
        return out


@dataclass(frozen=True, eq=False)
class IndexSnapshot:
    n: int  # rows in this snapshot, live or not; buffers may be longer
    buffers: Mapping[str, np.ndarray]  # the _COLUMNS, row-aligned
    alive: np.ndarray  # bool (n,)
    n_dead: int
    paths: Names
    n_paths: int
    kinds: Names
    n_kinds: int
    bm25: BM25Index
    vectors: VectorSet
    dim: int
    version: int = 0  # counts the writes applied since the buffers were made
    vectors_version: int = 0  # `vectors.version` when this snapshot was made
    # Rows that have a vector in `vectors` (bool (n,)); None: every row has one.
    covered: np.ndarray | None = None
    n_covered: int = -1  # live rows with a vector in `vectors` (-1: computed on build)
    # The static tier: vectors of live rows that have none in `vectors` yet, by chunk id.
    static: StaticVectors | None = None
    # Shared by the snapshots that share buffers: the version of the newest one, the only
    # one allowed to append (an older one would write over rows the newest one reads).
    _newest: list[int] = field(default_factory=lambda: [0])
    # Filter results by (glob, kinds), computed on first use: a snapshot serves many searches.
    _filters: dict[object, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    # --- building -------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        path_codes: np.ndarray,
        path_names: Sequence[str],
        kind_codes: np.ndarray,
        kind_names: Sequence[str],
        bm25: BM25Index,
        vectors: VectorSet,
        covered: np.ndarray | None = None,
        static: StaticVectors | None = None,
    ) -> IndexSnapshot:
        """From every stored chunk (a load): codes index the names; `bm25` must index the
        same rows and `vectors` hold the same chunks (rows for exact, ids for ANN), those
        `covered` marks if given (exact: zero rows for the others)."""
        n = len(ids)
        if bm25.n_rows != n:
            raise ValueError(f"BM25 has {bm25.n_rows} rows, the chunks {n}")
        if isinstance(vectors, ExactVectors) and vectors.n != n:
            raise ValueError(f"{vectors.n} vectors for {n} chunks")
        if n and np.any(np.diff(ids) <= 0):
            raise ValueError("chunks must be ascending by id")
        if len(kind_names) > np.iinfo(np.int16).max:
            raise ValueError("too many chunk kinds")
        columns = {
            "ids": np.asarray(ids, dtype=np.int64),
            "path_codes": np.asarray(path_codes, dtype=np.int32),
            "kind_codes": np.asarray(kind_codes, dtype=np.int16),
        }
        return cls(
            n=n,
            buffers={name: with_room(values) for name, values in columns.items()},
            alive=np.ones(n, dtype=bool),
            n_dead=0,
            paths=Names(path_names),
            n_paths=len(path_names),
            kinds=Names(kind_names),
            n_kinds=len(kind_names),
            bm25=bm25,
            vectors=vectors,
            dim=vectors.dim,
            vectors_version=vectors.version,
            covered=_covered_or_none(covered),
            n_covered=n if covered is None else int(covered.sum()),
            static=static if static is not None and len(static) else None,
        )

    @classmethod
    def empty(cls, dim: int) -> IndexSnapshot:
        none = np.zeros(0, dtype=np.int64)
        matrix = np.zeros((0, dim), np.float32)
        return cls.build(none, none, [], none, [], BM25Index.empty(), ExactVectors.of(matrix, dim))

    def with_changes(
        self,
        removed: Sequence[tuple[int, Sequence[str]]],
        added: ChunkRows,
        added_terms: Sequence[Mapping[str, int]],
    ) -> IndexSnapshot:
        """A new snapshot without the `removed` chunks (id, its BM25 terms) and with the
        `added` ones (their term counts in `added_terms`), whose ids must be new.

        Only the newest snapshot takes changes (the store applies each committed write to
        the newest one, under its write lock).
        """
        if self._newest[0] != self.version:
            raise RuntimeError("changes go to the newest snapshot only")
        if len(added_terms) != len(added):
            raise ValueError("one term count per added chunk")
        if added.vectors is not None and added.vectors.shape != (len(added), self.dim):
            raise ValueError(f"vectors of {added.vectors.shape}, expected ({self.dim},)")
        ids = self.ids
        if len(added) and (np.any(np.diff(added.ids) <= 0) or (self.n and added.ids[0] <= ids[-1])):
            raise ValueError("added chunks must have new ids, ascending")
        removed_ids = np.array([chunk_id for chunk_id, _ in removed], dtype=np.int64)
        gone = self.rows_of(removed_ids)
        if len(gone) != len(removed):
            raise KeyError("a removed chunk is not in the snapshot")
        n, end = self.n, self.n + len(added)
        columns = {
            "ids": np.asarray(added.ids, dtype=np.int64),
            "path_codes": self.paths.codes_of(added.paths),
            "kind_codes": self.kinds.codes_of(added.kinds).astype(np.int16),
        }
        buffers = {name: append(self.buffers[name], n, columns[name]) for name in _COLUMNS}
        alive = np.ones(end, dtype=bool)
        alive[:n] = self.alive
        alive[gone] = False
        bm25 = self.bm25.updated(
            [(int(row), terms) for row, (_, terms) in zip(gone, removed, strict=True)],
            [(n + i, counts) for i, counts in enumerate(added_terms)],
            end,
        )
        if added.vectors is not None:
            vectors = self.vectors.changed(removed_ids, columns["ids"], added.vectors)
        elif isinstance(self.vectors, ExactVectors):
            # Zero rows, uncovered, until the transformer's vectors are written into them.
            zeros = np.zeros((len(added), self.dim), dtype=np.float32)
            vectors = self.vectors.changed(removed_ids, columns["ids"], zeros)
        else:
            none = np.zeros((0, self.dim), dtype=np.float32)
            vectors = self.vectors.changed(removed_ids, columns["ids"][:0], none)
        covered = self.covered
        if covered is not None or (added.vectors is None and len(added)):
            covered = np.ones(end, dtype=bool)
            if self.covered is not None:
                covered[:n] = self.covered
            covered[n:] = added.vectors is not None
        n_covered = self.n_covered - int(
            len(gone) if self.covered is None else self.covered[gone].sum()
        )
        n_covered += len(added) if added.vectors is not None else 0
        static = self.static
        if static is not None or added.static is not None:
            static = static or StaticVectors.empty(added.static.shape[1])  # type: ignore[union-attr]
            new_ids = columns["ids"] if added.static is not None else columns["ids"][:0]
            new = added.static if added.static is not None else np.zeros((0, static.dim))
            static = static.changed(removed_ids, new_ids, new)
        snapshot = IndexSnapshot(
            n=end,
            buffers=buffers,
            alive=alive,
            n_dead=self.n_dead + len(gone),
            paths=self.paths,
            n_paths=len(self.paths.names),
            kinds=self.kinds,
            n_kinds=len(self.kinds.names),
            bm25=bm25,
            vectors=vectors,
            dim=self.dim,
            version=self.version + 1,
            vectors_version=vectors.version,
            _newest=self._newest,
            covered=_covered_or_none(covered, alive),
            n_covered=n_covered,
            static=static if static is not None and len(static) else None,
        )
        self._newest[0] = snapshot.version
        if snapshot.n_dead >= max(MIN_DEAD_ROWS, MAX_DEAD_SHARE * end):
            return snapshot.compacted()
        return snapshot

    def with_full_vectors(self, ids: np.ndarray, matrix: np.ndarray) -> IndexSnapshot:
        """The transformer's vectors of chunks that had none (their static ones dropped):
        every id must be a live row of this, the newest, snapshot without a vector."""
        if self._newest[0] != self.version:
            raise RuntimeError("changes go to the newest snapshot only")
        ids = np.asarray(ids, dtype=np.int64)
        rows = self.rows_of(ids)
        if len(rows) != len(ids):
            raise KeyError("a chunk given vectors is not in the snapshot")
        if self.covered is None or self.covered[rows].any():
            raise ValueError("a chunk given vectors already has one")
        matrix = np.asarray(matrix, dtype=np.float32).reshape(len(ids), self.dim)
        if isinstance(self.vectors, ExactVectors):
            vectors: VectorSet = self.vectors.filled(rows, matrix)
        else:
            vectors = self.vectors.changed(ids[:0], ids, matrix)
        covered = self.covered.copy()
        covered[rows] = True
        static = self.static
        if static is not None:
            static = static.changed(ids, ids[:0], np.zeros((0, static.dim), np.float32))
        snapshot = IndexSnapshot(
            n=self.n,
            buffers=self.buffers,
            alive=self.alive,
            n_dead=self.n_dead,
            paths=self.paths,
            n_paths=self.n_paths,
            kinds=self.kinds,
            n_kinds=self.n_kinds,
            bm25=self.bm25,
            vectors=vectors,
            dim=self.dim,
            version=self.version + 1,
            vectors_version=vectors.version,
            _newest=self._newest,
            covered=_covered_or_none(covered, self.alive),
            n_covered=self.n_covered + len(ids),
            static=static if static is not None and len(static) else None,
        )
        self._newest[0] = snapshot.version
        return snapshot

    def with_vectors(self, vectors: VectorSet) -> IndexSnapshot:
        """The same chunks with another vector set holding them (exact -> ANN)."""
        kept = self.compacted() if self.n_dead else self
        return IndexSnapshot(
            n=kept.n,
            buffers=kept.buffers,
            alive=kept.alive,
            n_dead=kept.n_dead,
            paths=kept.paths,
            n_paths=kept.n_paths,
            kinds=kept.kinds,
            n_kinds=kept.n_kinds,
            bm25=kept.bm25,
            vectors=vectors,
            dim=kept.dim,
            version=kept.version,
            vectors_version=vectors.version,
            _newest=kept._newest,
            covered=kept.covered,
            n_covered=kept.n_covered,
            static=kept.static,
        )

    def compacted(self) -> IndexSnapshot:
        """The same chunks in new buffers, without tombstones or unused paths."""
        keep = self.alive
        new_row = np.full(self.n, -1, dtype=np.int64)
        new_row[keep] = np.arange(int(keep.sum()))
        columns = {name: self.buffers[name][: self.n][keep] for name in _COLUMNS}
        used = np.unique(columns["path_codes"])
        paths = Names(self.paths.names[c] for c in used.tolist())
        renumber = np.zeros(self.n_paths, dtype=np.int32)
        renumber[used] = np.arange(len(used), dtype=np.int32)
        columns["path_codes"] = renumber[columns["path_codes"]]
        vectors = self.vectors.compacted(keep)
        return IndexSnapshot(
            n=len(columns["ids"]),
            buffers={name: with_room(values) for name, values in columns.items()},
            alive=np.ones(len(columns["ids"]), dtype=bool),
            n_dead=0,
            paths=paths,
            n_paths=len(paths.names),
            kinds=self.kinds,
            n_kinds=self.n_kinds,
            bm25=self.bm25.compacted(new_row),
            vectors=vectors,
            dim=self.dim,
            vectors_version=vectors.version,
            covered=None if self.covered is None else self.covered[: self.n][keep],
            n_covered=self.n_covered,
            static=self.static,
        )

    # --- reads ----------------------------------------------------------------------------

    def column(self, name: str) -> np.ndarray:
        return self.buffers[name][: self.n]

    @property
    def ids(self) -> np.ndarray:
        return self.column("ids")

    @property
    def n_live(self) -> int:
        return self.n - self.n_dead

    @property
    def stale(self) -> bool:
        """True once a later write changed the vector set this snapshot reads."""
        return self.vectors.version != self.vectors_version

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """The live rows of these chunk ids, in the given order; unknown ids left out."""
        all_ids = self.ids
        ids = np.asarray(ids, dtype=np.int64)
        if not len(all_ids) or not len(ids):
            return np.zeros(0, dtype=np.int64)
        rows = np.minimum(np.searchsorted(all_ids, ids), len(all_ids) - 1)
        found = (all_ids[rows] == ids) & self.alive[rows]
        return rows[found]

    def path_of(self, rows: np.ndarray) -> list[str]:
        names = self.paths.names
        return [names[c] for c in self.column("path_codes")[rows].tolist()]

    def nbytes(self) -> dict[str, int]:
        """Bytes held per part (what this snapshot reads; buffers' spare room left out)."""
        bm25 = self.bm25
        postings = bm25.rows.nbytes + bm25.tfs.nbytes + bm25.indptr.nbytes
        buffers = {id(p.buffer): p.buffer for p in bm25.overrides.values()}
        postings += sum(b.rows.nbytes + b.tfs.nbytes for b in buffers.values())
        return {
            "vectors": self.vectors.nbytes,
            "static vectors": self.static.nbytes if self.static is not None else 0,
            "postings": postings,
            "bm25 rows": bm25.doc_len.nbytes + bm25.norm.nbytes,
            "bm25 cache": bm25.cached_bytes,
            "columns": sum(self.column(name).nbytes for name in _COLUMNS) + self.alive.nbytes,
        }

    def filter(
        self, path_glob: str | None, kinds: Collection[str] | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(mask, rows) of the live rows that pass the filters; None without filters."""
        if not path_glob and not kinds:
            return None
        key = (path_glob or None, frozenset(map(str, kinds)) if kinds else None)
        found = self._filters.get(key)
        if found is not None:
            return found
        mask = self.alive.copy()
        if path_glob:
            regex = glob_to_regex(path_glob)
            names = self.paths.names[: self.n_paths]
            ok = np.fromiter((regex.fullmatch(p) is not None for p in names), bool, len(names))
            mask &= ok[self.column("path_codes")]
        if kinds:
            wanted = {str(k) for k in kinds}
            names = self.kinds.names[: self.n_kinds]
            ok = np.fromiter((k in wanted for k in names), bool, len(names))
            mask &= ok[self.column("kind_codes")]
        found = (mask, np.flatnonzero(mask))
        if len(self._filters) >= 32:
            self._filters.clear()
        self._filters[key] = found
        return found

    def search_vector(
        self,
        query: np.ndarray,
        k: int,
        *,
        path_glob: str | None = None,
        kinds: Collection[str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by cosine similarity: (rows, similarities), best first. Exact below the
        store's ANN threshold; above it, approximate with float32 rescoring. Raises
        StaleSnapshot if a later write moved the vector set (search the newest snapshot)."""
        q = unit_query(query, self.dim)
        if k <= 0 or q is None or not self.n_live or self.stale:
            if self.stale:
                raise StaleSnapshot()
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if not self.n_covered:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        allowed = self.filter(path_glob, kinds)
        if self.covered is not None:
            # Only the rows this embedder's vectors cover: the others have none (or a zero
            # row), and the static tier's are another model's (search_static).
            mask = (self.alive if allowed is None else allowed[0]) & self.covered
            allowed = (mask, np.flatnonzero(mask))
        where = Query(
            self.ids,
            self.alive,
            self.n_live,
            None if allowed is None else allowed[1],
            None if allowed is None else allowed[0],
        )
        rows, scores = self.vectors.search(q, k, where)
        if self.stale:
            raise StaleSnapshot()
        return rows, scores

    def search_static(
        self,
        query: np.ndarray,
        k: int,
        *,
        path_glob: str | None = None,
        kinds: Collection[str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of the static tier (chunks without a transformer vector yet) by cosine
        similarity to `query`, which the static embedder made: (rows, similarities)."""
        static = self.static
        if static is None or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        q = unit_query(query, static.dim)
        if q is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        allowed = self.filter(path_glob, kinds)
        where = Query(
            self.ids, self.alive, self.n_live, None, None if allowed is None else allowed[0]
        )
        return static.search(q, k, where)

    def search_bm25(
        self,
        terms: Sequence[str],
        k: int,
        *,
        path_glob: str | None = None,
        kinds: Collection[str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """BM25 top-k over the given (already analysed) terms: (rows, scores), best first."""
        if k <= 0 or not terms:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        allowed = self.filter(path_glob, kinds)
        # Removed rows have no postings left, so only filters need a mask.
        return self.bm25.top(terms, k, None if allowed is None else allowed[0])


def _covered_or_none(
    covered: np.ndarray | None, alive: np.ndarray | None = None
) -> np.ndarray | None:
    """None when every live row is covered: the steady state costs no mask."""
    if covered is None:
        return None
    if alive is None:
        return None if covered.all() else covered
    return None if bool(np.all(covered | ~alive)) else covered


def empty_rows(dim: int) -> ChunkRows:
    return ChunkRows(
        ids=np.zeros(0, dtype=np.int64),
        paths=[],
        kinds=[],
        vectors=np.zeros((0, dim), dtype=np.float32),
    )
