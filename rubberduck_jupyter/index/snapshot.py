"""The index in memory: every chunk's vector, location and text, and its BM25 index, as
one immutable snapshot that a search reads without a DuckDB round trip.

The store loads a snapshot once, then derives a new one from each committed write
(`with_changes`) and swaps it in: a search keeps the snapshot it started with, so it
never sees half a write. Deriving is cheap because rows are only appended: column
buffers keep spare room at their end, a new snapshot writes its rows there, and no
snapshot ever reads past its own length `n`, so older ones are undisturbed. Removed rows
stay as tombstones (`alive` False) until they are a quarter of all rows; then
`compacted` copies the live rows into new buffers.

Rows are in chunk-id order (ids only grow), so ties broken by row are broken by id.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .bm25 import BM25Index, top_k
from .globs import glob_to_regex
from .types import StoredChunk

# Compact once tombstones are this share of the rows (and at least MIN_DEAD_ROWS).
MAX_DEAD_SHARE = 0.25
MIN_DEAD_ROWS = 1024
# Row-aligned columns: ids and codes for lookups and filters, the chunks as ready objects
# (a search hands them out as they are), and the vectors.
_COLUMNS = ("ids", "path_codes", "kind_codes", "chunks", "vectors")


@dataclass(frozen=True, eq=False)
class ChunkRows:
    """Column arrays of chunks, ascending by id: what a write adds, or what a load reads."""

    ids: np.ndarray  # int64
    paths: Sequence[str]
    kinds: Sequence[str]
    texts: np.ndarray  # str objects
    start_lines: np.ndarray  # int32, -1 for none
    end_lines: np.ndarray  # int32, -1 for none
    cells: np.ndarray  # str objects: "3,4" for notebook cells, "" otherwise
    titles: np.ndarray  # str or None objects
    parts: np.ndarray  # int32
    n_tokens: np.ndarray  # int32
    vectors: np.ndarray  # float32 (n, dim), unit rows

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


def roomy_buffer(n: int, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An empty buffer for `n` rows and spare ones after them for later appends; fill
    `buffer[:n]` and pass that view as a column to skip a copy."""
    return np.empty((n + max(1024, n // 8), *shape), dtype=dtype)


def _with_room(values: np.ndarray) -> np.ndarray:
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


def _append(buf: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    """`buf[:n]` followed by `values`: in `buf`'s spare room when it has enough (rows
    below `n` are never written, so views of them stay valid), else in a new buffer."""
    end = n + len(values)
    if end > len(buf):
        grown = np.empty((end + max(1024, end // 4), *buf.shape[1:]), dtype=buf.dtype)
        grown[:n] = buf[:n]
        buf = grown
    buf[n:end] = values
    return buf


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
    dim: int
    version: int = 0  # counts the writes applied since the buffers were made
    # Shared by the snapshots that share buffers: the version of the newest one, the only
    # one allowed to append (an older one would write over rows the newest one reads).
    _newest: list[int] = field(default_factory=lambda: [0])
    # Filter masks by (glob, kinds), computed on first use: a snapshot serves many searches.
    _filters: dict[object, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    # --- building -------------------------------------------------------------------------

    @classmethod
    def build(cls, rows: ChunkRows, bm25: BM25Index, dim: int) -> IndexSnapshot:
        """From every stored chunk (a load); `bm25` must index the same rows."""
        if bm25.n_rows != len(rows):
            raise ValueError(f"BM25 has {bm25.n_rows} rows, the chunks {len(rows)}")
        if rows.vectors.shape != (len(rows), dim):
            raise ValueError(
                f"vectors of shape {rows.vectors.shape}, expected ({len(rows)}, {dim})"
            )
        if len(rows) and np.any(np.diff(rows.ids) <= 0):
            raise ValueError("chunks must be ascending by id")
        paths, kinds = Names(), Names()
        columns = cls._columns(rows, paths, kinds)
        return cls(
            n=len(rows),
            buffers={name: _with_room(values) for name, values in columns.items()},
            alive=np.ones(len(rows), dtype=bool),
            n_dead=0,
            paths=paths,
            n_paths=len(paths.names),
            kinds=kinds,
            n_kinds=len(kinds.names),
            bm25=bm25,
            dim=dim,
        )

    @classmethod
    def empty(cls, dim: int) -> IndexSnapshot:
        return cls.build(empty_rows(dim), BM25Index.empty(), dim)

    @staticmethod
    def _columns(rows: ChunkRows, paths: Names, kinds: Names) -> dict[str, np.ndarray]:
        ids = np.asarray(rows.ids, dtype=np.int64)
        path_codes = paths.codes_of(rows.paths)
        kind_codes = kinds.codes_of(rows.kinds)
        chunks = np.empty(len(ids), dtype=object)
        fields = zip(
            ids.tolist(),
            path_codes.tolist(),
            kind_codes.tolist(),
            list(rows.texts),
            np.asarray(rows.start_lines).tolist(),
            np.asarray(rows.end_lines).tolist(),
            list(rows.cells),
            list(rows.titles),
            np.asarray(rows.parts).tolist(),
            np.asarray(rows.n_tokens).tolist(),
            strict=True,
        )
        path_names, kind_names = paths.names, kinds.names
        for i, (chunk_id, path, kind, text, start, end, cells, title, part, n_tokens) in enumerate(
            fields
        ):
            chunks[i] = StoredChunk(
                id=chunk_id,
                path=path_names[path],  # one string object per path, shared
                kind=kind_names[kind],
                text=text,
                start_line=None if start < 0 else start,
                end_line=None if end < 0 else end,
                cells=tuple(map(int, cells.split(","))) if cells else (),
                title=title,
                part=part,
                n_tokens=n_tokens,
            )
        return {
            "ids": ids,
            "path_codes": path_codes,
            "kind_codes": kind_codes,
            "chunks": chunks,
            "vectors": np.asarray(rows.vectors, dtype=np.float32),
        }

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
        if added.vectors.shape[1:] != (self.dim,):
            raise ValueError(f"vectors of {added.vectors.shape[1:]}, expected ({self.dim},)")
        ids = self.ids
        if len(added) and (np.any(np.diff(added.ids) <= 0) or (self.n and added.ids[0] <= ids[-1])):
            raise ValueError("added chunks must have new ids, ascending")
        gone = self.rows_of(np.array([chunk_id for chunk_id, _ in removed], dtype=np.int64))
        if len(gone) != len(removed):
            raise KeyError("a removed chunk is not in the snapshot")
        n, end = self.n, self.n + len(added)
        columns = self._columns(added, self.paths, self.kinds)
        buffers = {name: _append(self.buffers[name], n, columns[name]) for name in _COLUMNS}
        alive = np.ones(end, dtype=bool)
        alive[:n] = self.alive
        alive[gone] = False
        bm25 = self.bm25.updated(
            [(int(row), terms) for row, (_, terms) in zip(gone, removed, strict=True)],
            [(n + i, counts) for i, counts in enumerate(added_terms)],
            end,
        )
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
            dim=self.dim,
            version=self.version + 1,
            _newest=self._newest,
        )
        self._newest[0] = snapshot.version
        if snapshot.n_dead >= max(MIN_DEAD_ROWS, MAX_DEAD_SHARE * end):
            return snapshot.compacted()
        return snapshot

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
        return IndexSnapshot(
            n=len(columns["ids"]),
            buffers={name: _with_room(values) for name, values in columns.items()},
            alive=np.ones(len(columns["ids"]), dtype=bool),
            n_dead=0,
            paths=paths,
            n_paths=len(paths.names),
            kinds=self.kinds,
            n_kinds=self.n_kinds,
            bm25=self.bm25.compacted(new_row),
            dim=self.dim,
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

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """The live rows of these chunk ids, in the given order; unknown ids left out."""
        all_ids = self.ids
        ids = np.asarray(ids, dtype=np.int64)
        if not len(all_ids) or not len(ids):
            return np.zeros(0, dtype=np.int64)
        rows = np.minimum(np.searchsorted(all_ids, ids), len(all_ids) - 1)
        found = (all_ids[rows] == ids) & self.alive[rows]
        return rows[found]

    def chunks(self, rows: Sequence[int] | np.ndarray) -> list[StoredChunk]:
        """The chunks at these rows, in order."""
        chunks: list[StoredChunk] = self.column("chunks")[np.asarray(rows, dtype=np.intp)].tolist()
        return chunks

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
        """Exact top-k by cosine similarity: (rows, similarities), best first."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape != (self.dim,):
            raise ValueError(f"query vector has {q.size} values, expected {self.dim}")
        norm = math.sqrt(float(q @ q))
        if k <= 0 or not math.isfinite(norm) or norm == 0.0 or not self.n_live:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = self.column("vectors") @ (q / np.float32(norm))
        allowed = self.filter(path_glob, kinds)
        if allowed is not None:
            best = top_k(scores, k, allowed[1])
        elif self.n_dead:
            scores[~self.alive] = -np.inf
            best = top_k(scores, min(k, self.n_live))
        else:
            best = top_k(scores, k)
        return best, scores[best]

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


def empty_rows(dim: int) -> ChunkRows:
    none = np.zeros(0, dtype=np.int32)
    return ChunkRows(
        ids=np.zeros(0, dtype=np.int64),
        paths=[],
        kinds=[],
        texts=np.zeros(0, dtype=object),
        start_lines=none,
        end_lines=none,
        cells=np.zeros(0, dtype=object),
        titles=np.zeros(0, dtype=object),
        parts=none,
        n_tokens=none,
        vectors=np.zeros((0, dim), dtype=np.float32),
    )
