"""A real `jupyter server` process, stopped and started again on the same data: the
conversation, its answer and the user's preferences come back, the next prompt carries
the earlier turns, and a question left unanswered by a kill -9 is kept and marked, with the
part of its answer that had streamed for more than the partial-save interval (2 s)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TOKEN = "restart-test-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
        if path.endswith("/chat"):
            return [json.loads(line) for line in text.splitlines()]
        return json.loads(text) if text else None


@contextlib.contextmanager
def jupyter_server(
    base: Path, fake_url: str, *, kill: bool = False
) -> Iterator[tuple[Server, Any]]:
    (base / "root").mkdir(exist_ok=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUBBERDUCK_")}
    env.update(
        {
            "JUPYTER_CONFIG_DIR": str(base / "config"),
            "JUPYTER_DATA_DIR": str(base / "data"),
            "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        }
    )
    log = (base / "server.log").open("a")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={base / 'root'}",
            "--ServerApp.jpserver_extensions=rubberduck_jupyter=True",
            "--RubberDuckApp.model=openai/fake-model",
            f"--RubberDuckApp.api_base={fake_url}",
            "--RubberDuckApp.api_key=sk-restart-key",
            "--RubberDuckApp.index_watch=False",
            "--allow-root",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}/")
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (base / "server.log").read_text()[-3000:]
            try:
                server.call("GET", "rubberduck/api/health")
                break
            except (OSError, urllib.error.URLError):
                assert time.monotonic() < deadline, "jupyter server did not start"
                time.sleep(0.25)
        yield server, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


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

    # kill -9 while an answer streams: the question stays, marked at the next start, and
    # so does what had streamed before the last partial save (default: every 2 s).
    fake_llm.update_settings({"chunk_delay": 0.2})
    fake_llm.set_replies(["word " * 100])
    received: list[tuple[float, str]] = []  # (seconds after the first chunk, text)
    with jupyter_server(tmp_path, fake_llm.base_url, kill=True) as (server, process):
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
        for _ in range(40):  # bounded: 100 chunks come, we stop after ~3.2 s of them
            frame = json.loads(response.readline())
            assert frame["type"] == "chunk", frame
            now = time.monotonic()
            first = first if first is not None else now
            received.append((now - first, frame["text"]))
            if now - first >= 3.2:
                break
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=20)
        response.close()
    fake_llm.update_settings({"chunk_delay": 0.0})
    streamed = "".join(text for _, text in received)
    # What streamed in the first 1.5 s was in the save due at 2.0 s (0.5 s of slack for it).
    must_keep = "".join(text for at, text in received if at <= 1.5)
    assert len(must_keep) >= len("word ") * 5
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
        kept = partial["content"].removesuffix("\n\n[answer cut off]")
        assert kept != partial["content"]
        assert streamed.startswith(kept) and kept.startswith(must_keep)
        assert partial["meta"]["interrupted"] is True
        assert partial["meta"]["error"]["code"] == "interrupted"
        assert "send it again" in partial["meta"]["error"]["message"]
        assert partial["meta"]["route"]["engine"] == "simple"
        # The listing counts it as one of the conversation's messages.
        listed = server.call("GET", "rubberduck/api/conversations")["conversations"]
        assert listed[0]["n_messages"] == 6
