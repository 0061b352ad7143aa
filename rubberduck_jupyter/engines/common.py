"""Pieces several engines share: retrieval with citations, reading the code a message is
about, and the answer given when no model is configured."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ..context.retrieval import NO_INDEX, Citation
from ..domain.actions import ActionError, ProjectFiles, TargetMissing
from ..protocol import NoticeCode
from .base import NO_MODEL_NOTICE, Turn

MAX_TARGET_CHARS = 60_000
# A search query longer than this says nothing more: the embedders read 256 tokens (~1,000
# characters) and BM25 favours a few rare terms; a 100k-character query only costs time.
MAX_QUERY_CHARS = 2_000
# A path starts where a run of path characters starts (the lookbehind), and is bounded:
# without both, a long word costs n^2 steps as every position rescans it.
_PATH_RE = re.compile(r"(?<![\w./\-])[\w./\-]{1,255}\.(?:py|ipynb)\b")


async def retrieve(
    turn: Turn, query: str, *, kinds: Collection[str] | None = None, top_k: int = 4
) -> list[Citation]:
    """Searches the project index (when there is one) and shows what was found; says once
    per user when the index is missing or broken or its search fell back to keywords."""
    if turn.retriever is None:
        return []
    first = len(turn.citations) + 1
    query = query[:MAX_QUERY_CHARS]
    found = await turn.retriever.lookup(
        query, user=turn.user.name, top_k=top_k, kinds=kinds, first_n=first
    )
    # Without a model the answer is the search itself, and says there is no index.
    if found.notice is not None and (turn.has_model or found.notice[0] != NO_INDEX):
        await turn.notice(*found.notice)
    await turn.cite(found.citations)
    return found.citations


async def say_no_model(turn: Turn) -> None:
    await turn.notice(NoticeCode.NO_MODEL, NO_MODEL_NOTICE)


def clip_middle(text: str, limit: int) -> str:
    """`text` in at most `limit` characters: the head and the tail (where a message's
    question and a step's conclusion usually are), with a marker saying what was cut."""
    if len(text) <= limit:
        return text
    marker = f"\n\n[… {len(text) - limit} characters left out …]\n\n"
    if limit <= len(marker):
        return text[:limit]
    keep = max(0, limit - len(marker))
    head = keep * 2 // 3
    return text[:head] + marker + text[len(text) - (keep - head) :]


def sources_markdown(citations: Sequence[Citation], *, snippet_lines: int = 6) -> str:
    if not citations:
        return ""
    blocks = []
    for c in citations:
        head = f"**[{c.n}] {c.location}**" + (f" — {c.title}" if c.title else "")
        lines = c.text.strip().splitlines()[:snippet_lines]
        lang = "python" if c.kind in ("code_cell", "function", "class", "method", "module") else ""
        blocks.append(f"{head}\n\n```{lang}\n" + "\n".join(lines) + "\n```")
    return "\n\n".join(blocks)


async def answer_from_retrieval(turn: Turn, citations: Sequence[Citation]) -> None:
    await say_no_model(turn)
    if citations:
        await turn.answer(
            "The most relevant places in your project for this question:\n\n"
            + sources_markdown(citations)
        )
    elif turn.retriever is not None and turn.retriever.available:
        await turn.answer("Nothing in the project index matches this question.")
    else:
        await turn.answer(
            "The project is not indexed yet, so there is nothing to search either. Index it "
            "with Index this project (the notice above, the sidebar, or the index status item "
            "in the status bar) or `jupyter rubberduck index` to get answers from your own "
            "notebooks and code."
        )


@dataclass(frozen=True)
class CodeTarget:
    """A piece of code a message is about: a cell, a selection, a file."""

    label: str  # how answers name it: "the active cell", "src/io.py"
    source: str
    path: str | None = None
    cell_index: int | None = None
    cell_id: str | None = None
    is_selection: bool = False

    @property
    def replaceable(self) -> bool:
        """A suggestion may replace it whole: a cell, or a whole (untruncated) code file."""
        if self.is_selection:
            return False
        if self.cell_index is not None or self.cell_id is not None or self.path is None:
            return True
        return not self.path.endswith(".ipynb") and len(self.source) < MAX_TARGET_CHARS


def _read_project_file(files: ProjectFiles, rel: str) -> tuple[str | None, str | None]:
    """A named file's code (a notebook's code cells, marked `# In[i]`), or why it is not
    read: (code, None), (None, reason), or (None, None) when no such file exists (a word
    that only looks like a path)."""
    try:
        code_file = files.read(rel)
    except TargetMissing:
        return None, None
    except ActionError as exc:
        return None, str(exc)
    if code_file.language != "notebook":
        return code_file.text, None
    import nbformat

    try:
        nb = nbformat.reads(code_file.text, as_version=4)
    except Exception:
        return None, f"`{rel}` is not a valid notebook"
    cells = [
        f"# In[{i}]\n{cell.source}" for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
    ]
    return "\n\n".join(cells), None


async def code_targets(turn: Turn, text: str) -> list[CodeTarget]:
    """What the message is about: the selection, else files it names, else the active cell.
    A named file the project's rules refuse (outside the root, hidden, .env, keys, binary,
    too large) is never read; the user is told why in a notice."""
    ctx = turn.context
    targets: list[CodeTarget] = []
    if ctx.selection and ctx.selection.strip():
        targets.append(
            CodeTarget("the selected code", ctx.selection, ctx.notebook_path, is_selection=True)
        )
    if turn.files is not None:
        for rel in dict.fromkeys(_PATH_RE.findall(text)):
            source, refusal = await asyncio.to_thread(_read_project_file, turn.files, rel)
            if refusal is not None:
                await turn.notice(NoticeCode.FILE_REFUSED, refusal)
            if source is not None:
                targets.append(CodeTarget(rel, source[:MAX_TARGET_CHARS], rel))
    if not targets and ctx.active_cell and ctx.active_cell.strip():
        label = "the active cell"
        if ctx.cell_index is not None:
            label += f" (cell {ctx.cell_index})"
        targets.append(
            CodeTarget(label, ctx.active_cell, ctx.notebook_path, ctx.cell_index, ctx.cell_id)
        )
    return targets


def first_code_block(markdown: str) -> str | None:
    from ..review.cells import extract_code_blocks

    blocks = [b for b in extract_code_blocks(markdown) if b.lang in ("python", "py", "")]
    return blocks[0].code if blocks else None


def known_names(turn: Turn) -> list[str]:
    return [v.name for v in turn.context.variables]
