"""The index on disk and in memory: one DuckDB file with the indexed files, their chunks,
vectors and BM25 term counts, and an in-memory snapshot of it that searches read.

Blocking throughout: the server calls it from worker threads. Writes are serialized on
one connection; each write is one transaction holding the chunks with their vectors and
term counts, so a crash leaves every file whole, old or new, and there is nothing to
rebuild afterwards.

Searches never touch DuckDB. The first one loads every chunk into an `IndexSnapshot`
(vectors, locations, texts, a BM25 inverted index; ~3 s per 100k chunks); from then on
each committed write derives the next snapshot from the last one, in proportion to what it
changed, and swaps it in under a lock. A search holds the snapshot it started with, so it
sees every write committed before it and never half of one.

Vector search is exact (numpy over all vectors, ~10x faster than DuckDB's
array_cosine_distance); BM25 is `bm25.BM25Index`. Path filters are globs on the relative
POSIX path; see `globs.glob_to_regex`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from .bm25 import BM25Index, Tokenizer, default_tokenizer
from .globs import glob_to_regex
from .snapshot import ChunkRows, IndexSnapshot, empty_rows, roomy_buffer
from .types import Chunk, StoredChunk

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
SCHEMA_VERSION = 3
# Left behind by schema 2 (DuckDB's FTS extension); dropped when such an index is cleared.
_LEGACY_FTS_SCHEMA = "fts_main_chunks"

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
    vectors: np.ndarray  # float32 (n, dim)
    term_counts: list[dict[str, int]]

    def rows(self, ids: np.ndarray) -> ChunkRows:
        c = self.columns
        return ChunkRows(
            ids=ids,
            paths=c["path"],
            kinds=c["kind"],
            texts=c["text"],
            start_lines=c["start_line"],
            end_lines=c["end_line"],
            cells=c["cells"],
            titles=c["title"],
            parts=c["part"],
            n_tokens=c["n_tokens"],
            vectors=self.vectors,
        )


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
    ) -> None:
        """`clear_mismatch=False`: raise IndexMismatchError instead of clearing an index
        built with another embedder or schema (for read-only uses such as a CLI search)."""
        self.db_path = Path(db_path)
        self.clear_mismatch = clear_mismatch
        self.dim = dim
        self.embedder_id = embedder_id
        self.tokenizer = tokenizer or default_tokenizer()
        self.cleared_on_open: str | None = None  # why an existing index was cleared, if it was
        # Held by every write and by loading the snapshot, so a loaded snapshot always
        # matches the database and every later write is applied to it exactly once.
        self._write_lock = threading.RLock()
        self._snapshot_lock = threading.Lock()
        self._snapshot: IndexSnapshot | None = None
        self._vec_expr = "[" + ", ".join(f"v{j}" for j in range(dim)) + f"]::FLOAT[{dim}]"
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

    def _create_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        with self._transaction():
            con.execute(f"DROP SCHEMA IF EXISTS {_LEGACY_FTS_SCHEMA} CASCADE")
            con.execute("DROP TABLE IF EXISTS chunks")
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
                f"vec FLOAT[{self.dim}] NOT NULL, "
                "bm25_terms VARCHAR[] NOT NULL, bm25_tfs INTEGER[] NOT NULL)"
            )
            con.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("dim", str(self.dim)),
                    ("embedder_id", self.embedder_id),
                ],
            )
            self._set_snapshot(None)

    # --- writes ---------------------------------------------------------------------------

    def replace_file(self, state: FileState, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        self.replace_files([(state, chunks, vectors)])

    def replace_files(self, items: Sequence[tuple[FileState, Sequence[Chunk], np.ndarray]]) -> None:
        """Replace each file's chunks and vectors; the whole batch is one transaction, so a
        crash leaves every file either as it was or as given, never half-written.

        `vectors` are float32 (len(chunks), dim), rows L2-normalized by the caller.
        """
        if not items:
            return
        batch = self._batch(items)
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
                n = len(batch.term_counts)
                if n:
                    # Ids in chunk order, so `chunk_ids(path)` lists a file's chunks in order.
                    got = con.execute("SELECT nextval('chunk_ids') AS id FROM range(?)", [n])
                    ids = np.sort(np.asarray(got.fetchnumpy()["id"], dtype=np.int64))
                    con.register("_new_chunks", {"id": ids, **batch.columns})
                    try:
                        con.execute(
                            f"INSERT INTO chunks ({_CHUNK_COLUMNS}, vec, bm25_terms, bm25_tfs) "
                            "SELECT id, path, kind, text, nullif(start_line, -1), "
                            "nullif(end_line, -1), "
                            "CASE WHEN cells = '' THEN []::INTEGER[] "
                            "ELSE string_split(cells, ',')::INTEGER[] END, "
                            f"title::VARCHAR, part, n_tokens, {self._vec_expr}, "
                            "CASE WHEN terms = '' THEN []::VARCHAR[] "
                            "ELSE string_split(terms, ' ') END, "
                            "CASE WHEN tfs = '' THEN []::INTEGER[] "
                            "ELSE string_split(tfs, ' ')::INTEGER[] END "
                            "FROM _new_chunks"
                        )
                    finally:
                        con.unregister("_new_chunks")
            # Committed; the write lock is still held, so no write can come between.
            self._advance(snapshot, removed, batch.rows(ids), batch.term_counts)

    def _batch(self, items: Sequence[tuple[FileState, Sequence[Chunk], np.ndarray]]) -> _Batch:
        """Column arrays for DuckDB's numpy scan, which is ~1000x faster than executemany."""
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
            block = np.asarray(vectors, dtype=np.float32)
            if block.shape != (len(file_chunks), self.dim):
                raise ValueError(
                    f"{state.path}: vectors have shape {block.shape}, "
                    f"expected ({len(file_chunks)}, {self.dim})"
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
        term_counts = [self.tokenizer.term_counts(c.text) for c in chunks]
        # One float column per dimension: without pyarrow, this is how DuckDB takes in a
        # matrix fast (a column of per-row arrays is ~100x slower).
        matrix = np.concatenate(blocks) if blocks else np.zeros((0, self.dim), np.float32)
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
        columns.update({f"v{j}": by_dim[j] for j in range(self.dim)})
        return _Batch(files, columns, matrix, term_counts)

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
                finally:
                    con.unregister("_gone")
            # Committed; the write lock is still held, so no write can come between.
            if removed:
                self._advance(snapshot, removed, empty_rows(self.dim), [])
        return count

    def _delete_chunks(
        self, con: duckdb.DuckDBPyConnection, paths: str, want_terms: bool
    ) -> list[tuple[int, list[str]]]:
        """Delete the chunks of the files in the registered table `paths`; with
        `want_terms`, return their (id, BM25 terms) for updating the snapshot."""
        where = f"WHERE path IN (SELECT path FROM {paths})"
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
            rows = cur.execute(
                f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id IN ({_id_list(ids)})"
            ).fetchall()
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
        """float32 (len(ids), dim) in the given order; raises KeyError for an unknown id."""
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._reader() as cur:
            got = cur.execute(
                f"SELECT id, vec FROM chunks WHERE id IN ({_id_list(ids)})"
            ).fetchnumpy()
        by_id = dict(zip(got["id"].tolist(), got["vec"], strict=True))
        return np.stack([np.asarray(by_id[int(i)], dtype=np.float32) for i in ids])

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
            "dim": self.dim,
            "embedder_id": self.embedder_id,
            "schema_version": SCHEMA_VERSION,
            "cleared_on_open": self.cleared_on_open,
        }

    # --- the in-memory snapshot -----------------------------------------------------------

    def snapshot(self) -> IndexSnapshot:
        """Every committed chunk, in memory: loaded on first use, then kept up to date."""
        snapshot = self._snapshot
        if snapshot is not None:
            return snapshot
        with self._write_lock:  # one thread loads, and no write lands while it does
            if self._snapshot is None:
                self._set_snapshot(self._load_snapshot())
            snapshot = self._snapshot
        assert snapshot is not None
        return snapshot

    def _load_snapshot(self) -> IndexSnapshot:
        with self._reader() as cur:
            got = cur.execute(
                "SELECT id, path, kind, text, coalesce(start_line, -1) AS start_line, "
                "coalesce(end_line, -1) AS end_line, array_to_string(cells, ',') AS cells, "
                "title, part, n_tokens, vec FROM chunks ORDER BY id"
            ).fetchnumpy()
            terms = cur.execute(
                "SELECT DISTINCT unnest(bm25_terms) AS term FROM chunks ORDER BY term"
            ).fetchnumpy()["term"]
            # Codes number the terms in the order above; rows number chunks by id.
            postings = cur.execute(
                "WITH numbered AS (SELECT row_number() OVER (ORDER BY id) - 1 AS row, "
                "bm25_terms, bm25_tfs FROM chunks), "
                "flat AS (SELECT row, unnest(bm25_terms) AS term, unnest(bm25_tfs) AS tf "
                "FROM numbered) "
                "SELECT dense_rank() OVER (ORDER BY term) - 1 AS code, row, tf FROM flat "
                "ORDER BY code, row"
            ).fetchnumpy()
        n = len(got["id"])
        titles = np.ma.getdata(got["title"]).astype(object)
        titles[np.ma.getmaskarray(got["title"])] = None
        vectors = roomy_buffer(n, (self.dim,), np.float32)[:n]
        if n:
            np.stack(got["vec"], out=vectors)
        rows = ChunkRows(
            ids=np.asarray(got["id"], dtype=np.int64),
            paths=got["path"].tolist(),
            kinds=got["kind"].tolist(),
            texts=got["text"],
            start_lines=got["start_line"],
            end_lines=got["end_line"],
            cells=got["cells"],
            titles=titles,
            parts=got["part"],
            n_tokens=got["n_tokens"],
            vectors=vectors,
        )
        counts = np.bincount(np.asarray(postings["code"], dtype=np.int64), minlength=len(terms))
        indptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        bm25 = BM25Index.from_postings(
            terms.tolist(), indptr, postings["row"], postings["tf"], n_rows=n
        )
        return IndexSnapshot.build(rows, bm25, self.dim)

    # --- search ---------------------------------------------------------------------------

    def search_vector(
        self,
        query: np.ndarray,
        k: int,
        *,
        path_glob: str | None = None,
        kinds: Collection[str] | None = None,
    ) -> list[tuple[int, float]]:
        """Exact top-k by cosine similarity: (chunk id, similarity), best first."""
        snapshot = self.snapshot()
        rows, scores = snapshot.search_vector(query, k, path_glob=path_glob, kinds=kinds)
        return _pairs(snapshot, rows, scores)

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


def _id_list(ids: Sequence[int]) -> str:
    # Literal integers (int() rejects anything else): cheaper than a list parameter.
    return ", ".join(str(int(i)) for i in ids)
