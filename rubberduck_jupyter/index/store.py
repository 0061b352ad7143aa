"""The index on disk: one DuckDB file with the indexed files, their chunks and vectors, and
a BM25 (full-text) index over the chunk texts.

Blocking throughout: the server calls it from worker threads. Writes and FTS rebuilds are
serialized on one connection; reads each take their own cursor, so a search does not wait
for an indexing batch to commit (DuckDB gives every cursor a consistent snapshot).

Vector search runs in numpy over a cached matrix of all vectors: exact, and ~10x faster
than DuckDB's array_cosine_distance. Any write drops the cache; the next search reloads it.

The BM25 index is a snapshot DuckDB builds in one go. Writes mark it stale (persistently, in
the same transaction), `rebuild_fts()` refreshes it, and a BM25 search on a stale index
rebuilds it first, so BM25 results always reflect every committed write. The indexer calls
`rebuild_fts()` once at the end of a pass, so searches normally never pay for it; during a
pass, `allow_stale=True` searches the last snapshot instead of rebuilding after every batch.

Path filters are globs on the relative POSIX path; see `glob_to_regex`.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from .types import Chunk

log = logging.getLogger(__name__)

# Bump when the tables change: an index is a cache, so an old one is cleared and rebuilt.
SCHEMA_VERSION = 2
FTS_SCHEMA = "fts_main_chunks"
# Letters and digits of any script make terms; `read_csv` is two terms, `float32` one.
# No stopwords: DuckDB's English list drops mean, value, name, get, try, else, none, first...
# which are exactly what code is searched for; BM25's IDF already discounts common words.
FTS_OPTIONS = (
    "stemmer='porter', stopwords='none', ignore='[^\\p{L}\\p{N}]+', "
    "strip_accents=1, lower=1, overwrite=1"
)
# More terms than this in a query only slow BM25 down without changing the top hits much.
MAX_QUERY_TERMS = 64

_CONFIG = {
    # Extensions come from the pinned duckdb-extension-* wheels, never from the network.
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


@dataclass(frozen=True, slots=True)
class StoredChunk:
    id: int
    path: str
    kind: str
    text: str
    start_line: int | None
    end_line: int | None
    cells: tuple[int, ...]
    title: str | None
    part: int
    n_tokens: int

    @property
    def cell(self) -> int | None:
        return self.cells[0] if self.cells else None


class IndexLockedError(RuntimeError):
    """Another process holds the index file (DuckDB allows one read-write process)."""

    def __init__(self, db_path: Path, detail: str) -> None:
        self.db_path = db_path
        super().__init__(
            f"The index {db_path} is locked by another process; a running Jupyter server "
            f"probably holds it. Use that server, or stop it first. ({detail})"
        )


@functools.lru_cache(maxsize=256)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a path glob, matched against the whole relative POSIX path.

    `*` and `?` stay inside one path segment, `[abc]`/`[!abc]` are character classes, and
    `**` crosses segments: `notebooks/**` is everything under notebooks/, `**/x.py` is
    x.py in any folder including the top, `src/**/*.py` is every .py under src/.
    A pattern without `/` matches the file name in any folder (`*.ipynb` is every
    notebook), like .gitignore and `rg -g`. A trailing `/` means everything under it.
    Matching is case-sensitive. Leading `./` or `/` is ignored.
    """
    pat = pattern.strip()
    while pat.startswith("./"):
        pat = pat[2:]
    pat = pat.lstrip("/")
    if pat.endswith("/"):
        pat += "**"
    if not pat:
        raise ValueError("empty path glob")
    out: list[str] = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if c == "*":
            j = i
            while j < n and pat[j] == "*":
                j += 1
            if j - i == 1:
                out.append("[^/]*")
            elif (i == 0 or pat[i - 1] == "/") and j < n and pat[j] == "/":
                out.append("(?:.*/)?")  # `**/` may also stand for no folder at all
                j += 1
            else:
                out.append(".*")
            i = j
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "[" and (end := _class_end(pat, i)) > 0:
            out.append(_class_regex(pat[i + 1 : end]))
            i = end + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    body = "".join(out)
    return re.compile(body if "/" in pat else "(?:.*/)?" + body, re.DOTALL)


def _class_end(pat: str, start: int) -> int:
    """Index of the `]` closing the class opened at `start`, or -1 (then `[` is literal)."""
    i = start + 1
    if i < len(pat) and pat[i] in "!^":
        i += 1
    if i < len(pat) and pat[i] == "]":
        i += 1  # a `]` first in the class is a member, as in fnmatch
    end = pat.find("]", i)
    return end


def _class_regex(body: str) -> str:
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    members = "".join(c if c == "-" else re.escape(c) for c in body)
    # A class never matches `/`, so `[!a]` cannot jump into another folder.
    return f"[^/{members}]" if negate else f"(?!/)[{members}]"


def _extension_path(name: str) -> str:
    """The .duckdb_extension file inside the duckdb-extension-<name> wheel."""
    import importlib

    package = importlib.import_module(f"duckdb_extension_{name}")
    root = Path(next(iter(package.__path__))) / "extensions"
    exact = root / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if exact.is_file():
        return str(exact)
    found = sorted(root.glob(f"*/{name}.duckdb_extension"))
    if not found:
        raise RuntimeError(f"duckdb-extension-{name} has no {name}.duckdb_extension in {root}")
    return str(found[-1])


@dataclass(frozen=True)
class _VectorCache:
    ids: np.ndarray  # int64 (n,)
    matrix: np.ndarray  # float32 (n, dim), rows unit length
    paths: np.ndarray  # unique paths (object)
    path_codes: np.ndarray  # index into paths, per row
    kinds: np.ndarray  # unique kinds (object)
    kind_codes: np.ndarray

    def mask(self, path_glob: str | None, kinds: Collection[str] | None) -> np.ndarray | None:
        mask: np.ndarray | None = None
        if path_glob:
            regex = glob_to_regex(path_glob)
            ok = np.fromiter(
                (regex.fullmatch(p) is not None for p in self.paths), bool, len(self.paths)
            )
            mask = ok[self.path_codes]
        if kinds:
            wanted = {str(k) for k in kinds}
            ok = np.fromiter((k in wanted for k in self.kinds), bool, len(self.kinds))
            mask = ok[self.kind_codes] if mask is None else mask & ok[self.kind_codes]
        return mask


_CHUNK_COLUMNS = "id, path, kind, text, start_line, end_line, cells, title, part, n_tokens"


class IndexStore:
    """One per index file and process: DuckDB hands every connection to a file in one
    process the same database, but the vector cache and FTS flags here are per object."""

    def __init__(self, db_path: Path, *, dim: int = 384, embedder_id: str = "") -> None:
        self.db_path = Path(db_path)
        self.dim = dim
        self.embedder_id = embedder_id
        self.cleared_on_open: str | None = None  # why an existing index was cleared, if it was
        self._write_lock = threading.RLock()
        self._cache_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._cache: _VectorCache | None = None
        self._generation = 0  # bumped by every write, so a cache loaded meanwhile is dropped
        self._fts_stale = True  # chunks changed since the BM25 index was built
        self._fts_built = False  # a BM25 index exists, however old
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
            fts = _extension_path("fts").replace("'", "''")
            self._con.execute(f"LOAD '{fts}'")
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
            with self._cache_lock:
                self._cache = None

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
            if tables:
                # Vectors from another model or size cannot be compared with new ones.
                log.info("Clearing the index %s: %s", self.db_path, reason)
                self.cleared_on_open = reason
            self._create_schema(con)
        self._read_fts_state(con)

    def _create_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        with self._transaction():
            con.execute(f"DROP SCHEMA IF EXISTS {FTS_SCHEMA} CASCADE")
            self._fts_built = False
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
            con.execute(
                "CREATE TABLE chunks (id BIGINT NOT NULL, path VARCHAR NOT NULL, "
                "kind VARCHAR NOT NULL, text VARCHAR NOT NULL, start_line INTEGER, "
                "end_line INTEGER, cells INTEGER[] NOT NULL, title VARCHAR, "
                "part INTEGER NOT NULL, n_tokens INTEGER NOT NULL, "
                f"vec FLOAT[{self.dim}] NOT NULL)"
            )
            con.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("dim", str(self.dim)),
                    ("embedder_id", self.embedder_id),
                    ("fts_stale", "1"),
                ],
            )
        self._invalidate()

    def _read_fts_state(self, con: duckdb.DuckDBPyConnection) -> None:
        row = con.execute("SELECT value FROM meta WHERE key = 'fts_stale'").fetchone()
        built = con.execute(
            "SELECT count(*) FROM duckdb_schemas() WHERE schema_name = ?", [FTS_SCHEMA]
        ).fetchone()
        self._fts_built = bool(built and built[0])
        self._fts_stale = not self._fts_built or row is None or row[0] != "0"

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
        files, chunk_cols, n = self._columns(items)
        with self._transaction() as con:
            con.register("_new_files", files)
            try:
                con.execute("DELETE FROM chunks WHERE path IN (SELECT path FROM _new_files)")
                con.execute("DELETE FROM files WHERE path IN (SELECT path FROM _new_files)")
                con.execute(
                    "INSERT INTO files (path, content_hash, mtime, size, n_chunks) "
                    "SELECT path, content_hash, mtime, size, n_chunks FROM _new_files"
                )
            finally:
                con.unregister("_new_files")
            if n:
                # Ids in chunk order, so `chunk_ids(path)` lists a file's chunks in order.
                ids = con.execute(
                    "SELECT nextval('chunk_ids') AS id FROM range(?)", [n]
                ).fetchnumpy()["id"]
                chunk_cols["id"] = np.sort(np.asarray(ids, dtype=np.int64))
                con.register("_new_chunks", chunk_cols)
                try:
                    con.execute(
                        f"INSERT INTO chunks ({_CHUNK_COLUMNS}, vec) SELECT id, path, kind, "
                        "text, nullif(start_line, -1), nullif(end_line, -1), "
                        "CASE WHEN cells = '' THEN []::INTEGER[] "
                        "ELSE string_split(cells, ',')::INTEGER[] END, "
                        f"title::VARCHAR, part, n_tokens, {self._vec_expr} FROM _new_chunks"
                    )
                finally:
                    con.unregister("_new_chunks")
            self._mark_fts_stale(con)
        self._invalidate()

    def _columns(
        self, items: Sequence[tuple[FileState, Sequence[Chunk], np.ndarray]]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
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
        }
        columns.update({f"v{j}": by_dim[j] for j in range(self.dim)})
        return files, columns, len(chunks)

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
        with self._transaction() as con:
            con.register("_gone", {"path": wanted})
            try:
                row = con.execute(
                    "SELECT count(*) FROM files WHERE path IN (SELECT path FROM _gone)"
                ).fetchone()
                count = int(row[0]) if row else 0
                if count:
                    con.execute("DELETE FROM chunks WHERE path IN (SELECT path FROM _gone)")
                    con.execute("DELETE FROM files WHERE path IN (SELECT path FROM _gone)")
                    self._mark_fts_stale(con)
            finally:
                con.unregister("_gone")
        if count:
            self._invalidate()
        return count

    def _mark_fts_stale(self, con: duckdb.DuckDBPyConnection) -> None:
        # In the writing transaction, so a crash cannot leave new chunks behind a "fresh" flag.
        if not self._fts_stale:
            con.execute("UPDATE meta SET value = '1' WHERE key = 'fts_stale'")
            self._fts_stale = True

    def _invalidate(self) -> None:
        with self._cache_lock:
            self._generation += 1
            self._cache = None

    def rebuild_fts(self) -> None:
        """Rebuild the BM25 index from the current chunks (~0.5 s per 10k chunks)."""
        with self._transaction() as con:
            con.execute(f"PRAGMA create_fts_index('chunks', 'id', 'text', {FTS_OPTIONS})")
            con.execute("UPDATE meta SET value = '0' WHERE key = 'fts_stale'")
        self._fts_stale = False
        self._fts_built = True

    def _ensure_fts(self, allow_stale: bool) -> None:
        if self._fts_stale and not (allow_stale and self._fts_built):
            with self._write_lock:
                if self._fts_stale:  # another thread may have rebuilt it while we waited
                    self.rebuild_fts()

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
        return {
            "path": str(self.db_path),
            "files": int(n_files),
            "chunks": int(n_chunks),
            "tokens": int(tokens),
            "kinds": {str(k): int(v) for k, v in kinds.items()},
            "db_bytes": db_bytes,
            "fts_fresh": not self._fts_stale,
            "fts_built": self._fts_built,
            "vector_cache_loaded": self._cache is not None,
            "dim": self.dim,
            "embedder_id": self.embedder_id,
            "schema_version": SCHEMA_VERSION,
            "cleared_on_open": self.cleared_on_open,
        }

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
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape != (self.dim,):
            raise ValueError(f"query vector has {q.size} values, expected {self.dim}")
        norm = float(np.linalg.norm(q))
        if k <= 0 or not np.isfinite(norm) or norm == 0.0:
            return []
        cache = self._vector_cache()
        if not len(cache.ids):
            return []
        scores = cache.matrix @ (q / norm)
        mask = cache.mask(path_glob, kinds)
        rows = np.flatnonzero(mask) if mask is not None else np.arange(len(scores))
        if len(rows) > k:
            rows = rows[np.argpartition(-scores[rows], k - 1)[:k]]
        # Ties go to the older chunk, so equal scores rank the same way every time.
        rows = rows[np.lexsort((cache.ids[rows], -scores[rows]))]
        return [(int(cache.ids[r]), float(scores[r])) for r in rows]

    def _vector_cache(self) -> _VectorCache:
        with self._cache_lock:
            if self._cache is not None:
                return self._cache
        with self._load_lock:  # one thread loads; the others wait and share its result
            with self._cache_lock:
                if self._cache is not None:
                    return self._cache
                generation = self._generation
            cache = self._load_vectors()
            with self._cache_lock:
                if self._generation == generation:
                    self._cache = cache
            return cache

    def _load_vectors(self) -> _VectorCache:
        with self._reader() as cur:
            got = cur.execute("SELECT id, path, kind, vec FROM chunks").fetchnumpy()
        ids = np.asarray(got["id"], dtype=np.int64)
        if len(ids):
            matrix = np.stack(got["vec"]).astype(np.float32, copy=False)
        else:
            matrix = np.zeros((0, self.dim), dtype=np.float32)
        paths, path_codes = np.unique(np.asarray(got["path"], dtype=object), return_inverse=True)
        kinds, kind_codes = np.unique(np.asarray(got["kind"], dtype=object), return_inverse=True)
        return _VectorCache(ids, matrix, paths, path_codes, kinds, kind_codes)

    def search_bm25(
        self,
        query: str,
        k: int,
        *,
        path_glob: str | None = None,
        kinds: Collection[str] | None = None,
        allow_stale: bool = False,
    ) -> list[tuple[int, float]]:
        """BM25 over chunk texts: (chunk id, score), best first. Any query string is safe.

        A BM25 index older than the last write is rebuilt first (~0.5 s per 10k chunks).
        `allow_stale=True` skips that while an indexing pass is still writing: results then
        miss chunks written since the last rebuild, but never include deleted ones.
        """
        terms = bm25_terms(query)
        if k <= 0 or not terms:
            return []
        self._ensure_fts(allow_stale)
        where = []
        with self._reader() as cur:
            params: list[Any] = [terms]
            if path_glob:
                regex = glob_to_regex(path_glob)
                # Filter paths in Python so both searches share one glob implementation.
                paths = [p for (p,) in cur.execute("SELECT path FROM files").fetchall()]
                allowed = _strings(p for p in paths if regex.fullmatch(p))
                if not len(allowed):
                    return []
                cur.register("_allowed", {"path": allowed})
                where.append("path IN (SELECT path FROM _allowed)")
            if kinds:
                where.append("list_contains(?, kind)")
                params.append(sorted({str(x) for x in kinds}))
            params.append(int(k))
            filters = f"WHERE {' AND '.join(where)}" if where else ""
            rows = cur.execute(
                f"SELECT id, score FROM (SELECT id, {FTS_SCHEMA}.match_bm25(id, ?) AS score "
                f"FROM chunks {filters}) WHERE score IS NOT NULL "
                "ORDER BY score DESC, id LIMIT ?",
                params,
            ).fetchall()
        return [(int(i), float(s)) for i, s in rows]


def bm25_terms(query: str) -> str:
    """The query as plain words: FTS sees no quotes, operators or punctuation."""
    words = re.findall(r"[^\W_]+", query)
    return " ".join(words[:MAX_QUERY_TERMS])


def _strings(values: Iterable[str | None]) -> np.ndarray:
    return np.array(list(values), dtype=object)


def _ints(values: Iterable[int | None]) -> np.ndarray:
    # -1 stands for NULL (lines are 1-based), turned back with nullif() in SQL.
    return np.array([-1 if v is None else v for v in values], dtype=np.int64)


def _id_list(ids: Sequence[int]) -> str:
    # Literal integers (int() rejects anything else): cheaper than a list parameter.
    return ", ".join(str(int(i)) for i in ids)
