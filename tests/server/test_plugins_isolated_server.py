"""Untrusted plugins in a real server: each in its own worker under limits, reached through
the RPC, its permissions enforced in the server, killed and restarted over its memory."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import eventually

pytestmark = pytest.mark.timeout(90)

GUEST = """
from rubberduck_jupyter.plugins import command, hookimpl, plugin

spec = plugin(name="guest", version="1.0", api=">=1,<2", permissions=["propose_edits"])

@command("guest", help="Answers from its worker")
async def guest(ctx):
    import os
    assert ctx.can("propose_edits") and not ctx.can("call_model")
    return f"from pid {os.getpid()}: {ctx.text or 'nothing'}"

@command("peek", help="Tries the model without the permission")
async def peek(ctx):
    try:
        await ctx.ask("hello?")
    except PermissionError as exc:
        return f"refused in the worker: {exc}"
    return "the model answered"

@command("hog", help="Allocates past its memory limit")
async def hog(ctx):
    blocks = [bytearray(64 * 1024 * 1024) for _ in range(64)]
    return str(len(blocks))

@hookimpl
def pre_input(text):
    return "/guest rewritten" if text == "ping guest" else None
"""


@pytest.fixture
def rubberduck_config(fake_llm: Any, tmp_path: Path) -> dict[str, Any]:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "guest.py").write_text(textwrap.dedent(GUEST))
    return {
        "model": "openai/fake-model",
        "api_base": fake_llm.base_url,
        "api_key": "sk-test-key",
        "ollama_url": "http://127.0.0.1:9",
        "plugins_dir": str(folder),
        "plugins_untrusted": ["guest"],
        "plugin_worker_memory_mib": 256,
        "plugin_command_timeout": 20.0,
    }


async def _rows(jp_fetch: Any) -> dict[str, Any]:
    rows = json.loads((await jp_fetch("rubberduck", "api", "plugins")).body)["plugins"]
    return {r["name"]: r for r in rows}


async def test_an_untrusted_plugin_answers_from_its_worker_within_its_permissions(
    jp_fetch: Any, jp_ws_fetch: Any, read_turn: Any, fake_llm: Any
) -> None:
    import os

    async def loaded() -> dict[str, Any] | None:
        row = (await _rows(jp_fetch)).get("guest")
        return row if row and row["state"] == "loaded" else None

    row = await eventually(loaded, "the guest plugin loaded in its worker")
    assert row["source"].endswith("guest.py (isolated worker)")
    ws = await jp_ws_fetch("rubberduck", "ws")
    await ws.read_message()

    async def turn(msg_id: str, text: str) -> str:
        frame = {"type": "chat", "id": msg_id, "conversation_id": "iso", "text": text}
        ws.write_message(json.dumps(frame))
        frames = await read_turn(ws, msg_id)
        return "".join(f["text"] for f in frames if f["type"] == "chunk")

    answer = await turn("a1", "/guest hi there")
    assert answer.startswith("from pid ") and answer.endswith(": hi there")
    assert int(answer.split()[2].rstrip(":")) != os.getpid()  # not the server's process
    assert (await turn("a2", "ping guest")).endswith(": rewritten")  # a hook over the RPC
    answer = await turn("a3", "/peek")
    assert answer.startswith("refused in the worker: plugin 'guest' called ctx.ask() without")
    assert not fake_llm.requests
    answer = await turn("a4", "/hog")
    assert "killed: memory limit 256 MiB (RLIMIT_AS)" in answer

    async def restarted() -> dict[str, Any] | None:
        health = json.loads((await jp_fetch("rubberduck", "api", "health")).body)
        worker = health["subsystems"]["plugins"]["workers"].get("guest")
        return (
            worker if worker and worker["restarts"] >= 1 and worker["state"] == "running" else None
        )

    worker = await eventually(restarted, "the guest worker restarted")
    assert "memory limit" in worker["last_exit_reason"]
    assert (await turn("a5", "/guest again")).endswith(": again")
    ws.close()
