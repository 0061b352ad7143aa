"""What the user attached with `@` in the sidebar, turned into labelled prompt blocks.

Three kinds arrive in `ChatContext.mentions` (protocol.Mention):
- variable (`@df`, `@df:values`): the client asked the kernel; the description is taken as
  sent, values only when the user asked for them, and a secret-named variable's values and
  summary never leave (the prompt says they were withheld).
- cell (`@cell:4`): the cell's source as the editor holds it, numbered from 1 like the
  sidebar's list.
- file (`@etl.ipynb`, `@src/x.py`): a path the server resolves here. It must stay inside
  the root with no symlink anywhere on the way (a link is refused even when it points
  inside: what it names can change under us), pass the index's name rules (no `.env`,
  hidden files), and be a regular text file. Its text comes from the index's chunks when
  the index holds the file as it is on disk, else from the file itself, capped.

Everything here then goes through the LLM service's redactor like any other message.
A mention that cannot be attached is not an error of the turn: the prompt says what is
missing and the user gets a `file_refused` notice saying why.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ..domain.file_rules import FileRefused, name_refusal, read_allowed
from ..protocol import Mention
from .redact import REDACTED, is_secret_name

if TYPE_CHECKING:
    from ..index.service import IndexService

# One attached file's text in the prompt: enough for a module or a notebook of ~30 cells,
# small enough that three attachments still leave room for history and the question.
MAX_FILE_CHARS = 12_000
# Read at most this much of a file that is not in the index (a bigger file is refused,
# not read in part: a cut-off notebook is not even JSON).
MAX_FILE_BYTES = 1_000_000
MAX_CELL_CHARS = 12_000
MAX_VALUES_CHARS = 6_000
MAX_COLUMNS_SHOWN = 100

_LANGUAGES = {".py": "python", ".js": "javascript", ".ts": "typescript", ".md": "markdown"}


class MentionRefused(Exception):
    """A file mention that is not attached; the message names the path and the reason."""


@dataclass(frozen=True, slots=True)
class Attachment:
    label: str  # how the user wrote it: "@df", "@src/x.py", "@cell:4"
    kind: str
    text: str  # the prompt block, already labelled and bounded


@dataclass(frozen=True, slots=True)
class Resolved:
    attachments: list[Attachment]
    refusals: list[str]  # one sentence per mention not attached, for the user's notice


def _trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [{len(text) - limit} more characters not attached]"


def _fence(text: str, language: str = "") -> str:
    # A longer fence than any run of backticks inside, so the block cannot be closed early.
    longest = max((len(run) for run in text.split("\n") if set(run) == {"`"}), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language}\n{text}\n{ticks}"


# --- variables and cells (described by the client) ----------------------------------


def describe_variable(mention: Mention) -> Attachment:
    label = f"@{mention.name}" + (":values" if mention.values is not None else "")
    secret = is_secret_name(mention.name)
    lines = [f"[{label}] Kernel variable `{mention.name}`: {mention.type or 'unknown type'}"]
    if mention.shape:
        lines.append("shape: (" + ", ".join(str(n) for n in mention.shape) + ")")
    if mention.columns:
        shown = mention.columns[:MAX_COLUMNS_SHOWN]
        typed = [
            f"{name} ({mention.dtypes[i]})" if i < len(mention.dtypes) else name
            for i, name in enumerate(shown)
        ]
        more = len(mention.columns) - len(shown)
        lines.append("columns: " + ", ".join(typed) + (f", … {more} more" if more > 0 else ""))
    elif mention.dtypes:
        lines.append("dtype: " + ", ".join(mention.dtypes[:MAX_COLUMNS_SHOWN]))
    # The sidebar sends a summary only where there are no columns; the magics' describer
    # puts there what columns and dtypes do not say (index, memory, parameters).
    if mention.summary:
        lines.append("summary: " + (REDACTED if secret else mention.summary))
    if mention.values is not None:
        if secret:
            lines.append(f"values: {REDACTED} (the name marks it as a secret)")
        else:
            lines.append("values:\n" + _fence(_trim(mention.values, MAX_VALUES_CHARS)))
    return Attachment(label, "variable", "\n".join(lines))


def describe_cell(mention: Mention, notebook_path: str | None) -> Attachment:
    label = f"@cell:{mention.cell}"
    where = f" of {notebook_path}" if notebook_path else " of the active notebook"
    kind = mention.cell_type or "code"
    language = "python" if kind == "code" else ("markdown" if kind == "markdown" else "")
    source = _trim(mention.source or "", MAX_CELL_CHARS)
    head = f"[{label}] Cell {mention.cell} ({kind}){where}:"
    return Attachment(label, "cell", head + "\n" + _fence(source, language))


# --- files (resolved by the server) ---------------------------------------------------


def resolve_file(root: Path, rel: str) -> tuple[Path, str, os.stat_result]:
    """The real path of `rel` under `root`, its posix relative path and its stat, or
    MentionRefused. Walks the components with lstat so no symlink is followed at all."""
    root = root.resolve()
    shown = rel if len(rel) <= 80 else rel[:77] + "..."
    if not rel or "\0" in rel:
        raise MentionRefused(f"`{shown}` is not a file name")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or rel.startswith("~"):
        raise MentionRefused(f"`{shown}`: give a path inside the project, relative to its root")
    if any(part == ".." for part in pure.parts):
        raise MentionRefused(f"`{shown}` leads outside the project")
    refusal = name_refusal(pure.as_posix())
    if refusal is not None:
        raise MentionRefused(refusal)
    path = root
    info: os.stat_result | None = None
    for part in pure.parts:
        if part == ".":
            continue
        path = path / part
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            raise MentionRefused(f"`{shown}` does not exist in the project") from None
        except OSError as exc:
            raise MentionRefused(f"`{shown}` cannot be read: {exc.strerror}") from None
        if stat.S_ISLNK(info.st_mode):
            raise MentionRefused(
                f"`{shown}` goes through a symbolic link; RubberDuck attaches only files "
                "that are really inside the project"
            )
    if info is None or not stat.S_ISREG(info.st_mode):
        raise MentionRefused(f"`{shown}` is not a regular file")
    return path, pure.as_posix(), info


def _notebook_text(data: bytes) -> str:
    """A notebook as numbered cells (1-based, like `@cell:N`), outputs left out."""
    try:
        nb = json.loads(data)
        cells = nb["cells"]
    except (ValueError, KeyError, TypeError):
        return data.decode("utf-8", errors="replace")
    blocks = []
    for n, cell in enumerate(cells if isinstance(cells, list) else [], start=1):
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        kind = str(cell.get("cell_type", "code"))
        blocks.append(f"# cell {n} ({kind})\n{text}")
    return "\n\n".join(blocks)


def _read_file(path: Path, rel: str) -> str:
    try:
        data = read_allowed(path, rel, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise MentionRefused(f"`{rel}` does not exist in the project") from None
    except FileRefused as exc:
        raise MentionRefused(str(exc)) from None
    if rel.endswith(".ipynb"):
        return _notebook_text(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise MentionRefused(f"`{rel}` is not a UTF-8 text file") from None


def _chunks_text(chunks: Sequence[Any]) -> str:
    blocks = []
    for chunk in chunks:
        if chunk.cells:
            where = "cell " + ", ".join(str(c + 1) for c in chunk.cells)
        elif chunk.start_line is not None:
            where = f"lines {chunk.start_line}-{chunk.end_line}"
        else:
            where = chunk.kind
        blocks.append(
            f"# {where}" + (f": {chunk.title}" if chunk.title else "") + "\n" + chunk.text
        )
    return "\n\n".join(blocks)


async def describe_file(root: Path, rel: str, index: IndexService | None) -> Attachment:
    path, rel, info = await asyncio.to_thread(resolve_file, root, rel)
    chunks = None
    if index is not None:
        try:
            chunks = await index.file_chunks(rel, mtime=info.st_mtime, size=info.st_size)
        except Exception:  # the index helps, never sinks the attachment
            chunks = None
    if chunks:
        body, source = _chunks_text(chunks), f"from the project index, {len(chunks)} chunks"
    else:
        body, source = await asyncio.to_thread(_read_file, path, rel), "read from disk"
    language = _LANGUAGES.get(Path(rel).suffix, "")
    head = f"[@{rel}] File {rel} ({source}):"
    return Attachment(
        f"@{rel}", "file", head + "\n" + _fence(_trim(body, MAX_FILE_CHARS), language)
    )


async def resolve_mentions(
    mentions: Sequence[Mention],
    *,
    root: Path,
    notebook_path: str | None = None,
    index: IndexService | None = None,
) -> Resolved:
    """Each mention as a labelled prompt block, in order; each refused one as a sentence.
    The same file or cell named twice is attached once."""
    attachments: list[Attachment] = []
    refusals: list[str] = []
    seen: set[tuple[str, str]] = set()
    for mention in mentions:
        key = (mention.kind, mention.name or mention.path or str(mention.cell))
        if key in seen:
            continue
        seen.add(key)
        if mention.kind == "variable":
            attachments.append(describe_variable(mention))
        elif mention.kind == "cell":
            attachments.append(describe_cell(mention, notebook_path))
        else:
            try:
                attachments.append(await describe_file(root, mention.path, index))
            except MentionRefused as exc:
                refusals.append(f"@{mention.path[:80]} was not attached: {exc}")
    return Resolved(attachments, refusals)


def format_attachments(attachments: Sequence[Attachment]) -> str | None:
    """The prompt section: each item under the label the user typed."""
    if not attachments:
        return None
    intro = "Attached by the user with @ (each item starts with its label):"
    return intro + "\n\n" + "\n\n".join(a.text for a in attachments)
