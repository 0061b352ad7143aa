"""Conversations, messages, suggestions and preferences on disk: one SQLite file per server.

SQLite rather than DuckDB here: this is many tiny transactional writes (a message, a status)
with reads by key, which is what SQLite's B-trees and WAL are built for, and a second
process (the CLI, a test reading the file) may open it while the server runs; DuckDB would
refuse that with a lock error. Measured in benchmarks/conversation_store.py.

Blocking: the server calls it through `AsyncConversationStore`, which runs every call on
one dedicated thread, so writes are serialized and the event loop never waits on disk.

Durability: the question is stored (pending) before anything else; while its answer streams,
the session saves what was said so far as an assistant row in status pending
(`save_partial`, every couple of seconds); the end of the turn writes the final answer and
marks the question answered in one transaction (`finish_answer`). After a crash,
`close_unanswered` at the next start turns a saved partial answer into an incomplete one
carrying an "interrupted" error, or, if nothing had been saved, adds an error record; both
say to send the question again.

A second server on the same file: SQLite in WAL mode lets both read and write (each
transaction is short; `busy_timeout` covers the rest), so conversations are shared. Every
server holds a shared `flock` on `<file>.lock`; only one that can take it exclusively at
start is alone, and only then may it close unanswered questions: with another server alive,
a pending question may be one that server is answering right now.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from ..domain.models import (
    CodeSuggestion,
    ContextType,
    Conversation,
    Message,
    MessageStatus,
    SuggestionStatus,
    SuggestionTarget,
)

# 2: a cut-off answer is marked by its status only (version 1 also appended the text below).
SCHEMA_VERSION = 2
T = TypeVar("T")

# What schema 1 appended to the text of a cut-off answer; _migrate strips it from old rows so
# every reader (sidebar, export, the model's history) sees only what the model said.
_V1_CUT_OFF_SUFFIX = "\n\n[answer cut off]"
INTERRUPTED = "interrupted"  # the error code of a turn a server stop cut short

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    project_id TEXT NOT NULL,
    title TEXT NOT NULL,
    context_type TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    summary_upto INTEGER NOT NULL DEFAULT 0,
    task TEXT
);
CREATE INDEX IF NOT EXISTS conversations_by_user ON conversations (user, updated_at);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    status TEXT NOT NULL,
    engine TEXT,
    meta TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    UNIQUE (conversation_id, seq)
);
CREATE TABLE IF NOT EXISTS suggestions (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    target_path TEXT,
    target_cell_index INTEGER,
    target_cell_id TEXT,
    original TEXT NOT NULL,
    proposed TEXT NOT NULL,
    title TEXT NOT NULL,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    resolved_at REAL
);
CREATE INDEX IF NOT EXISTS suggestions_by_conversation ON suggestions (conversation_id);
CREATE TABLE IF NOT EXISTS preferences (user TEXT PRIMARY KEY, data TEXT NOT NULL);
"""


class ConversationStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._con = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._con.row_factory = sqlite3.Row
        # WAL + NORMAL: a commit survives a crash of the server process (only a power cut
        # may lose the last commits), and readers in other processes never block writers.
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=NORMAL")
        self._con.execute("PRAGMA foreign_keys=ON")
        self._con.execute("PRAGMA busy_timeout=5000")
        self._con.executescript(_SCHEMA)
        try:
            with self._tx() as con:
                self._migrate(con)
        except Exception:
            self._con.close()  # refused (a newer schema): leave no handle on the file
            raise
        self._server_lock: int | None = None  # the fd of `<file>.lock` once claimed
        self.shared = False  # another server had the file open when this one claimed it

    @staticmethod
    def _migrate(con: sqlite3.Connection) -> None:
        """Brings an older file up to SCHEMA_VERSION; refuses a file from a newer release."""
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row["value"]) if row is not None else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"conversation store schema {version} is newer than this RubberDuck "
                f"(schema {SCHEMA_VERSION}): upgrade rubberduck-jupyter to open it"
            )
        if version < 2:
            # substr, not replace(): only the suffix goes, the same words inside the text stay.
            con.execute(
                "UPDATE messages SET content = substr(content, 1, length(content) - ?) "
                "WHERE status = ? AND substr(content, -?) = ?",
                (
                    len(_V1_CUT_OFF_SUFFIX),
                    str(MessageStatus.INCOMPLETE),
                    len(_V1_CUT_OFF_SUFFIX),
                    _V1_CUT_OFF_SUFFIX,
                ),
            )
        con.execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )

    def close(self) -> None:
        with self._lock:
            self._con.close()
            if self._server_lock is not None:
                os.close(self._server_lock)  # releases the flock
                self._server_lock = None

    def claim_for_server(self) -> bool:
        """Registers this process as a server using the file; True if it is the only one.

        The flock is released by the kernel when the process dies, kill -9 included, so a
        crashed server never looks alive. Idempotent.
        """
        if self._server_lock is None:
            try:
                fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                # No lock file possible (a read-only folder): behave as before the lock
                # existed, as the only server, rather than refuse to start.
                return True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.shared = False
            except BlockingIOError:
                self.shared = True
            # Shared from now on: a server that starts later sees this one as alive.
            fcntl.flock(fd, fcntl.LOCK_SH)
            self._server_lock = fd
        return not self.shared

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                yield self._con
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")

    # --- conversations --------------------------------------------------------------------

    def create_conversation(self, conversation: Conversation) -> Conversation:
        with self._tx() as con:
            con.execute(
                "INSERT INTO conversations (id, user, project_id, title, context_type, "
                "created_at, updated_at, summary, summary_upto, task) "
                "VALUES (:id, :user, :project_id, :title, :context_type, :created_at, "
                ":updated_at, :summary, :summary_upto, :task)",
                _conversation_params(conversation),
            )
        return conversation

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        with self._lock:
            row = self._con.execute(
                "SELECT * FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
        return _conversation(row) if row else None

    def update_conversation(self, conversation: Conversation) -> Conversation:
        with self._tx() as con:
            con.execute(
                "UPDATE conversations SET title = :title, context_type = :context_type, "
                "updated_at = :updated_at, summary = :summary, summary_upto = :summary_upto, "
                "task = :task WHERE id = :id",
                _conversation_params(conversation),
            )
        return conversation

    def change_conversation(self, conversation_id: str, changes: dict[str, Any]) -> bool:
        """Sets some of a conversation's own fields (and `updated_at`) in one UPDATE, without
        reading it first: a turn changing its summary keeps a title renamed meanwhile.
        False when there is no such conversation (deleted meanwhile)."""
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise ValueError(f"conversations have no changeable field {sorted(unknown)[0]!r}")
        params = {**_conversation_params_of(changes), "updated_at": time.time()}
        columns = ", ".join(f"{name} = :{name}" for name in params)
        with self._tx() as con:
            cur = con.execute(
                f"UPDATE conversations SET {columns} WHERE id = :id",
                {**params, "id": conversation_id},
            )
        return cur.rowcount > 0

    def delete_conversation(self, conversation_id: str) -> bool:
        with self._tx() as con:
            cur = con.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        return cur.rowcount > 0

    def list_conversations(self, user: str) -> list[dict[str, Any]]:
        """The user's conversations, newest first, each with its message count and a preview."""
        with self._lock:
            rows = self._con.execute(
                "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) "
                "AS n_messages, (SELECT substr(content, 1, 120) FROM messages m "
                "WHERE m.conversation_id = c.id AND m.role = 'user' ORDER BY seq DESC LIMIT 1) "
                "AS last_question FROM conversations c WHERE c.user = ? "
                "ORDER BY c.updated_at DESC",
                (user,),
            ).fetchall()
        out = []
        for row in rows:
            item = _conversation(row).to_json()
            item.pop("summary", None)
            item["n_messages"] = row["n_messages"]
            item["last_question"] = row["last_question"]
            out.append(item)
        return out

    # --- messages -------------------------------------------------------------------------

    def add_message(self, message: Message) -> Message:
        """Stores the message with the next `seq` of its conversation and returns it."""
        with self._tx() as con:
            return self._insert(con, message)

    def set_message_status(self, message_id: str, status: MessageStatus) -> None:
        with self._tx() as con:
            con.execute("UPDATE messages SET status = ? WHERE id = ?", (str(status), message_id))

    def messages(self, conversation_id: str) -> list[Message]:
        with self._lock:
            rows = self._con.execute(
                "SELECT * FROM messages WHERE conversation_id = ? ORDER BY seq",
                (conversation_id,),
            ).fetchall()
        return [_message(row) for row in rows]

    def save_partial(self, message: Message) -> bool:
        """What an answer has said so far, while it streams: inserted on the first save
        (taking the conversation's next seq), updated after. Never overwrites a row that is
        no longer pending, so a late save cannot undo the final answer. True if written."""
        with self._tx() as con:
            updated = con.execute(
                "UPDATE messages SET content = ?, engine = ?, meta = ? WHERE id = ? AND status = ?",
                (
                    message.content,
                    message.engine,
                    json.dumps(message.meta),
                    message.id,
                    str(MessageStatus.PENDING),
                ),
            ).rowcount
            if updated:
                return True
            if con.execute("SELECT 1 FROM messages WHERE id = ?", (message.id,)).fetchone():
                return False  # already final
            self._insert(con, replace(message, status=MessageStatus.PENDING))
        return True

    def finish_answer(self, message: Message, question_id: str) -> Message:
        """The turn's final answer (replacing a saved partial one, keeping its place) and
        the question marked answered, in one transaction: a crash between the two would
        otherwise leave an answered question looking unanswered."""
        with self._tx() as con:
            row = con.execute("SELECT seq FROM messages WHERE id = ?", (message.id,)).fetchone()
            if row is None:
                stored = self._insert(con, message)
            else:
                stored = replace(message, seq=int(row["seq"]))
                con.execute(
                    "UPDATE messages SET content = ?, status = ?, engine = ?, meta = ?, "
                    "created_at = ? WHERE id = ?",
                    (
                        stored.content,
                        str(stored.status),
                        stored.engine,
                        json.dumps(stored.meta),
                        stored.created_at,
                        stored.id,
                    ),
                )
            con.execute(
                "UPDATE messages SET status = ? WHERE id = ?",
                (str(MessageStatus.ANSWERED), question_id),
            )
        return stored

    def _insert(self, con: sqlite3.Connection, message: Message) -> Message:
        row = con.execute(
            "SELECT coalesce(max(seq) + 1, 0) FROM messages WHERE conversation_id = ?",
            (message.conversation_id,),
        ).fetchone()
        stored = replace(message, seq=int(row[0]))
        con.execute(
            "INSERT INTO messages (id, conversation_id, seq, role, content, turn_id, "
            "status, engine, meta, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                stored.id,
                stored.conversation_id,
                stored.seq,
                stored.role,
                stored.content,
                stored.turn_id,
                str(stored.status),
                stored.engine,
                json.dumps(stored.meta),
                stored.created_at,
            ),
        )
        con.execute(
            "UPDATE conversations SET updated_at = ? WHERE id = ?",
            (time.time(), stored.conversation_id),
        )
        return stored

    def close_unanswered(self, note: str) -> int:
        """At start: turns that never ended (the server stopped mid-turn) are closed so the
        user sees them and can resend. A partial answer saved while streaming becomes an
        incomplete answer with an "interrupted" error saying `note`; a question with nothing
        saved gets an error record saying `note`. Returns how many questions were closed.

        Skipped (returns 0) while another server uses the file: its pending questions may be
        ones it is answering right now (see claim_for_server)."""
        if not self.claim_for_server():
            return 0
        error = {"code": INTERRUPTED, "message": note}
        with self._tx() as con:
            questions = con.execute(
                "SELECT id, conversation_id, turn_id FROM messages "
                "WHERE role = 'user' AND status = ?",
                (str(MessageStatus.PENDING),),
            ).fetchall()
            # By conversation and turn: turn ids are the client's and may repeat elsewhere.
            partials = {
                (row["conversation_id"], row["turn_id"]): row
                for row in con.execute(
                    "SELECT id, conversation_id, turn_id, content, meta FROM messages "
                    "WHERE role = 'assistant' AND status = ?",
                    (str(MessageStatus.PENDING),),
                ).fetchall()
            }
            for row in partials.values():
                meta = {**json.loads(row["meta"]), "error": error, INTERRUPTED: True}
                meta.pop("partial", None)
                con.execute(
                    "UPDATE messages SET content = ?, status = ?, meta = ? WHERE id = ?",
                    (
                        row["content"],
                        str(MessageStatus.INCOMPLETE),
                        json.dumps(meta),
                        row["id"],
                    ),
                )
            for row in questions:
                if (row["conversation_id"], row["turn_id"]) not in partials:
                    self._insert(
                        con,
                        Message(
                            id=f"{row['id']}-interrupted",
                            conversation_id=row["conversation_id"],
                            seq=0,
                            role="assistant",
                            content=note,
                            turn_id=row["turn_id"],
                            status=MessageStatus.ERROR,
                            meta={"error": error, INTERRUPTED: True},
                        ),
                    )
                con.execute(
                    "UPDATE messages SET status = ? WHERE id = ?",
                    (str(MessageStatus.ANSWERED), row["id"]),
                )
        return len(questions)

    # --- suggestions ----------------------------------------------------------------------

    def add_suggestion(self, suggestion: CodeSuggestion) -> CodeSuggestion:
        target = suggestion.target
        with self._tx() as con:
            con.execute(
                "INSERT INTO suggestions (id, user, conversation_id, message_id, target_path, "
                "target_cell_index, target_cell_id, original, proposed, title, mode, status, "
                "created_at, resolved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    suggestion.id,
                    suggestion.user,
                    suggestion.conversation_id,
                    suggestion.message_id,
                    target.path,
                    target.cell_index,
                    target.cell_id,
                    suggestion.original,
                    suggestion.proposed,
                    suggestion.title,
                    suggestion.mode,
                    str(suggestion.status),
                    suggestion.created_at,
                    suggestion.resolved_at,
                ),
            )
        return suggestion

    def get_suggestion(self, suggestion_id: str) -> CodeSuggestion | None:
        with self._lock:
            row = self._con.execute(
                "SELECT * FROM suggestions WHERE id = ?", (suggestion_id,)
            ).fetchone()
        return _suggestion(row) if row else None

    def set_suggestion_status(self, suggestion_id: str, status: SuggestionStatus) -> None:
        with self._tx() as con:
            con.execute(
                "UPDATE suggestions SET status = ?, resolved_at = ? WHERE id = ?",
                (str(status), time.time(), suggestion_id),
            )

    def suggestion_statuses(self, conversation_id: str, ids: Sequence[str]) -> dict[str, str]:
        """The status of each of these suggestions of the conversation: what the agent asks
        before each model call, so one small query by id, not a read of the conversation's
        every suggestion (their texts), which grows with it."""
        if not ids:
            return {}
        wanted = list(dict.fromkeys(ids))[:500]  # a turn makes a few; SQLite's 999-parameter cap
        marks = ",".join("?" * len(wanted))
        with self._lock:
            rows = self._con.execute(
                f"SELECT id, status FROM suggestions WHERE conversation_id = ? AND id IN ({marks})",
                [conversation_id, *wanted],
            ).fetchall()
        return {row[0]: str(row[1]) for row in rows}

    def suggestions(self, conversation_id: str) -> list[CodeSuggestion]:
        with self._lock:
            rows = self._con.execute(
                "SELECT * FROM suggestions WHERE conversation_id = ? ORDER BY created_at",
                (conversation_id,),
            ).fetchall()
        return [_suggestion(row) for row in rows]

    # --- preferences ----------------------------------------------------------------------

    def preferences(self, user: str) -> dict[str, Any]:
        with self._lock:
            row = self._con.execute(
                "SELECT data FROM preferences WHERE user = ?", (user,)
            ).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def set_preferences(self, user: str, data: dict[str, Any]) -> None:
        with self._tx() as con:
            con.execute(
                "INSERT INTO preferences (user, data) VALUES (?, ?) "
                "ON CONFLICT (user) DO UPDATE SET data = excluded.data",
                (user, json.dumps(data)),
            )


# What change_conversation may set (the column names are fixed, never taken from a caller).
_CHANGEABLE = frozenset({"title", "context_type", "summary", "summary_upto", "task"})


def _conversation_params_of(changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(changes)
    if "context_type" in out:
        out["context_type"] = str(out["context_type"])
    if "task" in out:
        out["task"] = json.dumps(out["task"]) if out["task"] is not None else None
    return out


def _conversation_params(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id,
        "user": c.user,
        "project_id": c.project_id,
        "title": c.title,
        "context_type": str(c.context_type),
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "summary": c.summary,
        "summary_upto": c.summary_upto,
        "task": json.dumps(c.task) if c.task is not None else None,
    }


def _conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row["id"],
        user=row["user"],
        project_id=row["project_id"],
        title=row["title"],
        context_type=ContextType(row["context_type"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        summary=row["summary"],
        summary_upto=row["summary_upto"],
        task=json.loads(row["task"]) if row["task"] else None,
    )


def _message(row: sqlite3.Row) -> Message:
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        seq=row["seq"],
        role=row["role"],
        content=row["content"],
        turn_id=row["turn_id"],
        status=MessageStatus(row["status"]),
        engine=row["engine"],
        meta=json.loads(row["meta"]),
        created_at=row["created_at"],
    )


def _suggestion(row: sqlite3.Row) -> CodeSuggestion:
    return CodeSuggestion(
        id=row["id"],
        user=row["user"],
        conversation_id=row["conversation_id"],
        message_id=row["message_id"],
        target=SuggestionTarget(
            path=row["target_path"],
            cell_index=row["target_cell_index"],
            cell_id=row["target_cell_id"],
        ),
        original=row["original"],
        proposed=row["proposed"],
        title=row["title"],
        mode=row["mode"],
        status=SuggestionStatus(row["status"]),
        created_at=row["created_at"],
        resolved_at=row["resolved_at"],
    )


class AsyncConversationStore:
    """The store for the event loop: each call runs on the store's own thread."""

    def __init__(self, store: ConversationStore) -> None:
        self.sync = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rubberduck-db")

    async def call(self, fn: Callable[..., T], /, *args: Any) -> T:
        return await self.submit(fn, *args)

    def submit(self, fn: Callable[..., T], /, *args: Any) -> asyncio.Future[T]:
        """Queues the call now (not at the first await), so calls run in the order they
        were submitted: a partial save queued before the final answer runs before it."""
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.sync, name)

        async def run(*args: Any) -> Any:
            return await self.call(method, *args)

        return run

    async def aclose(self) -> None:
        await self.call(self.sync.close)
        self._executor.shutdown(wait=False)
