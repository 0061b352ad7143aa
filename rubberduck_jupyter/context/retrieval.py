"""Retrieval from the project index for prompts, with citations the UI can open."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


class Retriever:
    """Searches the index only when one exists: asking never starts a full indexing run."""

    def __init__(self, index: IndexService) -> None:
        self.index = index

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
        if not self.available or not query.strip():
            return []
        try:
            hits = await self.index.search(query, top_k=top_k, kinds=list(kinds) if kinds else None)
        except Exception:  # retrieval helps an answer; its failure must not sink it
            log.warning("RubberDuck retrieval failed; answering without it", exc_info=True)
            return []
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
