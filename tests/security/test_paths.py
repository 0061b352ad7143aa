"""The path corpus: every endpoint and context field that names a file, against a real server.

Files outside the root (a sibling folder sharing the root's prefix, reached by `../`, URL
encoding, absolute paths and symlinks) and in-root files the rules refuse (`.env`, key files,
hidden files, a FIFO, a huge file, a binary file, a folder) each hold a unique marker. After
every request, the marker is in no response body and in no request the fake provider got,
and nothing outside the root changed. A readable control file proves each channel does read
what it may (so a channel that reads nothing at all cannot pass by accident).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
import tornado.httpclient

MARKER = "rdmark" + secrets.token_hex(12)  # unique per run: nothing else can contain it
CONTROL = "rdctrl" + secrets.token_hex(12)
PWNED = "rdpwn" + secrets.token_hex(12)  # what crafted suggestions try to write
WORDS = "TOKEN KEY OPENAI_API_KEY PRIVATE BEGIN OPENSSH root token padding pwned"
DEADLINE_S = 55  # the whole corpus; the brief bounds it under 60 s


@pytest.fixture
def rubberduck_config(fake_llm: Any, tmp_path: Path) -> dict[str, Any]:
    return {
        "model": "openai/fake-model",
        "api_base": fake_llm.base_url,
        "api_key": "sk-test-key",
        "index_db_path": str(tmp_path / "index.duckdb"),
        "ollama_url": "http://127.0.0.1:9",
    }


@dataclass
class Planted:
    root: Path
    outside: Path  # the sibling folder: `<root>-evil`
    corpus: list[str]  # paths as a client would send them
    snapshot: dict[str, str] = field(default_factory=dict)
    siblings: set[str] = field(default_factory=set)  # what the root's parent held before


def _tree_digest(folder: Path) -> dict[str, str]:
    """Every entry under `folder` with a digest of its content (what was written, or added)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            if path.is_fifo() or path.is_dir():
                out[str(path)] = "special"
            else:
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _notebook(source: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    return nbformat.writes(nb)


@pytest.fixture
def planted(jp_root_dir: Path) -> Iterator[Planted]:
    root = jp_root_dir
    outside = root.parent / f"{root.name}-evil"  # shares the root's prefix: "/tmp/x/root_dir-evil"
    outside.mkdir()
    (outside / "secret.py").write_text(f"TOKEN = '{MARKER}'\n")
    (outside / "nb.ipynb").write_text(_notebook(f"token = '{MARKER}'"))
    (outside / "passwd").write_text(f"root:{MARKER}:0:0\n")

    (root / "ok.py").write_text(f"def control():\n    return '{CONTROL}'\n")
    (root / ".env").write_text(f"OPENAI_API_KEY={MARKER}\n")
    (root / ".env.py").write_text(f"KEY = '{MARKER}'\n")
    (root / "id_rsa").write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{MARKER}\n")
    (root / "server.pem").write_text(f"-----BEGIN PRIVATE KEY-----\n{MARKER}\n")
    (root / "tls.key").write_text(f"{MARKER}\n")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "notes.py").write_text(f"X = '{MARKER}'\n")
    (root / ".hidden" / "nb.ipynb").write_text(_notebook(f"x = '{MARKER}'"))
    (root / "link.py").symlink_to(outside / "secret.py")
    (root / "nblink.ipynb").symlink_to(outside / "nb.ipynb")
    (root / "envlink.py").symlink_to(root / ".env")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    os.mkfifo(root / "pipe.py")
    (root / "huge.py").write_text(f"X = '{MARKER}'\n" + "# padding\n" * 250_000)  # 2.5 MB
    (root / "blob.py").write_bytes(f"X = '{MARKER}'\n".encode() + b"\0\1\2" * 100)
    (root / "folder.py").mkdir()
    (root / "folder.py" / "inner.py").write_text("y = 2\n")

    rel_out = f"../{outside.name}"
    corpus = [
        f"{rel_out}/secret.py",
        f"{rel_out}/nb.ipynb",
        f"sub/../../{outside.name}/secret.py",
        urllib.parse.quote(f"{rel_out}/secret.py", safe=""),  # %2E%2E%2F...
        f"%2e%2e%2f{outside.name}%2fsecret.py",
        f"..%2f{outside.name}%2fsecret.py",
        str(outside / "secret.py"),
        str(outside / "nb.ipynb"),
        str(outside / "passwd"),
        "/etc/passwd",
        "link.py",
        "nblink.ipynb",
        "envlink.py",
        "linkdir/secret.py",
        "linkdir/nb.ipynb",
        ".env",
        ".env.py",
        "id_rsa",
        "server.pem",
        "tls.key",
        ".hidden/notes.py",
        ".hidden/nb.ipynb",
        "pipe.py",
        "huge.py",
        "blob.py",
        "folder.py",
        "ok.py\0../secret.py",
        "\0",
        "",
    ]
    found = Planted(root, outside, corpus)
    found.snapshot = _tree_digest(outside)
    found.siblings = {p.name for p in root.parent.iterdir()}
    yield found
    # A FIFO left open by a hung reader would block cleanup; open it non-blocking once.
    with contextlib.suppress(OSError):  # no reader: ENXIO, which is the good case
        os.close(os.open(root / "pipe.py", os.O_WRONLY | os.O_NONBLOCK))


class Recorder:
    """Every response body the tests saw, to search for the marker at the end; past the
    deadline it fails the test at once (a hung read would otherwise cost a timeout per
    request of the corpus)."""

    def __init__(self, deadline: float) -> None:
        self.bodies: list[str] = []
        self.deadline = deadline

    def keep(self, body: bytes | str) -> str:
        assert time.monotonic() < self.deadline, "the path corpus ran past its time bound"
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        self.bodies.append(text)
        return text


async def _fetch(jp_fetch: Any, rec: Recorder, *parts: str, **kw: Any) -> tuple[int, str]:
    try:
        response = await jp_fetch(*parts, **kw)
        return response.code, rec.keep(response.body)
    except tornado.httpclient.HTTPClientError as exc:
        body = exc.response.body if exc.response is not None else b""
        return exc.code, rec.keep(body or b"")


async def _rest_chat(
    jp_fetch: Any, rec: Recorder, conv: str, text: str, **extra: Any
) -> list[dict[str, Any]]:
    frame = {"type": "chat", "id": "r-" + secrets.token_hex(6), "conversation_id": conv}
    frame.update(text=text, **extra)
    code, body = await _fetch(
        jp_fetch, rec, "rubberduck", "api", "chat", method="POST", body=json.dumps(frame)
    )
    if code != 200:
        return [{"type": "error", "status": code, "body": body}]
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def _ended(frames: list[dict[str, Any]]) -> bool:
    return bool(frames) and frames[-1].get("type") in {"done", "error"}


def _provider_saw(fake_llm: Any, since: int = 0) -> str:
    """What the fake provider received, from its `since`-th request on."""
    return json.dumps(fake_llm.requests[since:], ensure_ascii=False)


async def _wait_index_idle(jp_fetch: Any, rec: Recorder, deadline: float) -> dict[str, Any]:
    while time.monotonic() < deadline:
        _, body = await _fetch(jp_fetch, rec, "rubberduck", "api", "index")
        status = json.loads(body)
        if status["state"] != "indexing":
            return dict(status)
        await asyncio.sleep(0.1)
    raise AssertionError("indexing did not finish in time")


@pytest.mark.timeout(DEADLINE_S + 30)  # the hard stop, should a request hang outright
async def test_path_corpus_reads_nothing_outside_or_refused(
    jp_fetch: Any,
    jp_ws_fetch: Any,
    jp_serverapp: Any,
    fake_llm: Any,
    read_turn: Any,
    planted: Planted,
    cases: Any,
) -> None:
    deadline = time.monotonic() + DEADLINE_S
    rec = Recorder(deadline)
    corpus = planted.corpus
    refusals: dict[str, list[str]] = {}

    # --- 1. `/review PATH`: the engine that reads named files, one turn per path --------
    # The control first: a readable file reaches the model (the channel works).
    control = await _rest_chat(jp_fetch, rec, "conv-review", "/review ok.py")
    assert _ended(control) and CONTROL in _provider_saw(fake_llm), control
    leaks = []
    for path in corpus:
        seen = len(fake_llm.requests)
        frames = await _rest_chat(jp_fetch, rec, "conv-review", f"/review {path}")
        notices = [f["message"] for f in frames if f.get("type") == "notice"]
        refusals[path] = notices
        if not _ended(frames) or MARKER in _provider_saw(fake_llm, seen):
            leaks.append(path)
    cases.add(len(corpus), len(corpus) - len(leaks))
    assert not leaks, f"sent to the model: {leaks}"
    # The message says which file and which rule (finding: `/review .env.py` was read).
    env_notice = " ".join(refusals[".env.py"])
    assert "`.env.py` is an .env file; RubberDuck does not read hidden files" in env_notice
    assert "inside a hidden folder" in " ".join(refusals[".hidden/notes.py"])
    assert "binary" in " ".join(refusals["blob.py"])
    assert "not a regular file" in " ".join(refusals["pipe.py"])
    assert "outside the project" in " ".join(refusals[f"../{planted.outside.name}/secret.py"])
    assert "links to" in " ".join(refusals["envlink.py"])

    # --- 2. every engine's slash commands, all paths named in one message ---------------
    _, body = await _fetch(jp_fetch, rec, "rubberduck", "api", "engines")
    commands = [c for e in json.loads(body)["engines"] for c in e.get("commands", [])]
    assert "/review" in commands
    every_path = " ".join(p for p in corpus if p and "\0" not in p)
    leaks = []
    for command in commands:
        seen = len(fake_llm.requests)
        frames = await _rest_chat(jp_fetch, rec, "conv-cmds", f"{command} {every_path}")
        if not _ended(frames) or MARKER in _provider_saw(fake_llm, seen):
            leaks.append(command)
    cases.add(len(commands), len(commands) - len(leaks))
    assert not leaks, f"sent to the model: {leaks}"

    # --- 3. chat context.notebook_path over the socket, with an active cell -------------
    # The model's reply holds a code block, so the review proposes a suggestion whose
    # target is the client's notebook_path; applying it must be refused (section 4).
    fake_llm.set_replies(["Looks fine.\n\n```python\nx = 2\n```"] * len(corpus))
    ws = await jp_ws_fetch("rubberduck", "ws")
    rec.keep(await ws.read_message())  # hello
    leaks = []
    made: list[str] = []
    for i, path in enumerate(corpus):
        seen = len(fake_llm.requests)
        context = {"notebook_path": path, "active_cell": "x = 1", "cell_index": 0}
        msg = {"type": "chat", "v": 1, "id": f"nb{i}", "conversation_id": "conv-nb"}
        ws.write_message(json.dumps({**msg, "text": "/review", "context": context}))
        frames = await read_turn(ws, f"nb{i}", timeout=15)
        for frame in frames:
            rec.keep(json.dumps(frame))
            if frame["type"] == "suggestion":
                made.append(frame["suggestion"]["id"])
        if not _ended(frames) or MARKER in _provider_saw(fake_llm, seen):
            leaks.append(path)
    ws.close()
    cases.add(len(corpus), len(corpus) - len(leaks))
    assert not leaks, f"sent to the model: {leaks}"
    assert made, "the scripted code block should have produced suggestions to apply"

    # --- 4. suggestions apply: the engine-made ones and crafted rows --------------------
    # An attacker who controls the model's reply controls a suggestion's content, and a
    # client controls notebook_path: craft rows straight into the store with every path,
    # whole-file and insert-after (which has no base hash to stop it).
    from rubberduck_jupyter.domain.models import CodeSuggestion, SuggestionTarget, new_id

    store = jp_serverapp.web_app.settings["rubberduck_jupyter"].conversations
    first = await store.get_suggestion(made[0])
    crafted: list[str] = []
    for path in corpus:
        for target, mode in [
            (SuggestionTarget(path), "replace"),
            (SuggestionTarget(path, 0), "insert_after"),
            (SuggestionTarget(path, 0), "replace"),
        ]:
            row = CodeSuggestion(
                new_id("sug"), first.user, first.conversation_id, first.message_id,
                target, "", f"pwned = '{PWNED}'", mode=mode,
            )  # fmt: skip
            await store.add_suggestion(row)
            crafted.append(row.id)
    applied = []
    for sid in made + crafted:
        code, body = await _fetch(
            jp_fetch, rec, "rubberduck", "api", "suggestions", sid, "apply",
            method="POST", body="{}",
        )  # fmt: skip
        if code < 400 or MARKER in body:
            applied.append((sid, code, body[:200]))
    cases.add(len(made) + len(crafted), len(made) + len(crafted) - len(applied))
    assert not applied, applied

    # --- 5. POST /rubberduck/api/index {"paths": [...]}, then search for the marker -----
    status = await _fetch(
        jp_fetch, rec, "rubberduck", "api", "index", method="POST", body=json.dumps({"paths": []})
    )
    assert status[0] == 202, status
    await _wait_index_idle(jp_fetch, rec, deadline)
    odd = []
    for path in corpus:
        code, body = await _fetch(
            jp_fetch, rec, "rubberduck", "api", "index",
            method="POST", body=json.dumps({"paths": [path]}),
        )  # fmt: skip
        if code == 202:
            await _wait_index_idle(jp_fetch, rec, deadline)
        elif code != 400:  # refused precisely, or accepted and (below) never indexed
            odd.append((path, code, body[:200]))
    cases.add(len(corpus), len(corpus) - len(odd))
    assert not odd, odd

    # --- 6. index search, with each path as the `path` filter ---------------------------
    def search(**params: str) -> Any:
        return _fetch(jp_fetch, rec, "rubberduck", "api", "index", "search", params=params)

    code, body = await search(q=CONTROL, mode="bm25")
    assert code == 200 and "ok.py" in body, "the control file should be indexed"
    globs = [*corpus, "*", "**", "../*", "/*", "/etc/*", ".*", "*.pem", "*id_rsa*", "linkdir/*"]
    bad = []
    for glob in globs:
        for mode in ("bm25", "hybrid"):
            # Words of the planted files, not the marker itself (the reply echoes the query).
            code, body = await search(q=WORDS, mode=mode, path=glob, top_k="50")
            if code not in (200, 400) or MARKER in body:
                bad.append((glob, mode, code, body[:120]))
    cases.add(2 * len(globs), 2 * len(globs) - len(bad))
    assert not bad

    # --- 7. conversation export and history: what was said is all they hold ------------
    bad = []
    exports = 0
    for conv in ("conv-review", "conv-cmds", "conv-nb"):
        for fmt in ("markdown", "ipynb", None):
            parts = ("export",) if fmt else ()
            code, body = await _fetch(
                jp_fetch, rec, "rubberduck", "api", "conversations", conv, *parts,
                params={"format": fmt} if fmt else None,
            )  # fmt: skip
            exports += 1
            if code != 200 or MARKER in body:
                bad.append((conv, fmt, code, body[:200]))
    cases.add(exports, exports - len(bad))
    assert not bad

    # --- the proof: the marker went nowhere, nothing outside the root changed ----------
    leaked = [b[:200] for b in rec.bodies if MARKER in b]
    sent = MARKER in _provider_saw(fake_llm)
    unchanged = _tree_digest(planted.outside) == planted.snapshot
    siblings = sorted(p.name for p in planted.root.parent.iterdir())
    cases.add(3, int(not leaked) + int(not sent) + int(unchanged))
    assert not leaked, leaked
    assert not sent, "the marker reached the model provider"
    assert unchanged, "a file outside the root was written"
    added = set(siblings) - planted.siblings
    assert all(name.startswith("index.duckdb") for name in added), added
    written = [
        path
        for folder in (planted.root, planted.outside)
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink() and PWNED.encode() in path.read_bytes()
    ]
    assert not written, "a crafted suggestion was applied to a refused file"
    assert (planted.root / "ok.py").read_text().count(CONTROL) == 1
    assert time.monotonic() < deadline, "the corpus took longer than its bound"
