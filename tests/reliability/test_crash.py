"""kill -9 of a real `jupyter server` while it indexes and streams 20 chats, then a restart
on the same data: both databases open, every acknowledged message is in history, each
in-flight question carries a "send it again" record and keeps the part of its answer that
had streamed before the last partial save. And a second server started on the same
databases: conversations are shared, the index is the first server's (DuckDB allows one
writer), and health and REST say so."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from server_process import TOKEN, Server, jupyter_server

# Each test here takes 10-30 s on 2 cores; a hang fails that test, not the whole run.
pytestmark = pytest.mark.timeout(90)

PDSH = Path("/work/shared/corpora/pdsh")
# 24 notebooks make ~3 index batches (one transaction each), so a kill can land after the
# first commit and before the last.
NOTEBOOKS = tuple(sorted(p.name for p in PDSH.glob("*.ipynb"))[:24])
CHATS = 20
CHUNKS_BEFORE_KILL = 45  # at 0.1 s a chunk: every chat has streamed >= 4.5 s
# Every embedding request waits this long (a `fault-slow_first_byte` model), so a pass over
# the notebooks takes seconds and a kill lands in the middle of it.
EMBED_DELAY_S = 1.0


def _copy_notebooks(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name in NOTEBOOKS:
        shutil.copy(PDSH / name, root / name)


def _options(base: Path, fake_url: str) -> list[str]:
    return [
        f"--RubberDuckApp.conversations_db_path={base / 'db' / 'conversations.sqlite3'}",
        f"--RubberDuckApp.index_db_path={base / 'db' / 'index.duckdb'}",
        "--RubberDuckApp.index_embedder=litellm:openai/fake-embed-fault-slow_first_byte",
        f"--RubberDuckApp.index_embedder_api_base={fake_url}",
        "--RubberDuckApp.index_embedder_api_key=sk-embed-key",
        "--RubberDuckApp.index_on_save=False",
    ]


def _http(server: Server, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """(status, JSON body) without raising on 4xx/5xx."""
    try:
        return 200, server.call(method, path, body)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read().decode() or "null")


def _wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class StreamingChat(threading.Thread):
    """One REST chat read line by line; records each frame with when it arrived."""

    def __init__(self, server: Server, n: int) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.n = n
        self.turn_id = f"crash-{n}"
        self.conversation = f"crash-conv-{n}"
        # ~100 words: the fake echoes it back as ~102 chunks, 0.1 s apart (~10 s).
        self.text = f"chat {n} " + " ".join(f"c{n}w{i}" for i in range(98))
        self.frames: list[tuple[float, dict[str, Any]]] = []

    def run(self) -> None:
        body = {
            "type": "chat",
            "id": self.turn_id,
            "conversation_id": self.conversation,
            "text": self.text,
            "engine": "simple",
        }
        request = urllib.request.Request(
            self.server.url + "rubberduck/api/chat",
            method="POST",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"token {TOKEN}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                for _ in range(300):  # bounded: ~105 frames at most
                    line = response.readline()
                    if not line:
                        return
                    self.frames.append((time.monotonic(), json.loads(line)))
        except (OSError, ValueError):
            return  # the kill cut the connection: expected

    def chunks(self) -> list[tuple[float, str]]:
        return [(t, f["text"]) for t, f in self.frames if f["type"] == "chunk"]

    @property
    def acknowledged(self) -> bool:
        # A frame came after the server stored the question (the route frame is the first).
        return bool(self.frames)


def test_kill_during_an_index_pass_and_twenty_chats(
    tmp_path: Path, fake_llm: Any, cases: Any
) -> None:
    base = tmp_path
    _copy_notebooks(base / "root")
    fake_llm.update_settings({"slow_first_byte_seconds": EMBED_DELAY_S})
    options = _options(base, fake_llm.base_url)
    answered: list[tuple[str, str, str]] = []  # (conversation, question, answer)
    chats: list[StreamingChat] = []
    with jupyter_server(base, fake_llm.base_url, kill=True, extra=options) as (server, process):
        for n in range(3):  # finished before the crash: must come back whole
            question = f"before the crash {n}?"
            frames = server.call(
                "POST",
                "rubberduck/api/chat",
                {"type": "chat", "id": f"pre-{n}", "conversation_id": f"pre-{n}", "text": question},
            )
            assert frames[-1]["type"] == "done"
            text = "".join(f["text"] for f in frames if f["type"] == "chunk")
            answered.append((f"pre-{n}", question, text))
        fake_llm.update_settings({"chunk_delay": 0.1})
        status, body = _http(server, "POST", "rubberduck/api/index", {})
        assert status == 200 or body.get("state") == "indexing", body
        chats = [StreamingChat(server, n) for n in range(CHATS)]
        for chat in chats:
            chat.start()
        _wait_for(
            lambda: all(len(c.chunks()) >= CHUNKS_BEFORE_KILL for c in chats),
            45,
            "every chat to stream",
        )

        def first_batch_committed() -> dict[str, Any] | None:
            status: dict[str, Any] = server.call("GET", "rubberduck/api/index")
            progress = status.get("progress") or {}
            return status if progress.get("files_done", 0) >= 1 else None

        progress = _wait_for(first_batch_committed, 20, "the first index batch")
        assert progress["state"] == "indexing", progress  # the kill lands mid-pass
        files_done_at_kill = progress["progress"]["files_done"]
        assert files_done_at_kill < len(NOTEBOOKS)
        killed_at = time.monotonic()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=20)
    for chat in chats:
        chat.join(timeout=10)
    fake_llm.update_settings({"chunk_delay": 0.0})

    tried = correct = 0
    with jupyter_server(base, fake_llm.base_url, extra=options) as (server, _):
        health = server.call("GET", "rubberduck/api/health")
        tried += 1
        correct += health["status"] == "ok"
        # The index opens (a search reads what the pass committed before the kill) and a
        # new pass completes, keeping files committed before the kill unchanged.
        status, found = _http(server, "GET", "rubberduck/api/index/search?q=numpy+array")
        tried += 1
        correct += status == 200 and isinstance(found.get("hits"), list)
        status, _ = _http(server, "POST", "rubberduck/api/index", {})
        done = _wait_for(
            lambda: (s := server.call("GET", "rubberduck/api/index"))["state"] != "indexing" and s,
            60,
            "the index pass after the restart",
        )
        report = done["last_report"] or {}
        tried += 1
        print(f"index: {files_done_at_kill} files done at the kill, then {report}")
        correct += (
            done["state"] == "idle"
            and report.get("files_indexed", 0) + report.get("files_unchanged", 0) == len(NOTEBOOKS)
            # What was committed before the kill was kept whole: not indexed again.
            and report.get("files_unchanged", 0) >= files_done_at_kill
            and not report.get("errors")
        )
        for conversation, question, answer in answered:
            tried += 1
            messages = server.call("GET", f"rubberduck/api/conversations/{conversation}")
            got = [(m["role"], m["content"], m["status"]) for m in messages["messages"]]
            correct += got == [
                ("user", question, "answered"),
                ("assistant", answer, "complete"),
            ]
        kept_chars = 0
        failures: list[str] = []
        for chat in chats:
            tried += 1
            if not chat.acknowledged:
                continue
            messages = server.call("GET", f"rubberduck/api/conversations/{chat.conversation}")[
                "messages"
            ]
            streamed = "".join(text for _, text in chat.chunks())
            # Saved at the latest 2 s (the default interval) before the kill, plus slack for
            # the save's own write on a loaded machine.
            must_keep = "".join(text for t, text in chat.chunks() if t <= killed_at - 3.0)
            ok = len(messages) == 2
            ok = ok and messages[0]["role"] == "user" and messages[0]["content"] == chat.text
            ok = ok and messages[0]["status"] == "answered"
            if ok:
                record = messages[1]
                error = record["meta"].get("error") or {}
                kept = record["content"]
                ok = (
                    record["turn_id"] == chat.turn_id
                    and record["status"] == "incomplete"
                    and error.get("code") == "interrupted"
                    and "send it again" in error.get("message", "")
                    and streamed.startswith(kept)
                    and kept.startswith(must_keep)
                    and len(must_keep) > 0
                )
                kept_chars += len(kept)
            if not ok:
                failures.append(f"{chat.turn_id}: {messages[1:]} (streamed {len(streamed)})")
            correct += ok
    cases.add(tried, correct)
    assert sum(c.acknowledged for c in chats) == CHATS
    assert correct == tried, f"{tried - correct} of {tried} checks failed: {failures[:3]}"
    assert kept_chars > 0


def test_a_second_server_on_the_same_databases_degrades_clearly(
    tmp_path: Path, fake_llm: Any, cases: Any
) -> None:
    _copy_notebooks(tmp_path / "one" / "root")
    fake_llm.update_settings({"slow_first_byte_seconds": 0.0})
    options = _options(tmp_path, fake_llm.base_url)  # both servers: the same two files
    checks: list[tuple[str, bool]] = []
    with contextlib.ExitStack() as first_server:
        first, _ = first_server.enter_context(
            jupyter_server(tmp_path / "one", fake_llm.base_url, extra=options)
        )
        first.call("POST", "rubberduck/api/index", {"paths": [NOTEBOOKS[0]]})
        _wait_for(
            lambda: first.call("GET", "rubberduck/api/index")["state"] == "idle",
            60,
            "the first index pass",
        )
        frames = first.call(
            "POST",
            "rubberduck/api/chat",
            {"type": "chat", "id": "a1", "conversation_id": "on-first", "text": "first?"},
        )
        checks.append(("first server answers", frames[-1]["type"] == "done"))
        with jupyter_server(tmp_path / "two", fake_llm.base_url, extra=options) as (second, _):

            def second_index_locked() -> dict[str, Any] | None:
                health: dict[str, Any] = second.call("GET", "rubberduck/api/health")
                return health if health["subsystems"]["index"]["state"] == "locked" else None

            health = _wait_for(second_index_locked, 20, "the second server to see the lock")
            index = health["subsystems"]["index"]
            sessions = health["subsystems"]["sessions"]
            checks.append(("health: index locked", "locked by another process" in index["error"]))
            checks.append(("health: overall still ok", health["status"] == "ok"))
            checks.append(("health: conversations shared", sessions.get("shared") is True))
            checks.append(("health: says what sharing means", "Another" in sessions["note"]))
            status, body = _http(second, "GET", "rubberduck/api/index/search?q=preface")
            checks.append(
                (
                    "search refused with the reason",
                    status == 409
                    and body["code"] == "busy"
                    and "locked by another process" in body["message"],
                )
            )
            status, body = _http(second, "POST", "rubberduck/api/index", {})
            checks.append(("index pass refused", status == 409 and body["code"] == "busy"))
            # Chat still works on the second server (without project search), and both
            # servers see both conversations.
            frames = second.call(
                "POST",
                "rubberduck/api/chat",
                {"type": "chat", "id": "b1", "conversation_id": "on-second", "text": "second?"},
            )
            checks.append(("second server answers", frames[-1]["type"] == "done"))
            listed = [
                {c["id"] for c in s.call("GET", "rubberduck/api/conversations")["conversations"]}
                for s in (first, second)
            ]
            checks.append(("history shared", listed == [{"on-first", "on-second"}] * 2))
            status, found = _http(first, "GET", "rubberduck/api/index/search?q=preface")
            checks.append(("first server still searches", status == 200 and bool(found["hits"])))
            first_index = first.call("GET", "rubberduck/api/health")["subsystems"]["index"]
            checks.append(("first server's index is fine", first_index["state"] == "idle"))
            checks.append(
                (
                    "first server is not shared",
                    "shared"
                    not in first.call("GET", "rubberduck/api/health")["subsystems"]["sessions"],
                )
            )
            first_server.close()  # the first server stops: the index is free again
            status, body = _http(second, "POST", "rubberduck/api/index", {})
            checks.append(
                (
                    "second indexes once the first stopped",
                    status == 200,
                )
            )
    cases.add(len(checks), sum(ok for _, ok in checks))
    assert [name for name, ok in checks if not ok] == []
