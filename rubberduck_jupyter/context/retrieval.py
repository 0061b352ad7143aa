"""Retrieval from the project index for prompts, with citations the UI can open."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..protocol import NoticeCode

if TYPE_CHECKING:
    from ..index.service import IndexService

log = logging.getLogger(__name__)

# Retrieved text in one prompt, at most; the best hits come first and are kept whole.
MAX_RETRIEVED_CHARS = 8_000


@dataclass(frozen=True, slots=True)
class Citation:
    n: int  # the [n] the prompt and the answer use
    path: str
    kind: str
    cell: int | None
    start_line: int | None
    end_line: int | None
    title: str | None
    score: float
    text: str

    @property
    def location(self) -> str:
        if self.cell is not None:
            return f"{self.path}, cell {self.cell}"
        if self.start_line is not None:
            return f"{self.path}:{self.start_line}-{self.end_line}"
        return self.path

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "path": self.path,
            "kind": self.kind,
            "cell": self.cell,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "title": self.title,
            "score": round(self.score, 4),
        }


# Notice codes of an answer whose retrieval was degraded; each is said once to each user
# while the problem lasts (not on every answer), and again after it cleared and came back.
NO_INDEX = NoticeCode.NO_INDEX
INDEX_UNAVAILABLE = NoticeCode.INDEX_UNAVAILABLE
KEYWORD_ONLY = NoticeCode.KEYWORD_SEARCH_ONLY

NO_INDEX_MESSAGE = (
    "This project has no index yet, so answers do not search your notebooks and files. "
    "Index it with the button below, the index status item at the bottom of the window "
    "(or the sidebar's Index this project), or `jupyter rubberduck index`, to get answers "
    "grounded in your own code."
)


def index_unavailable_message(problem: str) -> str:
    return (
        f"The project index cannot be searched ({problem}), so this answer does not use "
        "it. Health (GET /rubberduck/api/health) shows the index's state."
    )


def keyword_only_message(problem: str) -> str:
    return (
        f"Project search used keywords only: {problem}. Results may miss passages that "
        "say the same thing in other words."
    )


@dataclass(frozen=True, slots=True)
class Retrieved:
    citations: list[Citation]
    # (code, message) when the search was degraded and this user has not been told yet.
    notice: tuple[str, str] | None = None


class Retriever:
    """Searches the index only when one exists: asking never starts a full indexing run.

    Retrieval helps an answer and must never sink it: a missing or broken index gives an
    answer without sources, an embedder that fails gives keyword hits (BM25), and each user
    hears of each problem once (`Retrieved.notice`) until it clears.
    """

    def __init__(self, index: IndexService) -> None:
        self.index = index
        self._told: dict[str, set[str]] = {}  # problem code -> users told while it lasts

    @property
    def available(self) -> bool:
        return self.index.is_open or self.index.db_path.exists()

    async def search(
        self,
        query: str,
        *,
        top_k: int = 5,
        kinds: Collection[str] | None = None,
        first_n: int = 1,
    ) -> list[Citation]:
        return (await self.lookup(query, top_k=top_k, kinds=kinds, first_n=first_n)).citations

    async def lookup(
        self,
        query: str,
        *,
        user: str = "",
        top_k: int = 5,
        kinds: Collection[str] | None = None,
        first_n: int = 1,
    ) -> Retrieved:
        if not query.strip():
            return Retrieved([])
        if not self.available:
            return Retrieved([], self._once(user, NO_INDEX, NO_INDEX_MESSAGE))
        self._clear(NO_INDEX)
        try:
            hits, degraded = await self.index.find(
                query, top_k=top_k, kinds=list(kinds) if kinds else None
            )
        except Exception as exc:
            log.warning("RubberDuck retrieval failed; answering without it", exc_info=True)
            problem = str(exc).strip() or type(exc).__name__
            notice = self._once(user, INDEX_UNAVAILABLE, index_unavailable_message(problem))
            return Retrieved([], notice)
        self._clear(INDEX_UNAVAILABLE)
        notice = None
        if degraded is not None:
            notice = self._once(user, KEYWORD_ONLY, keyword_only_message(degraded))
        else:
            self._clear(KEYWORD_ONLY)
        return Retrieved(self._citations(hits, first_n), notice)

    def _once(self, user: str, code: str, message: str) -> tuple[str, str] | None:
        told = self._told.setdefault(code, set())
        if user in told:
            return None
        told.add(user)
        return code, message

    def _clear(self, code: str) -> None:
        self._told.pop(code, None)

    @staticmethod
    def _citations(hits: Sequence[Any], first_n: int) -> list[Citation]:
        return [
            Citation(
                n=first_n + i,
                path=hit.path,
                kind=hit.kind,
                cell=hit.cell,
                start_line=hit.start_line,
                end_line=hit.end_line,
                title=hit.title,
                score=hit.score,
                text=hit.text,
            )
            for i, hit in enumerate(hits)
        ]


def format_retrieved(citations: Sequence[Citation], limit: int = MAX_RETRIEVED_CHARS) -> str:
    """The prompt block: each source numbered, so the model can cite [n]."""
    blocks: list[str] = []
    used = 0
    for c in citations:
        body = c.text.strip()
        block = f"[{c.n}] {c.location}" + (f" ({c.title})" if c.title else "") + f"\n{body}"
        if blocks and used + len(block) > limit:
            break
        blocks.append(block[:limit])
        used += len(block)
    return "\n\n".join(blocks)
