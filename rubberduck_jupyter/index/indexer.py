"""Builds and refreshes the index of a folder: incremental by content hash, blocking.

Run it in a worker thread. Files are read and chunked in a second thread while the
embedder (which releases the GIL in torch) works on the previous batch, so parsing hides
behind embedding. Each batch of files is written in one transaction: a crash loses at most
the batch in flight, and the next run, comparing hashes, redoes exactly what is missing.

Progressive indexing (`progressive=True`, the server's default with a local transformer):
the first tier writes every changed file's chunks with their BM25 terms and the static
embedder's vectors (model2vec: thousands of chunks/s), so the project is searchable (hybrid
BM25 + static) within seconds; the second tier then embeds the stored chunks that lack the
transformer's vector, in batches read back from DuckDB, and each batch's vectors replace
the static ones in one transaction. Without a static embedder (model2vec not installed or
not distilled yet; see service.py) the first tier writes BM25 terms alone: searchable by
keywords in seconds, the same second tier after it. The second tier ends every run, also a
non-progressive one, so chunks left without the transformer's vector by a crash or a
stopped run are embedded by the next run (`IndexStore.missing_full_ids`), nothing redone.
An edited file's unchanged chunk texts keep their transformer vectors in both modes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .chunkers import chunk_bytes
from .discovery import (
    DEFAULT_MAX_FILE_BYTES,
    Candidate,
    GitIgnoreRules,
    Skipped,
    check_file,
    discover,
)
from .embedder import Embedder
from .store import FileState, IndexStore
from .types import Chunk, ChunkError

# Chunks embedded together: big enough to keep the model busy, small enough that progress
# moves and a crash loses little.
DEFAULT_BATCH_CHUNKS = 256
# Skipped paths listed in a report: enough to find the surprising ones in a panel, bounded
# because a project with a vendored tree can skip tens of thousands (counts stay exact).
MAX_SKIPPED_LISTED = 200


@dataclass
class IndexProgress:
    phase: str = "scanning"  # scanning, indexing, improving (the second tier), done, cancelled
    files_total: int = 0
    files_done: int = 0
    chunks_embedded: int = 0
    current: str | None = None
    tier: str = "full"  # what the files' chunks are written with: full, static or none
    chunks_to_improve: int = 0  # the second tier: chunks without the transformer's vector
    chunks_improved: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "files_total": self.files_total,
            "files_done": self.files_done,
            "chunks_embedded": self.chunks_embedded,
            "current": self.current,
            "tier": self.tier,
            "chunks_to_improve": self.chunks_to_improve,
            "chunks_improved": self.chunks_improved,
        }


@dataclass
class IndexReport:
    root: str
    files_seen: int = 0
    files_indexed: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    chunks_written: int = 0
    tokens_embedded: int = 0
    truncated_chunks: int = 0  # chunks longer than the embedder's window: the goal is 0
    chunks_reused: int = 0  # unchanged chunks of edited files, whose vectors were kept
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    seconds_embedding: float = 0.0
    cancelled: bool = False
    first_tier: str = "full"  # full, static or none (progressive)
    seconds_to_searchable: float | None = None  # the first tier written (progressive)
    chunks_improved: int = 0  # given the transformer's vector by the second tier
    static_error: str | None = None  # why the first tier had no static vectors, if it failed

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "files_seen": self.files_seen,
            "files_indexed": self.files_indexed,
            "files_unchanged": self.files_unchanged,
            "files_removed": self.files_removed,
            "chunks_written": self.chunks_written,
            "tokens_embedded": self.tokens_embedded,
            "truncated_chunks": self.truncated_chunks,
            "chunks_reused": self.chunks_reused,
            "skipped": [
                {"path": s.rel_path, "reason": s.reason, "code": s.code}
                for s in self.skipped[:MAX_SKIPPED_LISTED]
            ],
            "skipped_total": len(self.skipped),
            "skipped_by_reason": dict(Counter(s.code for s in self.skipped).most_common()),
            "errors": [{"path": p, "reason": r} for p, r in self.errors],
            "seconds": round(self.seconds, 3),
            "seconds_embedding": round(self.seconds_embedding, 3),
            "cancelled": self.cancelled,
            "first_tier": self.first_tier,
            "seconds_to_searchable": None
            if self.seconds_to_searchable is None
            else round(self.seconds_to_searchable, 3),
            "chunks_improved": self.chunks_improved,
            "static_error": self.static_error,
        }


@dataclass
class _Parsed:
    state: FileState
    chunks: list[Chunk]
    replaces_existing: bool = False


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class Indexer:
    def __init__(
        self,
        store: IndexStore,
        embedder: Embedder,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        batch_chunks: int = DEFAULT_BATCH_CHUNKS,
        progress: Callable[[IndexProgress], None] | None = None,
        progressive: bool = False,
        static_embedder: Embedder | None = None,
    ) -> None:
        """`progressive`: chunks first (with `static_embedder`'s vectors, whose id and dim
        the store must have been opened with, or BM25 terms alone without one), the
        transformer's vectors after; see the module docstring."""
        self.store = store
        self.embedder = embedder
        self.progressive = progressive
        self.static_embedder = static_embedder if progressive else None
        if self.static_embedder is not None and (
            store.static_embedder_id != self.static_embedder.id
            or store.static_dim != self.static_embedder.dim
        ):
            raise ValueError("the store was opened without this static embedder's id and dim")
        # Transformer vectors of texts whose chunks a progressive run replaced: the second
        # tier takes them instead of embedding those texts again.
        self._reusable: dict[str, np.ndarray] = {}
        self.max_file_bytes = max_file_bytes
        self.batch_chunks = batch_chunks
        self._progress_callback = progress
        self.progress = IndexProgress()
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    def _report_progress(self, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(self.progress, name, value)
        if self._progress_callback is not None:
            self._progress_callback(self.progress)

    def index_folder(self, root: Path, subpaths: Sequence[Path] = ()) -> IndexReport:
        """Index `root`, or only the given files/folders inside it; removes what vanished."""
        root = root.resolve()
        report = IndexReport(root=str(root))
        started = time.perf_counter()
        self._report_progress(phase="scanning")
        prefixes = [self._rel(root, p) for p in subpaths]
        found: list[Candidate] = []
        # Only the given subpaths are walked: a watcher's new folder costs its own files.
        for item in discover(root, max_file_bytes=self.max_file_bytes, under=subpaths):
            rel = item.rel_path
            if prefixes and not any(_under(rel, prefix) for prefix in prefixes):
                continue
            if isinstance(item, Skipped):
                report.skipped.append(item)
            else:
                found.append(item)
        known = self.store.file_states()
        in_scope = {p for p in known if not prefixes or any(_under(p, x) for x in prefixes)}
        removed = in_scope - {c.rel_path for c in found}
        self._run(found, known, removed, report, started)
        report.seconds = time.perf_counter() - started
        return report

    def index_files(self, root: Path, paths: Iterable[Path]) -> IndexReport:
        """Refresh single files (after a save or a watcher event): index, update, or drop
        them. A path that no longer exists and was a folder drops the files indexed under it
        (a folder deleted or moved away shows up as one event, not one per file)."""
        root = root.resolve()
        report = IndexReport(root=str(root))
        started = time.perf_counter()
        found: list[Candidate] = []
        removed: set[str] = set()
        known = self.store.file_states()
        rules = GitIgnoreRules(root)
        for path in paths:
            item = check_file(root, path, max_file_bytes=self.max_file_bytes, rules=rules)
            if isinstance(item, Candidate):
                found.append(item)
                continue
            report.skipped.append(item)
            if item.rel_path in known:
                removed.add(item.rel_path)  # deleted, or now ignored/too big
            elif item.rel_path and not os.path.lexists(path):
                removed.update(p for p in known if _under(p, item.rel_path))
        self._run(found, known, removed, report, started)
        report.seconds = time.perf_counter() - started
        return report

    @staticmethod
    def _rel(root: Path, path: Path) -> str:
        rel = path.resolve().relative_to(root).as_posix()
        return "" if rel == "." else rel

    def _run(
        self,
        found: list[Candidate],
        known: dict[str, FileState],
        removed: set[str],
        report: IndexReport,
        started: float,
    ) -> None:
        report.files_seen = len(found)
        if self.progressive:
            report.first_tier = "static" if self.static_embedder is not None else "none"
        self._report_progress(tier=report.first_tier)
        changed = []
        for candidate in found:
            state = known.get(candidate.rel_path)
            if state and state.size == candidate.size and state.mtime == candidate.mtime:
                report.files_unchanged += 1
            else:
                changed.append(candidate)
        if removed:
            report.files_removed = self.store.delete_files(sorted(removed))
        self._report_progress(phase="indexing", files_total=len(changed), files_done=0)
        if changed:
            self._load_static_meanwhile()
        parsed: queue.Queue[_Parsed | tuple[str, str] | None] = queue.Queue(maxsize=64)
        reader = threading.Thread(
            target=self._read_and_chunk, args=(changed, known, parsed), daemon=True
        )
        reader.start()
        batch: list[_Parsed] = []
        batch_size = 0
        touched: list[FileState] = []
        while True:
            item = parsed.get()
            if item is None:
                break
            if self.cancel_event.is_set():
                continue  # drain so the reader thread can finish
            if isinstance(item, tuple):
                report.errors.append(item)
                continue
            if item.state.n_chunks == -1:  # content unchanged despite a new mtime
                touched.append(item.state)
                report.files_unchanged += 1
                self._report_progress(files_done=self.progress.files_done + 1)
                continue
            batch.append(item)
            batch_size += len(item.chunks)
            if batch_size >= self.batch_chunks:
                self._write_batch(batch, report)
                batch, batch_size = [], 0
        reader.join()
        if self.cancel_event.is_set():
            report.cancelled = True
            self._report_progress(phase="cancelled")
            return
        if batch:
            self._write_batch(batch, report)
        self.store.touch_files(touched)
        if report.cancelled:  # Stop came during the last batch's embedding
            self._report_progress(phase="cancelled")
            return
        if self.progressive:
            report.seconds_to_searchable = time.perf_counter() - started
        self._complete_full_tier(report)
        self._reusable.clear()
        if report.cancelled:
            self._report_progress(phase="cancelled")
            return
        self._report_progress(phase="done", current=None)

    def _load_static_meanwhile(self) -> None:
        """Load the static embedder in a thread while the reader chunks the first files, so
        the first batch does not wait for it: on a first run its import and load (~1 s on 2
        cores) overlap the chunking instead of following it. A failure is left for the first
        batch's `embed` to meet again and report (the first tier then goes by keywords)."""
        static = self.static_embedder
        if static is None or getattr(static, "loaded", True):
            return

        def load() -> None:
            with contextlib.suppress(Exception):
                static.load()

        threading.Thread(target=load, name="rubberduck-static-load", daemon=True).start()

    def _complete_full_tier(self, report: IndexReport) -> None:
        """The second tier: the transformer's vectors for every stored chunk that lacks
        one, batch by batch, each replacing the batch's static vectors as it commits."""
        missing = self.store.missing_full_ids()
        if not len(missing):
            return
        self._report_progress(
            phase="improving", current=None, chunks_to_improve=len(missing), chunks_improved=0
        )
        for start in range(0, len(missing), self.batch_chunks):
            if self.cancel_event.is_set():
                report.cancelled = True
                return
            # Texts from DuckDB: a run after a crash has nothing else; gone ids drop out.
            chunks = self.store.chunks(missing[start : start + self.batch_chunks].tolist())
            if not chunks:
                continue
            texts = [c.text for c in chunks]
            new_texts = list(dict.fromkeys(t for t in texts if t not in self._reusable))
            began = time.perf_counter()
            fresh = self._embed_unless_cancelled(new_texts)
            if fresh is None:
                report.cancelled = True
                return
            report.seconds_embedding += time.perf_counter() - began
            by_text = {**self._reusable, **dict(zip(new_texts, fresh, strict=True))}
            vectors = np.array([by_text[t] for t in texts], dtype=np.float32).reshape(
                len(texts), self.embedder.dim
            )
            written = self.store.add_vectors([c.id for c in chunks], vectors)
            report.chunks_improved += written
            if self.progressive:
                report.tokens_embedded += sum(c.n_tokens for c in chunks)
                report.chunks_reused += len(texts) - len(new_texts)
            self._report_progress(chunks_improved=self.progress.chunks_improved + len(chunks))

    def _read_and_chunk(
        self,
        changed: list[Candidate],
        known: dict[str, FileState],
        out: queue.Queue[_Parsed | tuple[str, str] | None],
    ) -> None:
        counter = self.embedder.counter
        try:
            for candidate in changed:
                if self.cancel_event.is_set():
                    break
                try:
                    data = candidate.path.read_bytes()
                except OSError as exc:
                    out.put((candidate.rel_path, f"unreadable: {exc.strerror}"))
                    continue
                digest = content_hash(data)
                previous = known.get(candidate.rel_path)
                if previous is not None and previous.content_hash == digest:
                    touched = FileState(
                        candidate.rel_path, digest, candidate.mtime, candidate.size, -1
                    )
                    out.put(_Parsed(touched, []))
                    continue
                try:
                    # The bytes already read and hashed: no second read racing a writer.
                    chunks = chunk_bytes(data, candidate.rel_path, counter)
                except ChunkError as exc:
                    out.put((candidate.rel_path, str(exc)))
                    continue
                state = FileState(
                    path=candidate.rel_path,
                    content_hash=digest,
                    mtime=candidate.mtime,
                    size=candidate.size,
                    n_chunks=len(chunks),
                )
                out.put(_Parsed(state, chunks, replaces_existing=previous is not None))
        finally:
            out.put(None)

    def _write_batch(self, batch: list[_Parsed], report: IndexReport) -> None:
        if self.progressive:
            self._write_first_tier(batch, report)
            return
        self._report_progress(current=batch[-1].state.path)
        texts = [chunk.text for item in batch for chunk in item.chunks]
        # An edited file keeps most of its chunks word for word: reuse their vectors and
        # embed only the new texts, so saving one cell costs one chunk, not the notebook.
        reused = self._previous_vectors(batch)
        new_texts = list(dict.fromkeys(t for t in texts if t not in reused))
        started = time.perf_counter()
        fresh = self._embed_unless_cancelled(new_texts)
        if fresh is None:  # stopped mid-request: this batch stays unwritten
            report.cancelled = True
            return
        report.seconds_embedding += time.perf_counter() - started
        by_text = {**reused, **dict(zip(new_texts, fresh, strict=True))}
        items: list[tuple[FileState, Sequence[Chunk], np.ndarray]] = []
        window = self.embedder.counter.window
        for item in batch:
            vectors = np.array([by_text[c.text] for c in item.chunks], dtype=np.float32).reshape(
                len(item.chunks), self.embedder.dim
            )
            items.append((item.state, item.chunks, vectors))
            report.tokens_embedded += sum(c.n_tokens for c in item.chunks)
            report.truncated_chunks += sum(c.n_tokens > window for c in item.chunks)
        self.store.replace_files(items)
        report.files_indexed += len(batch)
        report.chunks_written += len(texts)
        report.chunks_reused += len(texts) - len(new_texts)
        self._report_progress(
            files_done=self.progress.files_done + len(batch),
            chunks_embedded=self.progress.chunks_embedded + len(texts),
        )

    def _write_first_tier(self, batch: list[_Parsed], report: IndexReport) -> None:
        """Progressive: the batch's chunks with static vectors, or BM25 terms alone."""
        self._report_progress(current=batch[-1].state.path)
        texts = [chunk.text for item in batch for chunk in item.chunks]
        self._reusable.update(self._previous_vectors(batch))
        static = self.static_embedder
        by_text: dict[str, np.ndarray] = {}
        if static is not None:
            unique = list(dict.fromkeys(texts))
            started = time.perf_counter()
            try:
                by_text = dict(zip(unique, static.embed(unique), strict=True))
            except Exception as exc:
                # The first tier goes on by keywords; the second tier is unaffected.
                report.static_error = f"{type(exc).__name__}: {exc}"[:300]
                report.first_tier = "none"
                self.static_embedder = static = None
                self._report_progress(tier="none")
            report.seconds_embedding += time.perf_counter() - started
        items: list[tuple[FileState, Sequence[Chunk], np.ndarray | None]] = []
        window = self.embedder.counter.window
        for item in batch:
            vectors = None
            if static is not None:
                vectors = np.array(
                    [by_text[c.text] for c in item.chunks], dtype=np.float32
                ).reshape(len(item.chunks), static.dim)
            items.append((item.state, item.chunks, vectors))
            report.truncated_chunks += sum(c.n_tokens > window for c in item.chunks)
        self.store.replace_files(items, tier="static" if static is not None else "none")
        report.files_indexed += len(batch)
        report.chunks_written += len(texts)
        self._report_progress(
            files_done=self.progress.files_done + len(batch),
            chunks_embedded=self.progress.chunks_embedded + len(texts),
        )

    def _embed_unless_cancelled(self, texts: list[str]) -> np.ndarray | None:
        """The texts' vectors, or None when Stop comes first. A remote provider may take its
        whole timeout (60 s) to answer and Stop should not wait for it: the request goes on
        in a daemon thread and its vectors are dropped when it ends."""
        if not texts:
            return self.embedder.embed(texts)
        outcome: list[np.ndarray | BaseException] = []
        done = threading.Event()

        def work() -> None:
            try:
                outcome.append(self.embedder.embed(texts))
            except BaseException as exc:  # handed to the indexing thread below
                outcome.append(exc)
            finally:
                done.set()

        threading.Thread(target=work, name="rubberduck-embed", daemon=True).start()
        while not done.wait(0.1):
            if self.cancel_event.is_set():
                return None
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _previous_vectors(self, batch: list[_Parsed]) -> dict[str, np.ndarray]:
        known: dict[str, np.ndarray] = {}
        for item in batch:
            if not item.replaces_existing:
                continue  # a new file: nothing stored to reuse, no query
            ids = self.store.chunk_ids(item.state.path)
            if ids:
                vectors = self.store.full_vectors(ids)  # chunks not embedded yet have none
                stored = self.store.chunks([i for i in ids if i in vectors])
                known.update((c.text, vectors[c.id]) for c in stored)
        return known


def _under(rel_path: str, prefix: str) -> bool:
    return not prefix or rel_path == prefix or rel_path.startswith(prefix + "/")
