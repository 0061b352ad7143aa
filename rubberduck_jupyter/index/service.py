"""The index as the server uses it: one store per server, indexing in the background,
search off the event loop, and files refreshed shortly after they change: saved through
Jupyter (the contents manager's post-save hook) or changed on disk by anything else (a
file watcher). Both feed one debounced queue, so a file saved through Jupyter, which the
watcher sees too, is refreshed once.

Progressive indexing (indexer.py; `progressive` and `static_embedder_factory`, wired by
app.py for a local transformer embedder): each run writes the chunks with the static
embedder's vectors first, so the project is searchable in seconds, and the transformer's
after them, in the same background run; `status()["tiers"]` says how many chunks each tier
holds. When the static embedder cannot embed at once (model2vec not installed, or not yet
distilled on this machine: distilling takes ~25 s and torch), the run does not wait for it:
its first tier is BM25 alone (searchable by keywords in seconds), the transformer's vectors
follow as usual, and once the run has ended the static model is distilled in the
background, once per process, so the next project is searchable with vectors at once.
An index left with chunks lacking the transformer's vector (a crash, a stop between tiers)
gets them from the next run; the warm-up after a server start begins that run itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..domain.file_rules import name_refusal

if TYPE_CHECKING:  # numpy and DuckDB load only when the index is first used
    from .search import Hit

log = logging.getLogger(__name__)

# Runs a named background job and returns its task: app.py passes the server's
# supervisor (runtime/supervisor.py, transient children) without the index importing it.
Spawn = Callable[[str, Callable[[], Coroutine[Any, Any, None]]], "asyncio.Future[None]"]

# Changes come in bursts (autosave, several files, a checkout); wait this long after the last.
SAVE_DEBOUNCE_S = 1.0


class IndexBusyError(RuntimeError):
    pass


class IndexPathError(ValueError):
    """A path from a client that cannot be indexed; the message says why."""


# Linux's PATH_MAX and NAME_MAX, in bytes of the UTF-8 encoding: the OS refuses longer ones
# with ENAMETOOLONG, so they are refused here first, precisely.
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
MAX_INDEX_PATHS = 1000  # one request's folders and files; a whole project is one path: ""


def _shown(raw: str) -> str:
    """A client's path for an error message: short, and printable whatever it holds."""
    return ascii(raw[:60] + ("..." if len(raw) > 60 else ""))


def check_client_path(raw: object) -> str:
    """A relative path as a client sent it, refused with IndexPathError if the file system
    could not even look it up: not a string, NUL, a lone surrogate, or over-long."""
    if not isinstance(raw, str):
        raise IndexPathError(f"{ascii(raw)[:60]}: each path must be a string")
    if "\x00" in raw:
        raise IndexPathError(f"{_shown(raw)} contains a NUL character")
    try:
        encoded = raw.encode("utf-8")
    except UnicodeEncodeError:
        raise IndexPathError(f"{_shown(raw)} is not valid text (a lone surrogate)") from None
    if len(encoded) > MAX_PATH_BYTES:
        raise IndexPathError(
            f"{_shown(raw)} is {len(encoded)} bytes long; paths have at most {MAX_PATH_BYTES}"
        )
    for part in encoded.split(b"/"):
        if len(part) > MAX_NAME_BYTES:
            raise IndexPathError(
                f"{_shown(raw)} has a name of {len(part)} bytes; names have at most "
                f"{MAX_NAME_BYTES}"
            )
    return raw


def scope_path_for(db_path: Path) -> Path:
    """Where the chosen scope of an index is saved: beside its database, so a re-index,
    the watcher and a restarted server all use the folders the user picked."""
    return db_path.with_name(db_path.stem + ".scope.json")


def default_db_path(data_dir: Path, root: Path) -> Path:
    """One database per project folder, under the Jupyter data dir (outside the project)."""
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    return data_dir / "rubberduck" / f"index-{root.resolve().name or 'root'}-{digest}.duckdb"


class IndexService:
    def __init__(
        self,
        root: Path,
        db_path: Path,
        *,
        embedder_factory: Callable[[], Any] | None = None,
        max_file_bytes: int = 2_000_000,
        debounce_s: float = SAVE_DEBOUNCE_S,
        spawn: Spawn | None = None,
        on_files_changed: Callable[[list[Path], str], None] | None = None,
        on_indexed: Callable[[int, int], None] | None = None,
        ann_threshold: int | None = None,
        progressive: bool = False,
        static_embedder_factory: Callable[[], Any] | None = None,
    ) -> None:
        """`progressive` with `static_embedder_factory` (model2vec): chunks and static
        vectors first, the embedder's vectors after (see the module docstring).

        `ann_threshold`: from this many chunks on, vector search uses the approximate
        graph (store.py; None: the store's default). `on_files_changed(paths, how)` ("saved"
        or "changed": seen by the watcher) and `on_indexed(files, chunks)` (after a build or
        refresh) are called on the event loop and must return at once (the app publishes them
        as plugin events)."""
        self.root = root.resolve()
        self._on_files_changed = on_files_changed
        self._on_indexed = on_indexed
        self._spawn = spawn
        self.db_path = db_path
        self.max_file_bytes = max_file_bytes
        self.debounce_s = debounce_s
        self._embedder_factory = embedder_factory
        self._ann_threshold = ann_threshold
        self.progressive = progressive
        self._static_factory = static_embedder_factory if progressive else None
        self._static: Any = None  # the static embedder, once the index is open
        self.static_state: str | None = None  # ready, distilling, or why it cannot embed
        self._distil_thread: threading.Thread | None = None
        self._tiers: dict[str, int] = {"chunks": 0, "full": 0, "static": 0}
        self._last_phase = ""
        self._last_counted = 0.0
        self._embedder: Any = None
        self._store: Any = None
        self._searcher: Any = None
        self._open_lock = asyncio.Lock()
        self._run: asyncio.Task[None] | None = None
        self._indexer: Any = None
        self.state = "idle"  # idle, indexing, error
        # Why the last search could not embed its query (it used keywords alone), or None.
        self.embedder_error: str | None = None
        self.last_report: dict[str, Any] | None = None
        self.last_error: str | None = None
        self._pending_saves: set[Path] = set()
        self._pending_rescan = False
        self._save_timer: asyncio.TimerHandle | None = None
        self._refresh: asyncio.Future[None] | None = None
        self.refreshes = 0  # refresh passes finished, for health and tests
        self._watch_wanted = False
        self._watch_options: dict[str, Any] = {}
        self._watcher: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Set by stop(): also seen by a run still opening the index (loading the model),
        # which then ends before its first file instead of ignoring the stop.
        self._cancel = threading.Event()
        self.scope_path = scope_path_for(db_path)
        self._scope: list[str] | None = None  # relative paths; [] is the whole project
        self._counts: dict[str, int] = {"files": 0, "chunks": 0}

    # --- opening (heavy imports and the model load happen here, in a thread) -----------

    def _open_blocking(self) -> None:
        from .embedder import SentenceTransformerEmbedder
        from .search import HybridSearcher
        from .store import IndexStore

        embedder = self._embedder_factory() if self._embedder_factory else None
        embedder = embedder or SentenceTransformerEmbedder()
        static = None
        if self._static_factory is not None:
            try:
                static = self._static_factory()
            except Exception as exc:  # e.g. the model2vec plugin denied: keywords first
                self.static_state = f"{type(exc).__name__}: {exc}"[:300]
            if static is not None and static.id == embedder.id:
                static = None  # the embedder is static already: nothing to stand in for it
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {}
        if self._ann_threshold is not None:
            options["ann_threshold"] = self._ann_threshold
        if static is not None:
            options.update(static_embedder_id=static.id, static_dim=static.dim)
        store = IndexStore(self.db_path, dim=embedder.dim, embedder_id=embedder.id, **options)
        self._embedder = embedder
        self._static = static
        self._store = store
        self._searcher = HybridSearcher(
            store, embedder.embed_query, static.embed_query if static is not None else None
        )
        self._refresh_counts()

    def _static_for_run(self) -> Any:
        """The static embedder if it can embed now (None: the first tier is BM25 alone)."""
        static = self._static
        if static is None:
            return None
        check = getattr(static, "unavailable", None)
        why = check() if check is not None else None
        self.static_state = why or "ready"
        return None if why else static

    def _new_indexer(self) -> Any:
        from .indexer import Indexer

        static = self._static_for_run() if self.progressive else None
        return Indexer(
            self._store,
            self._embedder,
            max_file_bytes=self.max_file_bytes,
            progressive=self.progressive and self._static_factory is not None,
            static_embedder=static,
            progress=self._progressed,
        )

    def _progressed(self, progress: Any) -> None:
        """The indexer's progress (in its thread): tier counts after each committed batch."""
        # At most a few count queries a second (a rescan reports every unchanged file).
        now = time.monotonic()
        if progress.phase == self._last_phase and now - self._last_counted < 0.25:
            return
        self._last_phase, self._last_counted = progress.phase, now
        with contextlib.suppress(Exception):  # counts for a status display only
            self._tiers = self._store.tier_counts()

    def _distil_later(self) -> None:
        """After a run whose first tier had no static vectors: distil the static model once,
        in the background, so the next run (or project) starts with vectors."""
        static = self._static
        if static is None or self.static_state in (None, "ready", "distilling"):
            return
        if self._distil_thread is not None or not getattr(static, "can_distil", lambda: False)():
            return
        self.static_state = "distilling"

        def distil() -> None:
            try:
                static.load()
                self.static_state = "ready"
            except Exception as exc:
                log.warning("RubberDuck: could not distil the static embedder: %s", exc)
                self.static_state = f"{type(exc).__name__}: {exc}"[:300]

        # A daemon thread, not the loop's executor: a server stopping mid-distillation
        # (~25 s) must not wait for it; the model is saved by rename, so nothing half-made
        # is ever loaded.
        self._distil_thread = threading.Thread(target=distil, name="rubberduck-distil", daemon=True)
        self._distil_thread.start()

    async def _ensure_open(self) -> None:
        async with self._open_lock:
            if self._store is None:
                await asyncio.to_thread(self._open_blocking)

    @property
    def is_open(self) -> bool:
        return self._store is not None

    # --- indexing ---------------------------------------------------------------------

    def resolve_subpaths(self, paths: list[str]) -> list[Path]:
        """Relative paths from a client, checked to stay inside the root (symlinks too).

        Every refusal is an IndexPathError (the handler's 400 bad_path), including what the
        OS itself cannot take (NUL, names past NAME_MAX, paths past PATH_MAX), so nothing
        a client sends reaches the file system as an OSError or ValueError.
        """
        if len(paths) > MAX_INDEX_PATHS:
            raise IndexPathError(
                f"{len(paths)} paths in one request; give at most {MAX_INDEX_PATHS} "
                "(index their common folder instead)"
            )
        resolved = []
        for raw in paths:
            check_client_path(raw)
            if Path(raw).is_absolute():
                raise IndexPathError(f"{_shown(raw)}: give a path relative to the server's root")
            try:
                path = (self.root / raw).resolve()
                exists = path.exists()
            except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: a symlink loop
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise IndexPathError(f"{_shown(raw)} cannot be read: {reason}") from None
            if not path.is_relative_to(self.root):
                raise IndexPathError(f"{_shown(raw)} is outside the server's root")
            if not exists:
                raise IndexPathError(f"{_shown(raw)} does not exist")
            # Named in the request, refused by the index's rules: say so instead of a 202
            # for a path the indexer would then skip without a word.
            refusal = name_refusal(Path(raw).as_posix()) or name_refusal(
                path.relative_to(self.root).as_posix()
            )
            if refusal is not None:
                raise IndexPathError(refusal.replace("`", "'"))
            if not (path.is_dir() or path.is_file()):
                raise IndexPathError(f"{_shown(raw)} is not a regular file or folder")
            resolved.append(path)
        return resolved

    # --- the scope: which folders of the root are indexed -------------------------------

    @property
    def scope(self) -> list[str]:
        """The saved scope (relative paths, [] for the whole project). A saved path that
        has since vanished or now escapes the root is left out, not an error."""
        if self._scope is None:
            self._scope = self._load_scope()
        return list(self._scope)

    def _load_scope(self) -> list[str]:
        try:
            saved = json.loads(self.scope_path.read_text(encoding="utf-8")).get("paths", [])
        except (OSError, ValueError, AttributeError):
            return []
        kept = []
        for raw in saved if isinstance(saved, list) else []:
            try:
                self.resolve_subpaths([raw])
            except IndexPathError as exc:
                log.info("RubberDuck: scope path left out: %s", exc)
                continue
            kept.append(raw)
        return kept

    def _save_scope(self, paths: list[str]) -> None:
        self.scope_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.scope_path.with_name(self.scope_path.name + ".tmp")
        tmp.write_text(json.dumps({"paths": paths}), encoding="utf-8")
        os.replace(tmp, self.scope_path)  # a crash leaves the old scope, never half a file
        self._scope = list(paths)

    def in_scope(self, path: Path) -> bool:
        scope = self.scope
        if not scope:
            return True
        return any(path == p or path.is_relative_to(p) for p in self._scope_roots(scope))

    def _scope_roots(self, scope: list[str]) -> list[Path]:
        return [(self.root / p).resolve() for p in scope]

    async def start(self, paths: list[str] | None = None, scope: list[str] | None = None) -> None:
        """Index `paths` once (files/folders relative to the root), or, when `scope` is
        given, save it as the folders to index and (re)index them, dropping what lies
        outside; with neither, re-index the saved scope (the whole project if none)."""
        if self._run is not None and not self._run.done():
            raise IndexBusyError("Indexing is already running; stop it or wait for it to end.")
        if self.state == "locked" and await self.probe_lock():
            raise IndexBusyError(self.last_error or "The index is locked by another process.")
        prune = False
        if scope is not None:
            resolved = self.resolve_subpaths(scope)
            # Saved as the real paths' relative form: a symlink inside the root is kept
            # by its target, so the scope can never point elsewhere later.
            rel = sorted({p.relative_to(self.root).as_posix() for p in resolved} - {"."})
            rel = [] if any(p.resolve() == self.root for p in resolved) else rel
            self._save_scope(rel)
            subpaths, prune = self._scope_roots(rel), True
        elif paths:
            subpaths = self.resolve_subpaths(paths)
        else:
            subpaths, prune = self._scope_roots(self.scope), True
        self.state = "indexing"
        self.last_error = None
        self._cancel = threading.Event()
        self._indexer = None
        self._run = asyncio.get_running_loop().create_task(self._index(subpaths, prune))

    def _index_blocking(self, indexer: Any, subpaths: list[Path], prune: bool) -> Any:
        report = indexer.index_folder(self.root, subpaths)
        if prune and subpaths and not report.cancelled:
            # A narrowed scope: files indexed before, now outside every chosen folder.
            prefixes = [p.relative_to(self.root).as_posix() for p in subpaths]
            outside = [
                f
                for f in self._store.file_states()
                if not any(f == x or f.startswith(x + "/") for x in prefixes)
            ]
            if outside:
                report.files_removed += self._store.delete_files(outside)
        self._refresh_counts()
        return report

    def _announce_indexed(self) -> None:
        if self._on_indexed is not None:
            self._on_indexed(self._counts["files"], self._counts["chunks"])

    def _refresh_counts(self) -> None:
        stats = self._store.stats()
        self._counts = {"files": int(stats["files"]), "chunks": int(stats["chunks"])}
        self._tiers = dict(stats["tiers"])

    def tiers(self) -> dict[str, Any]:
        """Which tier each chunk is in, for the CLI, REST and the status bar:
        `{"tiers": {"full": {...}, "static": {...}, "keywords": {...}}, "searchable",
        "quality": "full" | "static" | "keywords" | None, "improving": share or None}`;
        `full` is the configured embedder's vectors, `static` the stand-in's, `keywords`
        chunks with BM25 terms alone for now."""
        t = self._tiers
        chunks, full, static = t["chunks"], t["full"], t["static"]
        keywords = max(0, chunks - full - static)
        quality = None
        if chunks:
            quality = "keywords" if keywords else "static" if static else "full"
        embedder = self._embedder.id if self._embedder is not None else None
        out: dict[str, Any] = {
            "tiers": {
                "full": {"embedder": embedder, "chunks": full},
                "static": {
                    "embedder": self._static.id if self._static is not None else None,
                    "chunks": static,
                    "state": self.static_state,
                },
                "keywords": {"chunks": keywords},
            },
            "searchable": chunks > 0,
            "quality": quality,
            "improving": round(full / chunks, 3) if chunks and full < chunks else None,
            "progressive": self.progressive,
        }
        return out

    async def _index(self, subpaths: list[Path], prune: bool = False) -> None:
        # The indexer's first import pulls in DuckDB, numpy and the chunkers: 0.2-0.4 s that
        # would otherwise run on the loop.
        await asyncio.to_thread(importlib.import_module, f"{__package__}.indexer")

        try:
            await self._ensure_open()
            if self._cancel.is_set():  # stopped while the index was opening
                self.state = "idle"
                return
            self._indexer = await asyncio.to_thread(self._new_indexer)
            self._indexer.cancel_event = self._cancel
            report = await asyncio.to_thread(self._index_blocking, self._indexer, subpaths, prune)
            self.last_report = report.to_json()
            self.state = "idle"
            self._announce_indexed()
            self._start_watcher_if_indexed()
            self._distil_later()
        except Exception as exc:
            from .store import IndexLockedError

            if isinstance(exc, IndexLockedError):
                log.warning("RubberDuck: %s", exc)
                self.state, self.last_error = "locked", str(exc)
                return
            log.exception("RubberDuck indexing failed")
            self.state = "error"
            self.last_error = f"{type(exc).__name__}: {exc}"

    def stop(self) -> bool:
        """Stop the run in flight, also one still opening the index; False if none."""
        if self._run is None or self._run.done():
            return False
        self._cancel.set()
        return True

    @property
    def stopping(self) -> bool:
        return self._cancel.is_set() and self._run is not None and not self._run.done()

    def activity(self) -> str:
        """One word for a status display: idle, indexing, watching, error or locked.
        `state` stays idle while the watcher runs (scripts and metrics rely on it)."""
        if self.state == "idle" and self._watcher is not None and self._watcher.alive:
            return "watching"
        return self.state

    def status(self) -> dict[str, Any]:
        progress = self._indexer.progress.to_json() if self._indexer is not None else None
        if self.state == "indexing" and progress is None:
            progress = {"phase": "opening", "files_total": 0, "files_done": 0}
        return {
            "state": self.state,
            "activity": self.activity(),
            "stopping": self.stopping,
            "done": progress["files_done"] if progress and self.state == "indexing" else None,
            "total": progress["files_total"] if progress and self.state == "indexing" else None,
            "scope": self.scope,
            "files": self._counts["files"],
            "chunks": self._counts["chunks"],
            "root": str(self.root),
            "progress": progress if self.state == "indexing" else None,
            "last_report": self.last_report,
            "error": self.last_error,
            "open": self.is_open,
            "embedder": self._embedder.id if self._embedder is not None else None,
            "embedder_error": self.embedder_error,
            "watch": self.watch_status(),
            **self.tiers(),
        }

    # --- search -----------------------------------------------------------------------

    async def probe_lock(self) -> bool:
        """Whether another process holds the index file (DuckDB allows one read-write
        process; a second fails even read-only). Sets state "locked" with a message saying
        what to do, or clears it. Only probes an index this service has not opened: DuckDB's
        lock is per process, so our own open file never looks locked."""
        if self.is_open or not self.db_path.exists():
            return False
        locked = await asyncio.to_thread(_locked_by_other_process, self.db_path)
        if locked is not None:
            self.state, self.last_error = "locked", locked
        elif self.state == "locked":
            self.state, self.last_error = "idle", None
        return locked is not None

    async def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        path_glob: str | None = None,
        kinds: list[str] | None = None,
        mode: str = "hybrid",
    ) -> list[Hit]:
        """Hits for `query`; an embedder failure raises (see `find` for the fallback)."""
        hits, _ = await self._search(query, top_k, path_glob, kinds, mode, fallback=False)
        return hits

    async def find(
        self,
        query: str,
        *,
        top_k: int = 10,
        path_glob: str | None = None,
        kinds: list[str] | None = None,
        mode: str = "hybrid",
    ) -> tuple[list[Hit], str | None]:
        """Hits, and why they come from keywords alone when the query could not be embedded
        (None when it was): a hybrid search degrades to BM25 rather than failing."""
        return await self._search(query, top_k, path_glob, kinds, mode, fallback=True)

    async def _search(
        self,
        query: str,
        top_k: int,
        path_glob: str | None,
        kinds: list[str] | None,
        mode: str,
        *,
        fallback: bool,
    ) -> tuple[list[Hit], str | None]:
        from .globs import glob_to_regex

        if path_glob is not None and not path_glob.strip():
            path_glob = None  # an empty filter field: no filter, as before
        if path_glob is not None:
            glob_to_regex(path_glob)  # GlobError now, before the index opens (cached)
        from .store import IndexLockedError

        try:
            await self._ensure_open()
        except IndexLockedError as exc:
            self.state, self.last_error = "locked", str(exc)
            raise IndexBusyError(str(exc)) from exc
        failures: list[BaseException] = []
        hits = await asyncio.to_thread(
            self._searcher.search,
            query,
            top_k,
            mode=mode,
            path_glob=path_glob,
            kinds=kinds,
            on_degraded=failures.append if fallback else None,
        )
        if failures and getattr(failures[0], "keyword_only", False):
            # index_embedder = "none": keywords by choice, not a failing embedder.
            return hits, str(failures[0])
        if failures:
            self.embedder_error = _embedder_problem(failures[0])
            log.warning("RubberDuck: search fell back to keywords: %s", self.embedder_error)
            return hits, self.embedder_error
        if mode != "bm25":
            self.embedder_error = None  # the query embedded: the embedder works again
        return hits, None

    async def file_chunks(self, rel_path: str, *, mtime: float, size: int) -> list[Any] | None:
        """The chunks the index holds for one file (relative posix path), in order, if the
        index holds it as it is on disk (same mtime and size); None otherwise (no index,
        not indexed, stale, locked), so the caller reads the file itself. Never starts an
        indexing run."""
        if not self.index_exists:
            return None
        from .store import IndexLockedError

        try:
            await self._ensure_open()
        except IndexLockedError:
            return None
        store = self._store

        def read() -> list[Any] | None:
            state = store.file_states().get(rel_path)
            if state is None or state.size != size or abs(state.mtime - mtime) > 1e-3:
                return None
            return store.chunks(store.chunk_ids(rel_path)) or None

        return await asyncio.to_thread(read)

    # --- warm-up ----------------------------------------------------------------------

    async def warm_up(self) -> bool:
        """Does what the first search after a start would do, so the first chat does not
        wait for it: opens the index (DuckDB, the embedder's runtime), loads its snapshot
        and embeds one query (the model's weights). Only for an index that exists: a
        server whose user never indexed keeps torch and the model out of its memory.
        True when it warmed something. Failures are left for the first search to report."""
        if not self.index_exists:
            return False
        from .store import IndexLockedError

        try:
            await self._ensure_open()
        except IndexLockedError:
            return False  # another process holds the file; health says so already
        await asyncio.to_thread(self._warm_blocking)
        if self._tiers["full"] < self._tiers["chunks"] and (self._run is None or self._run.done()):
            # Chunks still without the embedder's vectors (a crash or a stop between tiers):
            # an incremental run embeds exactly those (unchanged files cost a stat each).
            with contextlib.suppress(IndexBusyError, IndexPathError):
                await self.start()
        return True

    def _warm_blocking(self) -> None:
        store, embedder = self._store, self._embedder
        if store is None or embedder is None:
            return
        store.warm_up()
        try:
            embedder.embed_query("warm up")
        except Exception:
            # `none` refuses by design; a provider's embedder may be down: the first real
            # search says which, as it would without the warm-up.
            log.debug("RubberDuck: the embedder's warm-up query failed", exc_info=True)

    # --- freshness --------------------------------------------------------------------

    @property
    def index_exists(self) -> bool:
        return self.is_open or self.db_path.exists()

    def file_saved(self, os_path: str) -> None:
        """Post-save hook: refresh the file soon, if it belongs to an index that exists."""
        path = Path(os_path).resolve()
        if not path.is_relative_to(self.root) or not self.index_exists:
            return
        if not self.in_scope(path):
            return  # outside the folders chosen to index
        if self._on_files_changed is not None:
            self._on_files_changed([path], "saved")
        self._queue_refresh({path}, rescan=False)

    def _queue_refresh(self, paths: set[Path], *, rescan: bool) -> None:
        self._pending_saves |= paths
        self._pending_rescan = self._pending_rescan or rescan
        loop = asyncio.get_running_loop()
        if self._save_timer is not None:
            self._save_timer.cancel()
        self._save_timer = loop.call_later(self.debounce_s, self._start_refresh)

    def _start_refresh(self) -> None:
        self._save_timer = None
        if self._refresh is not None and not self._refresh.done():
            # One refresh at a time; the files changed meanwhile go in the next one.
            self._save_timer = asyncio.get_running_loop().call_later(
                self.debounce_s, self._start_refresh
            )
            return
        paths, self._pending_saves = sorted(self._pending_saves), set()
        rescan, self._pending_rescan = self._pending_rescan, False
        if self._spawn is None:
            self._refresh = asyncio.get_running_loop().create_task(
                self._refresh_files(paths, rescan)
            )
        else:
            # Supervised: a crash outside the refresh's own error handling re-runs it with
            # the same paths, after a backoff; health counts the restarts.
            self._refresh = self._spawn(
                "index_refresh", partial(self._refresh_files, paths, rescan)
            )

    async def _refresh_files(self, paths: list[Path], rescan: bool = False) -> None:
        if self.state == "locked" and await self.probe_lock():
            # Another server holds the index (health says which); it sees the same files
            # change. Nothing to do here, and nothing to log at every save.
            log.debug("RubberDuck: index locked by another process; %d change(s) left", len(paths))
            self.refreshes += 1
            return
        started = time.perf_counter()
        try:
            await self._ensure_open()
            indexer = await asyncio.to_thread(self._new_indexer)
            indexed = await asyncio.to_thread(self._refresh_blocking, indexer, paths, rescan)
            log.debug(
                "RubberDuck refreshed %d file(s) in %.2f s",
                indexed,
                time.perf_counter() - started,
            )
            self._announce_indexed()
        except Exception as exc:
            from .store import IndexLockedError

            if isinstance(exc, IndexLockedError):
                self.state, self.last_error = "locked", str(exc)
                log.warning("RubberDuck: the index is locked by another process: %s", exc)
            else:
                log.exception("RubberDuck could not refresh %s", [str(p) for p in paths])
        finally:
            self.refreshes += 1

    def _refresh_blocking(self, indexer: Any, paths: list[Path], rescan: bool) -> int:
        if rescan:
            # A .gitignore changed: a full incremental pass adds what it now lets in and
            # drops what it now excludes (unchanged files cost a stat each).
            report = indexer.index_folder(self.root, self._scope_roots(self.scope))
            self._refresh_counts()
            return int(report.files_indexed)
        # A folder that appeared (created, moved in, checked out) gets one event: walk it.
        folders = {p for p in paths if p.is_dir() and not p.is_symlink()}
        files = [p for p in paths if p not in folders]
        try:
            return self._refresh_paths(indexer, files, folders)
        finally:
            self._refresh_counts()

    def _refresh_paths(self, indexer: Any, files: list[Path], folders: set[Path]) -> int:
        indexed = 0
        if files:
            indexed += indexer.index_files(self.root, files).files_indexed
        if folders:
            indexed += indexer.index_folder(self.root, sorted(folders)).files_indexed
        return indexed

    # --- the file watcher -------------------------------------------------------------

    def watch(self, *, force_polling: bool = False, poll_delay_ms: int | None = None) -> None:
        """Also refresh files changed outside Jupyter: starts the watcher now if an index
        exists, else once the first one is built. Call from the event loop."""
        self._watch_wanted = True
        self._watch_options = {"force_polling": force_polling}
        if poll_delay_ms:
            self._watch_options["poll_delay_ms"] = poll_delay_ms
        self._loop = asyncio.get_running_loop()
        self._start_watcher_if_indexed()

    def _start_watcher_if_indexed(self) -> None:
        if not self._watch_wanted or not self.index_exists:
            return
        if self._watcher is not None and self._watcher.alive:
            return
        from .watcher import TreeWatcher

        self._loop = asyncio.get_running_loop()
        self._watcher = TreeWatcher(self.root, self._changes_seen, **self._watch_options)
        self._watcher.start()

    def _changes_seen(self, paths: set[Path], rescan: bool) -> None:
        """Called in the watcher's thread: hand the burst to the event loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # The loop may close between the check and the call when the server stops.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._queue_changes, paths, rescan)

    def _queue_changes(self, paths: set[Path], rescan: bool) -> None:
        if self._watcher is None:
            return  # stopped meanwhile
        paths = {p for p in paths if self.in_scope(p.resolve())}
        if paths and self._on_files_changed is not None:
            self._on_files_changed(sorted(paths), "changed")
        if paths or rescan:
            self._queue_refresh(paths, rescan=rescan)

    @property
    def refresh_idle(self) -> bool:
        """No change waiting for its debounce and no refresh running."""
        return self._save_timer is None and (self._refresh is None or self._refresh.done())

    @property
    def watcher(self) -> Any:
        return self._watcher

    def watch_status(self) -> dict[str, Any]:
        if not self._watch_wanted:
            return {"state": "off"}
        if self._watcher is None:
            return {"state": "waiting for an index"}
        return self._watcher.status()

    async def _stop_watcher(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await asyncio.to_thread(watcher.stop)

    async def close(self) -> None:
        self._watch_wanted = False
        await self._stop_watcher()
        self.stop()
        if self._save_timer is not None:
            self._save_timer.cancel()
        for task in (self._run, self._refresh):
            if task is not None and not task.done():
                try:
                    await asyncio.wait_for(asyncio.shield(task), 10)
                except Exception:
                    task.cancel()
        if self._store is not None:
            await asyncio.to_thread(self._store.close)
            self._store = None


def _embedder_problem(exc: BaseException) -> str:
    """What a user reads when the embedder failed: its own message for ours (they say what
    to do), a hint for a missing or broken local model."""
    from .embedder_config import EmbedderError

    if isinstance(exc, EmbedderError):
        return str(exc)
    if isinstance(exc, ImportError):
        return (
            f"the embedding model cannot load ({exc}); install it with "
            "pip install 'rubberduck-jupyter[embed]'"
        )
    return f"the embedding model failed ({type(exc).__name__}: {exc})"[:300]


def _locked_by_other_process(db_path: Path) -> str | None:
    """IndexLockedError's message if another process holds `db_path`, else None."""
    import duckdb

    from .store import IndexLockedError

    try:
        duckdb.connect(str(db_path), read_only=True).close()
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            return str(IndexLockedError(db_path, str(exc)))
    except duckdb.Error:
        return None  # not ours to diagnose here: opening it for real reports it
    return None
