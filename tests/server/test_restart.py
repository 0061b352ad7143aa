"""A real `jupyter server` process, stopped and started again on the same data: the
conversation, its answer and the user's preferences come back, the next prompt carries
the earlier turns, and a question left unanswered by a kill -9 is kept and marked, with the
part of its answer that a partial save (every 2 s) had put on disk."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import urllib.request
from contextlib import closing
from pathlib import Path
from typing import Any

from server_process import TOKEN, jupyter_server


def test_conversations_survive_a_restart_and_a_kill(tmp_path: Path, fake_llm: Any) -> None:
    fake_llm.set_replies(["Use df.resample('W').mean()."])
    with jupyter_server(tmp_path, fake_llm.base_url) as (server, _):
        frames = server.call(
            "POST",
            "rubberduck/api/chat",
            {"type": "chat", "id": "t1", "conversation_id": "c-weekly", "text": "weekly means?"},
        )
        assert frames[-1]["type"] == "done"
        server.call("PUT", "rubberduck/api/preferences", {"style": "concise"})

    fake_llm.set_replies(["Pass label='left'."])
    with jupyter_server(tmp_path, fake_llm.base_url) as (server, _):
        listed = server.call("GET", "rubberduck/api/conversations")["conversations"]
        assert [(c["id"], c["title"], c["n_messages"]) for c in listed] == [
            ("c-weekly", "weekly means?", 2)
        ]
        assert server.call("GET", "rubberduck/api/preferences")["style"] == "concise"
        frames = server.call(
            "POST",
            "rubberduck/api/chat",
            {"type": "chat", "id": "t2", "conversation_id": "c-weekly", "text": "label left?"},
        )
        assert frames[-1]["type"] == "done"
        prompt = fake_llm.requests[-1]["messages"]
        assert [m["content"] for m in prompt[1:3]] == [
            "weekly means?",
            "Use df.resample('W').mean().",
        ]
        assert "Keep answers short" in prompt[0]["content"]

    # kill -9 while an answer streams, once a partial save is on disk: the question stays,
    # marked at the next start, and so does at least what that save held. The save is read
    # from the SQLite file itself (WAL lets another process read while the server writes),
    # so the test waits for the event, not for a guess of how long it takes under load.
    fake_llm.update_settings({"chunk_delay": 0.2})
    fake_llm.set_replies(["word " * 100])
    streamed = ""
    saved_before_kill = ""
    first_save_after: float | None = None  # seconds from the first chunk to the first save
    with jupyter_server(tmp_path, fake_llm.base_url, kill=True) as (server, process):
        (database,) = (tmp_path / "data" / "rubberduck").glob("conversations-*.sqlite3")
        request = urllib.request.Request(
            server.url + "rubberduck/api/chat",
            method="POST",
            data=json.dumps(
                {"type": "chat", "id": "t3", "conversation_id": "c-weekly", "text": "and now?"}
            ).encode(),
            headers={"Authorization": f"token {TOKEN}"},
        )
        response = urllib.request.urlopen(request, timeout=30)
        assert json.loads(response.readline())["type"] == "route"
        first = None
        for _ in range(90):  # bounded: 100 chunks of 0.2 s come; we stop well before the end
            frame = json.loads(response.readline())
            if frame["type"] == "notice" and frame["code"] == "no_index":
                continue  # this server has no index: said once, before the text
            assert frame["type"] == "chunk", frame
            streamed += frame["text"]
            first = first if first is not None else time.monotonic()
            saved_before_kill = _saved_partial(database, "t3")
            if saved_before_kill and first_save_after is None:
                first_save_after = time.monotonic() - first
            if len(saved_before_kill) >= len("word ") * 5:
                break
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=20)
        response.close()
    fake_llm.update_settings({"chunk_delay": 0.0})
    assert len(saved_before_kill) >= len("word ") * 5, (streamed, saved_before_kill)
    # The first save is due 2 s after the first chunk; 6 s more is slack for a loaded machine.
    assert first_save_after is not None and first_save_after < 8.0
    with jupyter_server(tmp_path, fake_llm.base_url) as (server, _):
        messages = server.call("GET", "rubberduck/api/conversations/c-weekly")["messages"]
        assert [m["content"] for m in messages][:4] == [
            "weekly means?",
            "Use df.resample('W').mean().",
            "label left?",
            "Pass label='left'.",
        ]
        assert len(messages) == 6
        assert messages[4]["content"] == "and now?"
        assert messages[4]["status"] == "answered"
        partial = messages[5]
        assert partial["turn_id"] == "t3" and partial["status"] == "incomplete"
        # The status marks it cut off; the text is what streamed, nothing appended.
        kept = partial["content"]
        assert kept and "cut off" not in kept
        assert streamed.startswith(kept) and kept.startswith(saved_before_kill)
        assert partial["meta"]["interrupted"] is True
        assert partial["meta"]["error"]["code"] == "interrupted"
        assert "send it again" in partial["meta"]["error"]["message"]
        assert partial["meta"]["route"]["engine"] == "simple"
        # The listing counts it as one of the conversation's messages.
        listed = server.call("GET", "rubberduck/api/conversations")["conversations"]
        assert listed[0]["n_messages"] == 6


def _saved_partial(database: Path, turn_id: str) -> str:
    """The answer text of `turn_id` as the server last committed it ('' before any save)."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as con:
        row = con.execute(
            "SELECT content FROM messages WHERE turn_id = ? AND role = 'assistant'", (turn_id,)
        ).fetchone()
    return str(row[0]) if row else ""
