"""No secret leaves: planted secrets never reach the fake provider by any channel, the
configured keys never appear in a response, a log line or `doctor`, and redaction stays
right on the corpus of shapes (secret_corpus.py).

The provider is the fake on 127.0.0.1, which records every chat and embedding request
body it receives; the check is on those bodies, i.e. on what really left the server.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from secret_corpus import CLEAN, PLANTED
from server_fixtures import eventually, indexed_config
from tornado.httpclient import HTTPClientError

from rubberduck_jupyter.context.redact import REDACTED, redact

# A key shaped like no rule knows, so only the configured-key path can take it out.
CONFIGURED_KEY = "cfgkey" + uuid.uuid4().hex
# A generated token under a plain variable name: found by its shape in the environment.
ENV_SECRET = "Wh7" + secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")
WAIT_S = 30.0  # a bound for failing, not a speed expectation


def test_every_planted_shape_is_redacted_and_clean_text_is_untouched(cases: Any) -> None:
    missed = [name for name, text, secret in PLANTED if secret in redact(text, [])]
    changed = [text for text in CLEAN if redact(text, []) != text]
    cases.add(len(PLANTED) + len(CLEAN), len(PLANTED) + len(CLEAN) - len(missed) - len(changed))
    assert not missed, f"secrets that survived redaction: {missed}"
    assert not changed, f"ordinary text that redaction changed: {changed}"


def test_redaction_keeps_names_and_structure() -> None:
    text = "os.environ['AWS_SECRET_ACCESS_KEY'] = 'abcdEFGH1234ijklMNOP5678qrstUVWX9012yzab'"
    assert redact(text, []) == f"os.environ['AWS_SECRET_ACCESS_KEY'] = '{REDACTED}'"
    url = "postgresql://etl:pa/ss+word@db:5432/sales"
    assert redact(url, []) == f"postgresql://etl:{REDACTED}@db:5432/sales"


@pytest.fixture
def planted_root(jp_root_dir: Path) -> Path:
    lines = [f"# {name}\n{text}\n" for name, text, _ in PLANTED]
    (jp_root_dir / "settings_module.py").write_text("\n".join(lines))
    (jp_root_dir / "notes.md").write_text(
        "# Deployment notes\n\n" + "\n\n".join(text for _, text, _ in PLANTED[:30])
    )
    return jp_root_dir


@pytest.fixture
def rubberduck_config(planted_root: Path, tmp_path: Path, fake_llm: Any) -> dict[str, Any]:
    return indexed_config(
        fake_llm,
        tmp_path,
        api_key=CONFIGURED_KEY,
        index_embedder_api_key=CONFIGURED_KEY,
        index_watch=False,
    )


@pytest.fixture
def server_logs() -> Any:
    """Every log record of the process while the test runs, formatted with its arguments."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep(level=logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield records
    root.removeHandler(handler)
    root.setLevel(old_level)


async def _chat(ws: Any, read_turn: Any, conversation: str, text: str, **context: Any) -> None:
    msg_id = uuid.uuid4().hex
    frame = {"type": "chat", "id": msg_id, "conversation_id": conversation, "text": text}
    if context:
        frame["context"] = context
    await ws.write_message(json.dumps(frame))
    frames = await read_turn(ws, msg_id, timeout=WAIT_S)
    assert frames[-1]["type"] == "done", frames[-1]


async def test_planted_secrets_never_reach_the_provider(
    jp_fetch: Any,
    jp_ws_fetch: Any,
    read_turn: Any,
    fake_llm: Any,
    monkeypatch: pytest.MonkeyPatch,
    cases: Any,
) -> None:
    monkeypatch.setenv("WAREHOUSE_CONNECTION", ENV_SECRET)  # a plain name, a token's shape
    # Build the index through the provider's embedding API: project files leave here too.
    await jp_fetch("rubberduck", "api", "index", method="POST", body="{}")

    async def indexed() -> bool:
        status = json.loads((await jp_fetch("rubberduck", "api", "index")).body)
        return status["state"] != "indexing" and status.get("chunks", 1) > 0

    await eventually(indexed, "the index to be built", WAIT_S)

    every_text = "\n".join(text for _, text, _ in PLANTED) + f"\nwarehouse {ENV_SECRET}"
    # Named like a secret, valued like nothing: only the name tells. The prompt shows the
    # first 60 variables, so the planted ones go in two turns.
    named = {"name": "stripe_secret", "type": "str", "summary": "'plainvalue12'"}
    variables = [
        {"name": f"v{i}", "type": "str", "summary": repr(text)[:1900]}
        for i, (_, text, _) in enumerate(PLANTED)
    ]
    ws = await jp_ws_fetch("rubberduck", "ws")
    await ws.read_message()  # hello
    channels = {
        "message": ("c-message", every_text, {}),
        "cell": ("c-cell", "what does this cell do?", {"active_cell": every_text}),
        "selection": ("c-selection", "explain", {"selection": every_text}),
        "error": ("c-error", "/fix", {"error": f"Traceback\nValueError: {every_text}"}),
        "variables": ("c-vars", "describe my variables", {"variables": [named, *variables[:50]]}),
        "more variables": ("c-vars2", "and these?", {"variables": variables[50:]}),
        # The first message of c-history goes to the model again as history.
        "history": ("c-message", "and what about the deployment notes?", {}),
        "retrieval": ("c-rag", "where are the deployment notes and settings_module?", {}),
        "review": ("c-review", "/review settings_module.py", {}),
    }
    for conversation, text, context in channels.values():
        await _chat(ws, read_turn, conversation, text, **context)
    ws.close()

    bodies = [json.dumps(body) for body in fake_llm.requests]
    chat_bodies = [b for b in bodies if '"messages"' in b]
    embed_bodies = [b for b in bodies if '"input"' in b]
    assert len(chat_bodies) >= len(channels) and embed_bodies, "the provider saw too little"
    planted = [secret for _, _, secret in PLANTED] + [ENV_SECRET, "plainvalue12"]
    leaked = sorted({s for s in planted for body in bodies if json.dumps(s)[1:-1] in body})
    cases.add(len(planted) * len(bodies), len(planted) * len(bodies) - len(leaked))
    assert not leaked, f"{len(leaked)} secrets reached the provider: {leaked[:5]}"
    # The channels did carry the text (the check above is not vacuous): names stay.
    assert any("AWS_SECRET_ACCESS_KEY" in b for b in chat_bodies)
    assert any("stripe_secret" in b for b in chat_bodies)
    assert any(REDACTED in b for b in embed_bodies)


async def test_configured_keys_never_appear_in_responses_or_logs(
    jp_fetch: Any, jp_ws_fetch: Any, read_turn: Any, server_logs: list[str], cases: Any
) -> None:
    routes = [
        ("health",),
        ("plugins",),
        ("models",),
        ("usage",),
        ("engines",),
        ("conversations",),
        ("preferences",),
        ("index",),
    ]
    ws = await jp_ws_fetch("rubberduck", "ws")
    hello = await ws.read_message()
    await _chat(ws, read_turn, "c-keys", f"my key is {CONFIGURED_KEY}, is it safe?")
    ws.close()
    bodies = [hello]
    for route in routes:
        response = await jp_fetch("rubberduck", "api", *route)
        bodies.append(response.body.decode())
    conversation = await jp_fetch("rubberduck", "api", "conversations", "c-keys")
    bodies.append(conversation.body.decode())
    # A failing provider call (bad model name) logs and answers an error: no key in either.
    try:
        await jp_fetch("rubberduck", "api", "conversations", "missing")
    except HTTPClientError as exc:
        bodies.append(exc.response.body.decode() if exc.response else "")
    # The user's own message is stored as they wrote it, and titles their conversation:
    # the list and the conversation are theirs. The answer (an echo of what the provider
    # got) and everything else must not hold the key.
    own_words = {routes.index(("conversations",)) + 1, len(routes) + 1}
    stored = json.loads(bodies[len(routes) + 1])
    answers = [m["content"] for m in stored["messages"] if m["role"] == "assistant"]
    assert answers and all(REDACTED in a for a in answers), answers
    in_logs = [line for line in server_logs if CONFIGURED_KEY in line]
    leaks = [i for i, body in enumerate(bodies) if CONFIGURED_KEY in body and i not in own_words]
    leaks += [a for a in answers if CONFIGURED_KEY in a]
    cases.add(
        len(bodies) + len(server_logs), len(bodies) + len(server_logs) - len(leaks) - len(in_logs)
    )
    assert not leaks, f"the configured key is in responses {leaks}"
    assert not in_logs, in_logs[:3]


def test_doctor_never_prints_the_key(tmp_path: Path, fake_llm: Any, cases: Any) -> None:
    env = {
        **os.environ,
        "RUBBERDUCK_MODEL": "openai/fake-model",
        "RUBBERDUCK_API_BASE": fake_llm.base_url,
        "RUBBERDUCK_API_KEY": CONFIGURED_KEY,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "rubberduck_jupyter.cli", "doctor"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert "fake-model" in output  # it did describe the model it was given
    assert cases.check(CONFIGURED_KEY not in output), output
