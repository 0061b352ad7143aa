"""Notices files changed outside Jupyter (git checkout, an editor, a script) and reports
the ones the index cares about.

watchfiles (Rust `notify`: inotify on Linux, FSEvents on macOS) runs in a daemon thread,
never on the server's event loop. Every event is first judged by the discovery rules that
need no disk access (hidden parts, .git/, node_modules, .ipynb_checkpoints, secret names,
file kinds) and then by .gitignore (each file read once), so the churn of ignored folders
never reaches the indexer. When the system refuses native watching (inotify's watch limit
on a huge tree, a file system without notifications), it falls back to polling.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .discovery import INDEXED_SUFFIXES, GitIgnoreRules, excluded_by_name

log = logging.getLogger(__name__)

# watchfiles' change kinds (watchfiles.Change), kept here so the filter needs no import.
ADDED, MODIFIED, DELETED = 1, 2, 3
# Notify groups a burst of events; the service debounces again over its own window.
NOTIFY_DEBOUNCE_MS = 400
NOTIFY_STEP_MS = 50
# How often the thread wakes up with nothing to report, to notice a stop request.
NOTIFY_TIMEOUT_MS = 1000
DEFAULT_POLL_DELAY_MS = 2000

ChangesCallback = Callable[[set[Path], bool], None]


@dataclass
class WatchStats:
    events: int = 0  # everything notify reported
    relevant: int = 0  # what passed the filter and went to the index
    batches: int = 0


class ChangeFilter:
    """Which reported paths may matter to the index; cheap checks first."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._prefix = os.path.join(str(self.root), "")
        self.rules = GitIgnoreRules(self.root)

    def _rel(self, path: str) -> str | None:
        # String work, not pathlib: this runs for every event of every ignored folder.
        if not path.startswith(self._prefix):
            return None
        rel = path[len(self._prefix) :]
        if os.sep != "/":
            rel = rel.replace(os.sep, "/")
        return rel or None

    def gitignore_changed(self, path: str) -> bool:
        """A .gitignore outside excluded folders changes which files belong."""
        rel = self._rel(path)
        if rel is None or rel.rpartition("/")[2] != ".gitignore":
            return False
        folder = rel.rpartition("/")[0]
        return not (folder and excluded_by_name(folder))

    def relevant(self, change: int, path: str) -> bool:
        rel = self._rel(path)
        if rel is None or excluded_by_name(rel):
            return False
        suffix = os.path.splitext(rel.rpartition("/")[2])[1]
        # A folder added, moved in or away comes as one event for the folder itself; other
        # unindexed kinds (data files, editor temporaries) stop here.
        indexed_kind = suffix in INDEXED_SUFFIXES or suffix.lower() in INDEXED_SUFFIXES
        if not indexed_kind and (change == MODIFIED or suffix):
            return False
        is_dir = change != DELETED and os.path.isdir(path)
        return not self.rules.ignores(rel, is_dir)


class TreeWatcher:
    """Watches one folder tree in a daemon thread; calls `on_changes(paths, rescan)` from
    that thread with the relevant paths of each burst (`rescan`: a .gitignore changed)."""

    def __init__(
        self,
        root: Path,
        on_changes: ChangesCallback,
        *,
        force_polling: bool = False,
        poll_delay_ms: int = DEFAULT_POLL_DELAY_MS,
        debounce_ms: int = NOTIFY_DEBOUNCE_MS,
        restart_delay_s: float = 1.0,
        max_restart_delay_s: float = 60.0,
    ) -> None:
        self.root = root.resolve()
        # A failed watch (the root moved away, a notify error) is retried with backoff,
        # supervisor-style, until it works again or the watcher is stopped.
        self.restart_delay_s = restart_delay_s
        self.max_restart_delay_s = max_restart_delay_s
        self.restarts = 0
        self.last_start: float | None = None  # time.time() when watching last began
        self.on_changes = on_changes
        self.force_polling = force_polling
        self.poll_delay_ms = poll_delay_ms
        self.debounce_ms = debounce_ms
        self.state = "stopped"  # starting, watching, stopped, error
        self.backend: str | None = None  # native or polling
        self.error: str | None = None
        self.stats = WatchStats()
        self.filter = ChangeFilter(self.root)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._ready.clear()
        self.state, self.error = "starting", None
        self._thread = threading.Thread(
            target=self._run, name="rubberduck-index-watch", daemon=True
        )
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        """True once events are being watched (registering a big tree takes a while)."""
        return self._ready.wait(timeout) and self.state == "watching"

    def stop(self, timeout: float = 5.0) -> bool:
        """Asks the thread to end and waits for it (blocking); True if it ended."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
        self._thread = None
        if self.state != "error":
            self.state = "stopped"
        return True

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "backend": self.backend,
            "error": self.error,
            "events": self.stats.events,
            "relevant": self.stats.relevant,
            "restarts": self.restarts,
            "last_start": None if self.last_start is None else round(self.last_start, 3),
        }

    # --- the thread ---------------------------------------------------------------------

    def _open(self) -> Any:
        from watchfiles._rust_notify import RustNotify

        if not self.force_polling:
            try:
                notify = RustNotify([str(self.root)], False, False, self.poll_delay_ms, True, True)
                self.backend = "native"
                return notify
            except (OSError, RuntimeError) as exc:
                # inotify's per-user watch limit on a huge tree, or no notifications at all.
                log.warning(
                    "RubberDuck: native file watching of %s failed (%s); polling every %.1f s",
                    self.root,
                    exc,
                    self.poll_delay_ms / 1000,
                )
        notify = RustNotify([str(self.root)], False, True, self.poll_delay_ms, True, True)
        self.backend = "polling"
        return notify

    def _run(self) -> None:
        delay = self.restart_delay_s
        while not self._stop.is_set():
            if self._watch_once():
                delay = self.restart_delay_s  # it ran: a later failure starts over
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self.max_restart_delay_s)
            self.restarts += 1
            log.info("RubberDuck: watching %s again (restart %d)", self.root, self.restarts)

    def _watch_once(self) -> bool:
        """Watches until stopped or until it fails; True if watching got going."""
        try:
            notify = self._open()
        except Exception as exc:
            self._fail(exc)
            return False
        try:
            self.state, self.error = "watching", None
            self.last_start = time.time()
            self._ready.set()
            while not self._stop.is_set():
                raw = notify.watch(self.debounce_ms, NOTIFY_STEP_MS, NOTIFY_TIMEOUT_MS, self._stop)
                if isinstance(raw, str):  # "timeout", "stop", or "signal" (main thread only)
                    continue
                self._deliver(raw)
        except Exception as exc:
            self._fail(exc)
        finally:
            notify.close()
            self._ready.set()
        return True

    def _deliver(self, raw: set[tuple[int, str]]) -> None:
        started = time.perf_counter()
        rescan = any(self.filter.gitignore_changed(path) for _, path in raw)
        if rescan:
            self.filter.rules.clear()  # judge the rest by the new rules
        relevant = {Path(path) for change, path in raw if self.filter.relevant(change, path)}
        self.stats.events += len(raw)
        self.stats.relevant += len(relevant)
        self.stats.batches += 1
        log.debug(
            "RubberDuck watcher: %d event(s), %d relevant, judged in %.1f ms",
            len(raw),
            len(relevant),
            1000 * (time.perf_counter() - started),
        )
        if relevant or rescan:
            self.on_changes(relevant, rescan)

    def _fail(self, exc: BaseException) -> None:
        log.exception("RubberDuck: watching %s for changes failed", self.root)
        self.state = "error"
        self.error = f"{type(exc).__name__}: {exc}"
        self._ready.set()
