"""Domain records. Plain frozen dataclasses: storage and transport convert them, nothing
here knows about SQLite, Tornado or the wire."""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def content_hash(text: str) -> str:
    """What a suggestion remembers of its target, to refuse applying onto a changed one."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class ContextType(StrEnum):
    """What a conversation is about; set by the first routed turn, shown in the list."""

    QUESTION = "question"
    CODE_REVIEW = "code_review"
    BUG_FIX = "bug_fix"
    FEATURE_REQUEST = "feature_request"


class MessageStatus(StrEnum):
    PENDING = "pending"  # a user message waiting for (or getting) its answer
    ANSWERED = "answered"  # a user message whose turn ended (with an answer or an error)
    COMPLETE = "complete"  # an assistant answer that ended normally
    INCOMPLETE = "incomplete"  # cut off mid-stream or cancelled; the part kept
    ERROR = "error"  # an assistant record of a failed turn


class SuggestionStatus(StrEnum):
    PROPOSED = "proposed"
    APPLIED = "applied"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class User:
    name: str  # the identity RubberDuck keys everything by (see sessions.identity)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a user needs a name")


@dataclass(frozen=True, slots=True)
class Project:
    """A folder the assistant works on: on a Jupyter server, its root.

    `members`: who besides the owner may work on it; None means every user the Jupyter
    server itself lets in (its authorizer already guards the files).
    """

    id: str
    root: str
    owner: str
    members: frozenset[str] | None = None

    @classmethod
    def for_root(cls, root: str, owner: str, members: frozenset[str] | None = None) -> Project:
        digest = hashlib.sha1(root.encode()).hexdigest()[:12]
        return cls(id=f"project-{digest}", root=root, owner=owner, members=members)


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    user: str
    project_id: str
    title: str = "New conversation"
    context_type: ContextType = ContextType.QUESTION
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    summary: str = ""  # what older turns said, once they no longer fit the window
    summary_upto: int = 0  # how many remembered messages `summary` covers, oldest first
    task: dict[str, Any] | None = None  # multi-step task state, when one is running

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["context_type"] = str(self.context_type)
        return out

    def with_changes(self, **changes: Any) -> Conversation:
        return replace(self, updated_at=time.time(), **changes)


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    conversation_id: str
    seq: int  # order within the conversation, from 0
    role: str  # "user" or "assistant"
    content: str
    turn_id: str  # the chat frame's id: the user message and its answer share it
    status: MessageStatus = MessageStatus.COMPLETE
    engine: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # route, citations, usage, model, ...
    created_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = str(self.status)
        return out


@dataclass(frozen=True, slots=True)
class CodeFile:
    """A file of the project, read at one moment; `hash` pins that moment."""

    path: str  # relative to the project root, POSIX separators
    text: str

    @property
    def hash(self) -> str:
        return content_hash(self.text)

    @property
    def language(self) -> str:
        if self.path.endswith(".ipynb"):
            return "notebook"
        if self.path.endswith(".py"):
            return "python"
        if self.path.endswith((".js", ".ts", ".mjs", ".tsx", ".jsx")):
            return "javascript"
        return "text"


@dataclass(frozen=True, slots=True)
class SuggestionTarget:
    """Where a suggestion applies: a whole file, or one cell of a notebook."""

    path: str | None  # None: the active cell of an unsaved or unnamed notebook
    cell_index: int | None = None
    cell_id: str | None = None

    @property
    def is_cell(self) -> bool:
        return self.cell_index is not None or self.cell_id is not None


@dataclass(frozen=True, slots=True)
class CodeSuggestion:
    id: str
    user: str
    conversation_id: str
    message_id: str
    target: SuggestionTarget
    original: str  # the target's text when the suggestion was made
    proposed: str
    title: str = ""
    # or "insert_after": a new code cell below the target cell; "insert_markdown_after": a
    # new Markdown cell there
    mode: str = "replace"
    status: SuggestionStatus = SuggestionStatus.PROPOSED
    created_at: float = field(default_factory=time.time)
    resolved_at: float | None = None

    @property
    def base_hash(self) -> str:
        return content_hash(self.original)

    def diff(self) -> str:
        import difflib

        name = self.target.path or "cell"
        # A %duck suggestion knows its cell by id only (a kernel cannot see positions).
        cell = "" if self.target.cell_index is None else f" {self.target.cell_index}"
        if self.target.is_cell and self.mode == "insert_after":
            name += f" [new cell after cell{cell}]"
        elif self.target.is_cell and self.mode == "insert_markdown_after":
            name += f" [new Markdown cell after cell{cell}]"
        elif self.target.is_cell:
            name += f" [cell{cell}]"
        # Lines without their endings, joined by "\n": a cell's last line has no newline,
        # and difflib would otherwise glue it to the next line of the diff.
        return "\n".join(
            difflib.unified_diff(
                self.original.splitlines(),
                self.proposed.splitlines(),
                fromfile=f"a/{name}",
                tofile=f"b/{name}",
                lineterm="",
            )
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "message_id": self.message_id,
            "title": self.title,
            "mode": self.mode,
            "status": str(self.status),
            "target": asdict(self.target),
            "base_hash": self.base_hash,
            "original": self.original,
            "proposed": self.proposed,
            "diff": self.diff(),
            "created_at": self.created_at,
            "resolved_at": self.resolved_at,
        }
