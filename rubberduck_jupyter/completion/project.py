"""The project's own code for a completion: index chunks, found within a few milliseconds.

The index is searched (BM25 only: no query embedding on the keystroke path) in the index's
worker thread, never on the loop, and only when the index is already open: a completion
never opens it (that loads a model) and never waits for it. If the search is not done
within `budget_s` (10 ms), the completion goes without it, and the search finishes in the
background into a small cache, so the next keystroke in the same code, which asks the same
query, gets its answer at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from .context import Snippet

if TYPE_CHECKING:
    from ..index.service import IndexService

log = logging.getLogger(__name__)

BUDGET_S = 0.010
TOP_K = 3
# Queries remembered: a user's current code asks one query per statement typed.
CACHE_ENTRIES = 64
# Results are kept this long: the index refreshes on save, a minute is fresh enough for
# ghost text.
TTL_S = 60.0


class ProjectSnippets:
    def __init__(self, index: IndexService | None, *, budget_s: float = BUDGET_S) -> None:
        self.index = index
        self.budget_s = budget_s
        self._cache: OrderedDict[str, tuple[float, tuple[Snippet, ...]]] = OrderedDict()
        self._running: dict[str, asyncio.Future[tuple[Snippet, ...]]] = {}

    @property
    def ready(self) -> bool:
        return self.index is not None and self.index.is_open

    async def find(self, query: str, *, exclude_path: str = "") -> tuple[Snippet, ...]:
        """Snippets for `query` if they can be had within the budget, else ()."""
        if not query or not self.ready:
            return ()
        now = time.monotonic()
        cached = self._cache.get(query)
        if cached is not None and now - cached[0] < TTL_S:
            self._cache.move_to_end(query)
            return _without(cached[1], exclude_path)
        future = self._running.get(query)
        if future is None:
            future = asyncio.ensure_future(self._search(query))
            self._running[query] = future
            future.add_done_callback(lambda f, q=query: self._store(q, f))
        done, _ = await asyncio.wait({future}, timeout=self.budget_s)
        if not done or future.cancelled() or future.exception() is not None:
            return ()
        return _without(future.result(), exclude_path)

    async def _search(self, query: str) -> tuple[Snippet, ...]:
        assert self.index is not None
        hits, _ = await self.index.find(query, top_k=TOP_K + 2, mode="bm25")
        return tuple(_snippet(h) for h in hits)

    def _store(self, query: str, future: asyncio.Future[tuple[Snippet, ...]]) -> None:
        self._running.pop(query, None)
        if future.cancelled():
            return
        if future.exception() is not None:
            log.debug("RubberDuck: a completion's project search failed: %s", future.exception())
            return
        self._cache[query] = (time.monotonic(), future.result())
        self._cache.move_to_end(query)
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)


def _snippet(hit: Any) -> Snippet:
    if hit.cell is not None:
        location = f"{hit.path}, cell {hit.cell}"
    elif hit.start_line is not None:
        location = f"{hit.path}:{hit.start_line}-{hit.end_line}"
    else:
        location = hit.path
    return Snippet(path=hit.path, location=location, text=hit.text.strip())


def _without(snippets: tuple[Snippet, ...], path: str) -> tuple[Snippet, ...]:
    # The current notebook's own cells are already in the context.
    kept = tuple(s for s in snippets if not path or s.path != path)
    return kept[:TOP_K]
