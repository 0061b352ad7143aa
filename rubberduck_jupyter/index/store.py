"""The index on disk and in memory: one DuckDB file with the indexed files, their chunks,
vectors and BM25 term counts, and an in-memory snapshot of it that searches read.

Blocking throughout: the server calls it from worker threads. Writes are serialized on
one connection; each write is one transaction holding the chunks with their vectors and
term counts, so a crash leaves every file whole, old or new, and there is nothing to
rebuild afterwards.

Searches rank in memory. The first one loads every chunk into an `IndexSnapshot` (ids,
path and kind codes, vectors, a BM25 inverted index); from then on each committed write
derives the next snapshot from the last one, in proportion to what it changed, and swaps it
in under a lock. A search holds the snapshot it started with, so it sees every write
committed before it and never half of one; it reads the texts and locations of the hits it
returns from DuckDB, in one query. Chunk ids are never reused, so a chunk read by id is the
one the snapshot ranked, or gone: then a write committed during the search, and the search
runs again on the newest snapshot (`consistent`).

Vectors (vectors.py): exact numpy search below `ann_threshold` chunks, a usearch HNSW graph
of int8 vectors above it, saved next to the database as `<db>.usearch` with the store's
identity and write version (meta `index_uid`, `write_version`, bumped by every write), so a
graph that missed a write or belongs to another index is rebuilt, never trusted. BM25 is
`bm25.BM25Index`. Path filters are globs on the relative POSIX path; see
`globs.glob_to_regex`.

Vectors live beside the chunks, one table per tier: `vectors` holds the store's embedder's
(meta `embedder_id`, fixed-size FLOAT[dim]), `static_vectors` a fast static embedder's
(meta `static_embedder_id`) for the chunks that have no `vectors` row yet. Progressive
indexing (indexer.py) writes chunks with static vectors (or none: BM25 alone) first and
then `add_vectors` moves each chunk to the first table, in one transaction per batch, so
every chunk is in one tier at most and a crash leaves the rest to `missing_full_ids`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np

from .bm25 import BM25Index, Tokenizer, chunk_term_counts, default_tokenizer
from .globs import glob_to_regex
from .snapshot import ChunkRows, IndexSnapshot, StaleSnapshot, empty_rows
from .types import Chunk, StoredChunk
from .vectors import AnnVectors, ExactVectors, StaticVectors, VectorSet, roomy_buffer

__all__ = [
    "SCHEMA_VERSION",
    "FileState",
    "IndexLockedError",
    "IndexStore",
    "StoredChunk",
    "glob_to_regex",
]

log = logging.getLogger(__name__)

# Bump when the tables change: an index is a cache, so an old one is cleared and rebuilt.
# 3: BM25 term counts per chunk replace DuckDB's full-text index.
# 4: meta holds index_uid and write_version, which stamp the saved ANN graph.
# 5: vectors per tier, apart from the chunks (progressive indexing): `vectors` for the
#    store's embedder, `static_vectors` for the static one; a chunk may have neither yet.
# 6: BM25 term counts weigh a code chunk's header fields (bm25.HEADER_TERM_WEIGHT) and a
#    method's header carries its class's summary (chunkers/code.py): files indexed by 5
#    are chunked and counted anew.
SCHEMA_VERSION = 6
# Left behind by schema 2 (DuckDB's FTS extension); dropped when such an index is cleared.
_LEGACY_FTS_SCHEMA = "fts_main_chunks"

# Above this many chunks, vector search uses the ANN graph (vectors.py): exact numpy search
# costs ~4 ms per 100k chunks and 1.5 KB each, the graph ~0.5 ms and ~0.6 KB at any size.
ANN_THRESHOLD = 50_000
# Rows read per query while loading vectors (bounds the copy DuckDB hands over at once).
LOAD_BATCH = 65_536
# A search that found its snapshot stale runs again; the last attempt holds the write lock.
SEARCH_ATTEMPTS = 3

T = TypeVar("T")

_CONFIG = {
    # No extension is needed; never fetch one from the network either.
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    # Without pandas, DuckDB retries `import pandas` for every sampled object while it
    # guesses a column's type (~140 ms per insert); our object columns are all strings.
    "pandas_analyze_sample": 0,
    # Tables are registered explicitly; never resolve a SQL name to a Python variable.
    "python_enable_replacements": False,
}


@dataclass(frozen=True, slots=True)
class FileState:
    path: str  # relative to the indexed root, POSIX separators
    content_hash: str
    mtime: float
    size: int
    n_chunks: int


class IndexLockedError(RuntimeError):
    """Another process holds the index file (DuckDB allows one read-write process)."""

    def __init__(self, db_path: Path, detail: str) -> None:
        self.db_path = db_path
        super().__init__(
            f"The index {db_path} is locked by another process; a running Jupyter server "
            f"probably holds it. Use that server, or stop it first. ({detail})"
        )


class IndexMismatchError(RuntimeError):
    """The index was built by another embedder (or schema) and the caller asked to keep it."""

    def __init__(self, db_path: Path, reason: str) -> None:
        self.db_path = db_path
        self.reason = reason
        super().__init__(
            f"The index {db_path} was built differently ({reason}). Search it with the "
            "embedder it was built with (--embedder), or rebuild it: jupyter rubberduck index"
        )


@dataclass(frozen=True, eq=False)
class _Batch:
    """A write's chunks, as DuckDB takes them in and as the snapshot takes them."""

    files: dict[str, np.ndarray]
    columns: dict[str, np.ndarray]
    vectors: np.ndarray  # float32 (n, dim of the tier)
    term_counts: list[dict[str, int]]
    tier: str  # "full" (the store's embedder), "static", or "none" (BM25 alone for now)

    def rows(self, ids: np.ndarray) -> ChunkRows:
        c = self.columns
        return ChunkRows(
            ids=ids,
            paths=c["path"],
            kinds=c["kind"],
            vectors=self.vectors if self.tier == "full" else None,
            static=self.vectors if self.tier == "static" else None,
        )


# Tiers a write may give its chunks' vectors in (see the module docstring).
TIERS = ("full", "static", "none")


_CHUNK_COLUMNS = "id, path, kind, text, start_line, end_line, cells, title, part, n_tokens"


class IndexStore:
    """One per index file and process: DuckDB hands every connection to a file in one
    process the same database, but the in-memory snapshot here is per object."""

    def __init__(
        self,
        db_path: Path,
        *,
        dim: int = 384,
        embedder_id: str = "",
        tokenizer: Tokenizer | None = None,
        clear_mismatch: bool = True,
        ann_threshold: int = ANN_THRESHOLD,
        ann_path: Path | None = None,
        static_embedder_id: str = "",
        static_dim: int = 0,
    ) -> None:
        """`clear_mismatch=False`: raise IndexMismatchError instead of clearing an index
        built with another embedder or schema (for read-only uses such as a CLI search).

        `ann_threshold`: from this many chunks on, vector search is approximate (HNSW);
        below it, exact. `ann_path`: where the graph is saved (default `<db>.usearch`).

        `static_embedder_id`, `static_dim`: the fast embedder of progressive indexing, whose
        vectors stand in for chunks the store's embedder has not reached; "" for none (the
        static vectors stored, if any, are then left out of searches). Another static
        embedder than the stored one drops the stored static vectors only.
        """
        self.db_path = Path(db_path)
        self.ann_threshold = ann_threshold
        self.ann_path = Path(ann_path or self.db_path.with_name(self.db_path.name + ".usearch"))
        self.index_uid = ""
        self.write_version = 0  # writes committed to this index since it was created
        self.ann_built: str | None = None  # how the graph was last made ready, for stats
        self.clear_mismatch = clear_mismatch
        self.dim = dim
        self.embedder_id = embedder_id
        self.static_embedder_id = static_embedder_id
        self.static_dim = static_dim if static_embedder_id else 0
        self.tokenizer = tokenizer or default_tokenizer()
        self.cleared_on_open: str | None = None  # why an existing index was cleared, if it was
        # Held by every write and by loading the snapshot, so a loaded snapshot always
        # matches the database and every later write is applied to it exactly once.
        self._write_lock = threading.RLock()
        self._snapshot_lock = threading.Lock()
        self._snapshot: IndexSnapshot | None = None
        self._vec_expr = "[" + ", ".join(f"v{j}" for j in range(dim)) + f"]::FLOAT[{dim}]"
        sdim = self.static_dim
        self._static_expr = "[" + ", ".join(f"v{j}" for j in range(sdim)) + "]::FLOAT[]"
        try:
            self._con: duckdb.DuckDBPyConnection | None = duckdb.connect(
                str(self.db_path), config=dict(_CONFIG)
            )
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise IndexLockedError(self.db_path, str(exc)) from exc
            raise
        try:
            self._open_schema()
        except BaseException:
            self._con.close()
            self._con = None
            raise

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        with self._write_lock:
            self._save_ann()
            if self._con is not None:
                self._con.close()
                self._con = None
            self._set_snapshot(None)

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _writer(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise RuntimeError(f"The index {self.db_path} is closed")
        return self._con

    @contextmanager
    def _reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cursor = self._writer().cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._write_lock:
            con = self._writer()
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                with suppress(duckdb.Error):  # keep the original error, not the rollback's
                    con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _open_schema(self) -> None:
        con = self._writer()
        tables = {
            row[0]
            for row in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'"
            ).fetchall()
        }
        if "meta" not in tables:
            reason = "new index" if not tables else "not an index of this version"
        else:
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            stored = (meta.get("schema_version"), meta.get("dim"), meta.get("embedder_id"))
            wanted = (str(SCHEMA_VERSION), str(self.dim), self.embedder_id)
            reason = None
            if stored != wanted:
                reason = (
                    f"schema {stored[0]}, dim {stored[1]}, embedder {stored[2]!r} -> "
                    f"schema {wanted[0]}, dim {wanted[1]}, embedder {wanted[2]!r}"
                )
        if reason is not None:
            if tables and not self.clear_mismatch:
                raise IndexMismatchError(self.db_path, reason)
            if tables:
                # Vectors from another model or size cannot be compared with new ones.
                log.info("Clearing the index %s: %s", self.db_path, reason)
                self.cleared_on_open = reason
            self._create_schema(con)
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        self.index_uid = meta["index_uid"]
        self.write_version = int(meta["write_version"])
        stored_static = meta.get("static_embedder_id", "")
        if self.static_embedder_id and stored_static != self.static_embedder_id:
            # Another static model's vectors: dropped; those chunks keep BM25 until the
            # store's own embedder reaches them.
            with self._transaction():
                con.execute("DELETE FROM static_vectors")
                con.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('static_embedder_id', ?)",
                    [self.static_embedder_id],
                )

    def _create_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        with self._transaction():
            con.execute(f"DROP SCHEMA IF EXISTS {_LEGACY_FTS_SCHEMA} CASCADE")
            con.execute("DROP TABLE IF EXISTS chunks")
            con.execute("DROP TABLE IF EXISTS vectors")
            con.execute("DROP TABLE IF EXISTS static_vectors")
            con.execute("DROP TABLE IF EXISTS files")
            con.execute("DROP TABLE IF EXISTS meta")
            con.execute("DROP SEQUENCE IF EXISTS chunk_ids")
            con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
            con.execute(
                "CREATE TABLE files (path VARCHAR PRIMARY KEY, content_hash VARCHAR NOT NULL, "
                "mtime DOUBLE NOT NULL, size BIGINT NOT NULL, n_chunks INTEGER NOT NULL, "
                "indexed_at TIMESTAMP WITH TIME ZONE DEFAULT current_timestamp)"
            )
            con.execute("CREATE SEQUENCE chunk_ids START 1")
            # No PRIMARY KEY on id (unique by construction): DuckDB rewrites a whole ART
            # index at every checkpoint, which made commits stall for seconds at 100k chunks.
            # Ids grow with insertion, so zone maps keep `WHERE id IN (...)` fast anyway.
            # bm25_terms/bm25_tfs: the chunk's distinct BM25 terms and how often each occurs.
            con.execute(
                "CREATE TABLE chunks (id BIGINT NOT NULL, path VARCHAR NOT NULL, "
                "kind VARCHAR NOT NULL, text VARCHAR NOT NULL, start_line INTEGER, "
                "end_line INTEGER, cells INTEGER[] NOT NULL, title VARCHAR, "
                "part INTEGER NOT NULL, n_tokens INTEGER NOT NULL, "
                "bm25_terms VARCHAR[] NOT NULL, bm25_tfs INTEGER[] NOT NULL)"
            )
            # One row per chunk that has the tier's vector; ids as in chunks.
            con.execute(
                f"CREATE TABLE vectors (id BIGINT NOT NULL, vec FLOAT[{self.dim}] NOT NULL)"
            )
            con.execute("CREATE TABLE static_vectors (id BIGINT NOT NULL, vec FLOAT[] NOT NULL)")
            con.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("dim", str(self.dim)),
                    ("embedder_id", self.embedder_id),
                    ("static_embedder_id", self.static_embedder_id),
                    # Names this index, so a graph file saved for another is never trusted.
                    ("index_uid", uuid.uuid4().hex),
                    ("write_version", "0"),
                ],
            )
            self._set_snapshot(None)

    # --- writes ---------------------------------------------------------------------------

    def replace_file(self, state: FileState, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        self.replace_files([(state, chunks, vectors)])

    def replace_files(
        self,
        items: Sequence[tuple[FileState, Sequence[Chunk], np.ndarray | None]],
        *,
        tier: str = "full",
    ) -> None:
        """Replace each file's chunks and vectors; the whole batch is one transaction, so a
        crash leaves every file either as it was or as given, never half-written.

        `vectors` are float32 (len(chunks), dim), rows L2-normalized by the caller, of the
        store's embedder (`tier="full"`) or the static one (`"static"`, static_dim); with
        `"none"` the chunks get no vectors yet (None), only BM25 terms.
        """
        if not items:
            return
        if tier not in TIERS or (tier == "static" and not self.static_dim):
            raise ValueError(f"tier {tier!r}: use one of {TIERS} (static needs static_dim)")
        batch = self._batch(items, tier)
        ids = np.zeros(0, dtype=np.int64)
        with self._write_lock:
            snapshot = self._snapshot
            removed: list[tuple[int, list[str]]] = []
            with self._transaction() as con:
                con.register("_new_files", batch.files)
                try:
                    removed = self._delete_chunks(con, "_new_files", snapshot is not None)
                    con.execute("DELETE FROM files WHERE path IN (SELECT path FROM _new_files)")
                    con.execute(
                        "INSERT INTO files (path, content_hash, mtime, size, n_chunks) "
                        "SELECT path, content_hash, mtime, size, n_chunks FROM _new_files"
                    )
                finally:
                    con.unregister("_new_files")
                self._bump_write_version(con)
                n = len(batch.term_counts)
                if n:
                    # Ids in chunk order, so `chunk_ids(path)` lists a file's chunks in order.
                    got = con.execute("SELECT nextval('chunk_ids') AS id FROM range(?)", [n])
                    ids = np.sort(np.asarray(got.fetchnumpy()["id"], dtype=np.int64))
                    con.register("_new_chunks", {"id": ids, **batch.columns})
                    try:
                        con.execute(
                            f"INSERT INTO chunks ({_CHUNK_COLUMNS}, bm25_terms, bm25_tfs) "
                            "SELECT id, path, kind, text, nullif(start_line, -1), "
                            "nullif(end_line, -1), "
                            "CASE WHEN cells = '' THEN []::INTEGER[] "
                            "ELSE string_split(cells, ',')::INTEGER[] END, "
                            "title::VARCHAR, part, n_tokens, "
                            "CASE WHEN terms = '' THEN []::VARCHAR[] "
                            "ELSE string_split(terms, ' ') END, "
                            "CASE WHEN tfs = '' THEN []::INTEGER[] "
                            "ELSE string_split(tfs, ' ')::INTEGER[] END "
                            "FROM _new_chunks"
                        )
                        if batch.tier == "full":
                            con.execute(
                                f"INSERT INTO vectors SELECT id, {self._vec_expr} FROM _new_chunks"
                            )
                        elif batch.tier == "static":
                            con.execute(
                                "INSERT INTO static_vectors "
                                f"SELECT id, {self._static_expr} FROM _new_chunks"
                            )
                    finally:
                        con.unregister("_new_chunks")
            # Committed; the write lock is still held, so no write can come between.
            self.write_version += 1
            self._advance(snapshot, removed, batch.rows(ids), batch.term_counts)

    def _batch(
        self, items: Sequence[tuple[FileState, Sequence[Chunk], np.ndarray | None]], tier: str
    ) -> _Batch:
        """Column arrays for DuckDB's numpy scan, which is ~1000x faster than executemany."""
        dim = {"full": self.dim, "static": self.static_dim, "none": 0}[tier]
        seen: set[str] = set()
        blocks: list[np.ndarray] = []
        chunks: list[Chunk] = []
        for state, file_chunks, vectors in items:
            if state.path in seen:
                raise ValueError(f"{state.path} appears twice in one batch")
            seen.add(state.path)
            if state.n_chunks != len(file_chunks):
                raise ValueError(
                    f"{state.path}: n_chunks is {state.n_chunks} but {len(file_chunks)} given"
                )
            if any(c.path != state.path for c in file_chunks):
                raise ValueError(f"{state.path}: a chunk belongs to another path")
            if tier == "none":
                block = np.zeros((len(file_chunks), 0), dtype=np.float32)
            else:
                block = np.asarray(vectors, dtype=np.float32)
            if block.shape != (len(file_chunks), dim):
                raise ValueError(
                    f"{state.path}: vectors have shape {block.shape}, "
                    f"expected ({len(file_chunks)}, {dim})"
                )
            blocks.append(block)
            chunks.extend(file_chunks)
        states = [state for state, _, _ in items]
        files = {
            "path": _strings(s.path for s in states),
            "content_hash": _strings(s.content_hash for s in states),
            "mtime": np.array([s.mtime for s in states], dtype=np.float64),
            "size": np.array([s.size for s in states], dtype=np.int64),
            "n_chunks": np.array([s.n_chunks for s in states], dtype=np.int64),
        }
        term_counts = [chunk_term_counts(self.tokenizer, c.kind, c.text) for c in chunks]
        # One float column per dimension: without pyarrow, this is how DuckDB takes in a
        # matrix fast (a column of per-row arrays is ~100x slower).
        matrix = np.concatenate(blocks) if blocks else np.zeros((0, dim), np.float32)
        by_dim = np.ascontiguousarray(matrix.T)
        columns: dict[str, np.ndarray] = {
            "path": _strings(c.path for c in chunks),
            "kind": _strings(str(c.kind) for c in chunks),
            "text": _strings(c.text for c in chunks),
            "start_line": _ints(c.start_line for c in chunks),
            "end_line": _ints(c.end_line for c in chunks),
            "cells": _strings(",".join(map(str, c.cells)) for c in chunks),
            "title": _strings(c.title for c in chunks),
            "part": _ints(c.part for c in chunks),
            "n_tokens": _ints(c.n_tokens for c in chunks),
            # Terms are letters and digits only, so a space separates them safely.
            "terms": _strings(" ".join(counts) for counts in term_counts),
            "tfs": _strings(" ".join(map(str, counts.values())) for counts in term_counts),
        }
        columns.update({f"v{j}": by_dim[j] for j in range(dim)})
        return _Batch(files, columns, matrix, term_counts, tier)

    def touch_files(self, states: Sequence[FileState]) -> None:
        """Record new mtimes and sizes of files whose content did not change, so the next
        pass skips them without reading them again."""
        if not states:
            return
        with self._transaction() as con:
            con.executemany(
                "UPDATE files SET mtime = ?, size = ? WHERE path = ?",
                [(s.mtime, s.size, s.path) for s in states],
            )

    def delete_files(self, paths: Iterable[str]) -> int:
        """Drop files and their chunks; returns how many of them were indexed."""
        wanted = _strings(sorted(set(paths)))
        if not len(wanted):
            return 0
        removed: list[tuple[int, list[str]]] = []
        with self._write_lock:
            snapshot = self._snapshot
            with self._transaction() as con:
                con.register("_gone", {"path": wanted})
                try:
                    row = con.execute(
                        "SELECT count(*) FROM files WHERE path IN (SELECT path FROM _gone)"
                    ).fetchone()
                    count = int(row[0]) if row else 0
                    if count:
                        removed = self._delete_chunks(con, "_gone", snapshot is not None)
                        con.execute("DELETE FROM files WHERE path IN (SELECT path FROM _gone)")
                        self._bump_write_version(con)
                finally:
                    con.unregister("_gone")
            # Committed; the write lock is still held, so no write can come between.
            if count:
                self.write_version += 1
            if removed:
                self._advance(snapshot, removed, empty_rows(self.dim), [])
        return count

    def add_vectors(self, ids: Sequence[int], vectors: np.ndarray) -> int:
        """The store's embedder's vectors for chunks written without one (progressive
        indexing's second tier), replacing their static vectors, in one transaction. Ids no
        longer stored (their file changed meanwhile) or already holding a vector are left
        out; returns how many were written."""
        wanted = np.asarray(ids, dtype=np.int64)
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(wanted), self.dim)
        if not len(wanted):
            return 0
        order = np.argsort(wanted, kind="stable")
        wanted, matrix = wanted[order], matrix[order]
        with self._write_lock:
            snapshot = self._snapshot
            with self._transaction() as con:
                columns: dict[str, np.ndarray] = {"id": wanted}
                by_dim = np.ascontiguousarray(matrix.T)
                columns.update({f"v{j}": by_dim[j] for j in range(self.dim)})
                con.register("_full", columns)
                try:
                    got = con.execute(
                        "SELECT f.id FROM _full f SEMI JOIN chunks c ON c.id = f.id "
                        "ANTI JOIN vectors v ON v.id = f.id ORDER BY f.id"
                    ).fetchnumpy()["id"]
                    kept = np.asarray(got, dtype=np.int64)
                    if len(kept):
                        con.register("_kept", {"id": kept})
                        try:
                            con.execute(
                                f"INSERT INTO vectors SELECT id, {self._vec_expr} FROM _full "
                                "WHERE id IN (SELECT id FROM _kept)"
                            )
                            con.execute(
                                "DELETE FROM static_vectors WHERE id IN (SELECT id FROM _kept)"
                            )
                        finally:
                            con.unregister("_kept")
                        self._bump_write_version(con)
                finally:
                    con.unregister("_full")
            if not len(kept):
                return 0
            self.write_version += 1
            if snapshot is not None:
                try:
                    rows = matrix[np.searchsorted(wanted, kept)]
                    self._set_snapshot(snapshot.with_full_vectors(kept, rows))
                except Exception:
                    log.exception("Could not update the in-memory index of %s", self.db_path)
                    self._set_snapshot(None)
        return len(kept)

    def missing_full_ids(self) -> np.ndarray:
        """Ids of the chunks without the store's embedder's vector, ascending: what
        progressive indexing's second tier (or a run after a crash) still has to embed."""
        with self._reader() as cur:
            n_chunks, n_vectors = cur.execute(
                "SELECT (SELECT count(*) FROM chunks), (SELECT count(*) FROM vectors)"
            ).fetchone() or (0, 0)
            if n_chunks == n_vectors:  # counts are cheap; the anti join scans both tables
                return np.zeros(0, dtype=np.int64)
            got = cur.execute(
                "SELECT c.id FROM chunks c ANTI JOIN vectors v ON v.id = c.id ORDER BY c.id"
            ).fetchnumpy()["id"]
        return np.asarray(got, dtype=np.int64)

    def tier_counts(self) -> dict[str, int]:
        """Chunks in all, and how many have the store's embedder's vector ("full") and how
        many only the static one ("static"); the rest have BM25 terms alone for now."""
        with self._reader() as cur:
            row = cur.execute(
                "SELECT (SELECT count(*) FROM chunks), (SELECT count(*) FROM vectors), "
                "(SELECT count(*) FROM static_vectors)"
            ).fetchone() or (0, 0, 0)
        static = int(row[2]) if self.static_embedder_id else 0
        return {"chunks": int(row[0]), "full": int(row[1]), "static": static}

    def _bump_write_version(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            "UPDATE meta SET value = ? WHERE key = 'write_version'", [str(self.write_version + 1)]
        )

    def _delete_chunks(
        self, con: duckdb.DuckDBPyConnection, paths: str, want_terms: bool
    ) -> list[tuple[int, list[str]]]:
        """Delete the chunks of the files in the registered table `paths`; with
        `want_terms`, return their (id, BM25 terms) for updating the snapshot."""
        where = f"WHERE path IN (SELECT path FROM {paths})"
        for table in ("vectors", "static_vectors"):
            con.execute(f"DELETE FROM {table} WHERE id IN (SELECT id FROM chunks {where})")
        if not want_terms:
            con.execute(f"DELETE FROM chunks {where}")
            return []
        rows = con.execute(f"DELETE FROM chunks {where} RETURNING id, bm25_terms").fetchall()
        return [(int(chunk_id), list(terms)) for chunk_id, terms in sorted(rows)]

    def _advance(
        self,
        snapshot: IndexSnapshot | None,
        removed: Sequence[tuple[int, Sequence[str]]],
        added: ChunkRows,
        term_counts: Sequence[Mapping[str, int]],
    ) -> None:
        """Apply a committed write to the loaded snapshot (a no-op when none is loaded)."""
        if snapshot is None:
            return
        try:
            following: IndexSnapshot | None = snapshot.with_changes(removed, added, term_counts)
            if (
                following is not None
                and isinstance(following.vectors, ExactVectors)
                and following.n_live >= self.ann_threshold
            ):
                # Crossed the threshold: one build from the vectors in memory (~seconds at
                # 50k), kept up to date from here on and saved on close.
                following = following.with_vectors(self._ann_of(following))
                self.ann_built = "built on crossing the threshold"
        except Exception:
            # Never serve a snapshot that may differ from the database: load it afresh.
            log.exception("Could not update the in-memory index of %s; reloading", self.db_path)
            following = None
        self._set_snapshot(following)

    def _set_snapshot(self, snapshot: IndexSnapshot | None) -> None:
        with self._snapshot_lock:
            self._snapshot = snapshot

    # --- reads ----------------------------------------------------------------------------

    def file_states(self) -> dict[str, FileState]:
        with self._reader() as cur:
            rows = cur.execute(
                "SELECT path, content_hash, mtime, size, n_chunks FROM files"
            ).fetchall()
        return {row[0]: FileState(*row) for row in rows}

    def chunk_ids(self, path: str) -> list[int]:
        """A file's chunk ids, in chunk order."""
        with self._reader() as cur:
            rows = cur.execute("SELECT id FROM chunks WHERE path = ? ORDER BY id", [path])
            return [int(row[0]) for row in rows.fetchall()]

    def chunks(self, ids: Sequence[int]) -> list[StoredChunk]:
        """The chunks with these ids, in the given order; ids no longer stored are left out."""
        if not ids:
            return []
        with self._reader() as cur:
            rows = cur.execute(_by_ids(_CHUNK_COLUMNS, ids)).fetchall()
        found = {
            row[0]: StoredChunk(
                id=row[0],
                path=row[1],
                kind=row[2],
                text=row[3],
                start_line=row[4],
                end_line=row[5],
                cells=tuple(row[6]),
                title=row[7],
                part=row[8],
                n_tokens=row[9],
            )
            for row in rows
        }
        return [found[i] for i in map(int, ids) if i in found]

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """float32 (len(ids), dim) in the given order; raises KeyError for an id without
        the store's embedder's vector (unknown, or not embedded yet)."""
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        by_id = self.full_vectors(ids)
        return np.stack([by_id[int(i)] for i in ids])

    def full_vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The store's embedder's vectors of those of these chunks that have one, by id."""
        if not ids:
            return {}
        with self._reader() as cur:
            got = cur.execute(_by_ids("id, vec", ids, table="vectors")).fetchnumpy()
        return {
            int(i): np.asarray(v, dtype=np.float32)
            for i, v in zip(got["id"].tolist(), got["vec"], strict=True)
        }

    def stats(self) -> dict[str, Any]:
        with self._reader() as cur:
            n_files, n_chunks, tokens = cur.execute(
                "SELECT (SELECT count(*) FROM files), count(*), coalesce(sum(n_tokens), 0) "
                "FROM chunks"
            ).fetchone() or (0, 0, 0)
            kinds = dict(cur.execute("SELECT kind, count(*) FROM chunks GROUP BY kind").fetchall())
        db_bytes = sum(
            p.stat().st_size
            for p in (self.db_path, self.db_path.with_name(self.db_path.name + ".wal"))
            if p.exists()
        )
        snapshot = self._snapshot
        return {
            "path": str(self.db_path),
            "files": int(n_files),
            "chunks": int(n_chunks),
            "tokens": int(tokens),
            "kinds": {str(k): int(v) for k, v in kinds.items()},
            "db_bytes": db_bytes,
            "in_memory": snapshot is not None,
            "memory_rows": snapshot.n if snapshot is not None else 0,
            "memory_dead_rows": snapshot.n_dead if snapshot is not None else 0,
            "memory_bytes": sum(snapshot.nbytes().values()) if snapshot is not None else 0,
            "vector_search": snapshot.vectors.kind if snapshot is not None else None,
            "ann_threshold": self.ann_threshold,
            "ann_built": self.ann_built,
            "write_version": self.write_version,
            "dim": self.dim,
            "embedder_id": self.embedder_id,
            "static_embedder_id": self.static_embedder_id,
            "tiers": self.tier_counts(),
            "schema_version": SCHEMA_VERSION,
            "cleared_on_open": self.cleared_on_open,
        }

    # --- the in-memory snapshot -----------------------------------------------------------

    def warm_up(self) -> None:
        """What the first search and the first write after opening would pay once, paid now
        (the server's warm-up thread): the snapshot loaded, and DuckDB's first bound
        parameter, which imports pandas when it is installed (~0.2-0.25 s at every process
        start: the first saved file after a start took 452 ms to write instead of ~90)."""
        self.snapshot()
        with self._reader() as cur:
            cur.execute("SELECT count(*) FROM meta WHERE key = ?", ["write_version"]).fetchone()

    def snapshot(self) -> IndexSnapshot:
        """Every committed chunk, in memory: loaded on first use, then kept up to date."""
        snapshot = self._snapshot
        if snapshot is not None:
            return snapshot
        with self._write_lock:  # one thread loads, and no write lands while it does
            if self._snapshot is None:
                self._set_snapshot(self._load_snapshot())
                self._release_duckdb_memory()
            snapshot = self._snapshot
        assert snapshot is not None
        return snapshot

    def _load_snapshot(self) -> IndexSnapshot:
        with self._reader() as cur:
            # Codes number the distinct paths and kinds in sorted order, as the names below.
            got = cur.execute(
                "SELECT id, (dense_rank() OVER (ORDER BY path) - 1)::INTEGER AS path_code, "
                "(dense_rank() OVER (ORDER BY kind) - 1)::SMALLINT AS kind_code "
                "FROM chunks ORDER BY id"
            ).fetchnumpy()
            path_names = cur.execute("SELECT DISTINCT path FROM chunks ORDER BY path").fetchall()
            kind_names = cur.execute("SELECT DISTINCT kind FROM chunks ORDER BY kind").fetchall()
            terms = cur.execute(
                "SELECT DISTINCT unnest(bm25_terms) AS term FROM chunks ORDER BY term"
            ).fetchnumpy()["term"]
            # Codes number the terms in the order above; rows number chunks by id. Narrow
            # types: at 1M chunks this hands over ~30M postings.
            postings = cur.execute(
                "WITH numbered AS (SELECT row_number() OVER (ORDER BY id) - 1 AS row, "
                "bm25_terms, bm25_tfs FROM chunks), "
                "flat AS (SELECT row, unnest(bm25_terms) AS term, unnest(bm25_tfs) AS tf "
                "FROM numbered) "
                "SELECT (dense_rank() OVER (ORDER BY term) - 1)::UINTEGER AS code, "
                "row::UINTEGER AS row, least(tf, 65535)::USMALLINT AS tf FROM flat "
                "ORDER BY code, row"
            ).fetchnumpy()
        ids = np.asarray(got["id"], dtype=np.int64)
        n = len(ids)
        counts = np.bincount(np.asarray(postings["code"], dtype=np.int64), minlength=len(terms))
        del postings["code"]
        indptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        bm25 = BM25Index.from_postings(
            terms.tolist(), indptr, postings["row"], postings["tf"], n_rows=n
        )
        covered = self._covered(ids)
        vectors: VectorSet = (
            self._load_ann(ids) if n >= self.ann_threshold else self._load_exact(ids)
        )
        return IndexSnapshot.build(
            ids,
            got["path_code"],
            [row[0] for row in path_names],
            got["kind_code"],
            [row[0] for row in kind_names],
            bm25,
            vectors,
            covered=covered,
            static=self._load_static(),
        )

    def _covered(self, ids: np.ndarray) -> np.ndarray | None:
        """Which chunks (rows of `ids`) have the store's embedder's vector; None: all."""
        missing = self.missing_full_ids()
        if not len(missing):
            return None
        covered = np.ones(len(ids), dtype=bool)
        covered[np.searchsorted(ids, missing)] = False
        return covered

    def _load_static(self) -> StaticVectors | None:
        if not self.static_embedder_id:
            return None
        with self._reader() as cur:
            got = cur.execute("SELECT id, vec FROM static_vectors ORDER BY id").fetchnumpy()
        if not len(got["id"]):
            return None
        matrix = np.stack(got["vec"]).astype(np.float32, copy=False)
        if matrix.shape[1] != self.static_dim:
            return None  # written by another static model of the same id: left out
        return StaticVectors.of(np.asarray(got["id"], dtype=np.int64), matrix, self.static_dim)

    def _release_duckdb_memory(self) -> None:
        """Hand back what DuckDB kept from loading: its buffers and allocator caches stay
        allocated after a query (~4 KB per chunk after a load, 5x the snapshot itself), and
        lowering the memory limit for a moment is what makes DuckDB free them."""
        con = self._writer()
        try:
            con.execute("SET memory_limit = '64MB'")
        except duckdb.Error:
            log.debug("Could not trim DuckDB's memory", exc_info=True)
        finally:
            con.execute("RESET memory_limit")  # _CONFIG leaves it at DuckDB's default

    def _vector_batches(self, ids: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, float32 vectors) of every chunk that has one, by id ranges of `ids`
        (the chunks'), which zone maps prune."""
        with self._reader() as cur:
            for start in range(0, len(ids), LOAD_BATCH):
                part = ids[start : start + LOAD_BATCH]
                got = cur.execute(
                    "SELECT id, vec FROM vectors WHERE id BETWEEN ? AND ? ORDER BY id",
                    [int(part[0]), int(part[-1])],
                ).fetchnumpy()
                if not len(got["id"]):
                    continue
                found = np.asarray(got["id"], dtype=np.int64)
                yield found, np.stack(got["vec"]).astype(np.float32, copy=False)

    def _load_exact(self, ids: np.ndarray) -> ExactVectors:
        n = len(ids)
        buffer = roomy_buffer(n, (self.dim,), np.float32)
        buffer[:n] = 0.0  # chunks without a vector yet keep a zero row (uncovered)
        for part, matrix in self._vector_batches(ids):
            buffer[np.searchsorted(ids, part)] = matrix
        return ExactVectors(buffer, n, self.dim)

    def _ann_stamp(self) -> dict[str, Any]:
        return {
            "index_uid": self.index_uid,
            "write_version": self.write_version,
            "dim": self.dim,
            "embedder_id": self.embedder_id,
        }

    def _load_ann(self, ids: np.ndarray) -> AnnVectors:
        """The saved graph if it matches this index exactly, else one built afresh."""
        ann, why = AnnVectors.load(self.ann_path, self._ann_stamp(), self.dim, self.full_vectors)
        if ann is not None:
            self.ann_built = "loaded"
            return ann
        log.info("Building the vector graph of %s (%s)", self.db_path, why)
        started = time.perf_counter()
        ann = self._new_ann()
        for part, matrix in self._vector_batches(ids):
            ann.add(part, matrix)
        self.ann_built = f"built ({why}) in {time.perf_counter() - started:.1f} s"
        self._save_ann(ann)
        return ann

    def _ann_of(self, snapshot: IndexSnapshot) -> AnnVectors:
        assert isinstance(snapshot.vectors, ExactVectors)
        live = snapshot.alive
        if snapshot.covered is not None:
            live = live & snapshot.covered
        ann = self._new_ann()
        ann.add(snapshot.ids[live], snapshot.vectors.matrix[live])
        return ann

    def _new_ann(self) -> AnnVectors:
        # With float32 lookups for the candidates int8 cannot rank (vectors.py).
        return AnnVectors(self.dim, precise=self.full_vectors)

    def _save_ann(self, ann: AnnVectors | None = None) -> None:
        """Save the graph if it changed since it was last saved (under the write lock, so
        the stamp's write version is the one the graph holds)."""
        if ann is None:
            snapshot = self._snapshot
            if snapshot is None or not isinstance(snapshot.vectors, AnnVectors):
                return
            ann = snapshot.vectors
        if ann.saved_version == ann.version:
            return
        try:
            ann.save(self.ann_path, self._ann_stamp())
        except OSError:
            # A cache: losing it costs a rebuild on the next load, never a wrong answer.
            log.exception("Could not save the vector graph %s", self.ann_path)

    def consistent(self, run: Callable[[IndexSnapshot], T]) -> T:
        """`run(snapshot)` on the newest snapshot; again on a newer one if it raised
        StaleSnapshot (a write committed while it ran), the last time under the write lock,
        where no write can interfere."""
        for _ in range(SEARCH_ATTEMPTS - 1):
            try:
                return run(self.snapshot())
            except StaleSnapshot:
                with self._write_lock:  # let the write in progress finish
                    pass
        with self._write_lock:
            return run(self.snapshot())

    # --- search ---------------------------------------------------------------------------

    def search_vector(
        self,
        query: np.ndarray,
        k: int,
        *,
        path_glob: str | None = None,
        kinds: Collection[str] | None = None,
    ) -> list[tuple[int, float]]:
        """Top-k by cosine similarity: (chunk id, similarity), best first. Exact below
        `ann_threshold` chunks, approximate above it (see vectors.py)."""

        def run(snapshot: IndexSnapshot) -> list[tuple[int, float]]:
            rows, scores = snapshot.search_vector(query, k, path_glob=path_glob, kinds=kinds)
            return _pairs(snapshot, rows, scores)

        return self.consistent(run)

    def search_bm25(
        self,
        query: str,
        k: int,
        *,
        path_glob: str | None = None,
        kinds: Collection[str] | None = None,
    ) -> list[tuple[int, float]]:
        """BM25 over chunk texts: (chunk id, score), best first. Any query string is safe."""
        terms = self.tokenizer.query_terms(query)
        if k <= 0 or not terms:
            return []
        snapshot = self.snapshot()
        rows, scores = snapshot.search_bm25(terms, k, path_glob=path_glob, kinds=kinds)
        return _pairs(snapshot, rows, scores)


def _pairs(
    snapshot: IndexSnapshot, rows: np.ndarray, scores: np.ndarray
) -> list[tuple[int, float]]:
    return list(zip(snapshot.ids[rows].tolist(), scores.tolist(), strict=True))


def _strings(values: Iterable[str | None]) -> np.ndarray:
    return np.array(list(values), dtype=object)


def _ints(values: Iterable[int | None]) -> np.ndarray:
    # -1 stands for NULL (lines are 1-based), turned back with nullif() in SQL.
    return np.array([-1 if v is None else v for v in values], dtype=np.int64)


# Up to this many ids, `_by_ids` looks each one up on its own; see there.
POINT_LOOKUPS = 64


def _by_ids(columns: str, ids: Sequence[int], table: str = "chunks") -> str:
    """SQL selecting `columns` of the chunks with these ids (any order).

    DuckDB plans `id IN (list)` as a join over every row, materializing each selected
    column of the whole table (10 random ids at 60k chunks: ~25 ms), and uses the list only
    to skip row groups outside its range. An equality is a real scan filter: only the
    vectors holding a match are read (~0.3 ms each). So a few ids are looked up one by one
    (a search's hits), and many (a file's chunks, with near ids) by their range plus the list.
    Each lookup stops at its row (`LIMIT 1`: ids are unique in every table read here) instead
    of scanning the rest of its row group: 10 texts at 1M chunks 7.0 -> 2.4 ms, 5 vectors
    4.0 -> 2.2 ms.
    """
    wanted = [int(i) for i in ids]  # int() rejects anything else: safe as literals
    if len(wanted) <= POINT_LOOKUPS:
        return " UNION ALL ".join(
            f"(SELECT {columns} FROM {table} WHERE id = {i} LIMIT 1)" for i in wanted
        )
    return (
        f"SELECT {columns} FROM {table} WHERE id BETWEEN {min(wanted)} AND {max(wanted)} "
        f"AND id IN ({_id_list(wanted)})"
    )


def _id_list(ids: Sequence[int]) -> str:
    # Literal integers (int() rejects anything else): cheaper than a list parameter.
    return ", ".join(str(int(i)) for i in ids)
