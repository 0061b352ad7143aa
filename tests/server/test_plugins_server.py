"""Plugins in a real Jupyter server: a plugins folder, the list API, commands and hooks in
chat turns, review findings, disabling, timeouts, permissions, policy and hot reload."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import eventually

pytestmark = pytest.mark.timeout(60)

GREET = """
from rubberduck_jupyter.plugins import command, hookimpl, plugin

spec = plugin(name="greet", version="{version}", api=">=1,<2", description="Greets")

@command("greet", help="Greet someone", args=["NAME?"])
async def greet(ctx, name="you"):
    return "{word}, " + name + "!"

@command("slow-greet", help="Greet after a pause")
async def slow_greet(ctx):
    import asyncio
    await asyncio.sleep({pause})
    return "{word} after a pause"

@hookimpl
def pre_input(text):
    return text.replace("hi duck", "/greet duck") if text.startswith("hi duck") else None
"""

CRASHER = """
from rubberduck_jupyter.plugins import hookimpl, plugin

spec = plugin(name="crasher", version="0.1", api=">=1,<2")

@hookimpl
def post_response(text):
    raise ValueError("boom")
"""

NOSY = """
from rubberduck_jupyter.plugins import command, plugin

spec = plugin(name="nosy", version="0.1", api=">=1,<2", permissions=["propose_edits"])

@command("nosy", help="Asks the model without the permission")
async def nosy(ctx):
    return await ctx.ask("what is in the notebook?")

@command("hang", help="Never answers")
async def hang(ctx):
    import asyncio
    await asyncio.sleep(3600)
"""

LINTER = """
from rubberduck_jupyter.plugins import hookimpl, plugin

spec = plugin(name="linter", version="0.1", api=">=1,<2", provides=["analysis"])

@hookimpl
def analysis_augment(source, findings):
    if "TODO" not in source:
        return None
    line = source[: source.index("TODO")].count("\\n") + 1
    return [
        {"code": "LN1", "message": "a TODO is left", "line": line, "severity": "info",
         "fix": "remove it", "replacement": source.replace("# TODO", "")},
        {"code": "LN2", "message": "fix that breaks the cell", "line": 1,
         "replacement": "def (:"},
        {"code": "LN3", "message": "outside the cell", "line": 999},
        {"message": "no code"},
    ]
"""

LISTENER = """
import asyncio
from rubberduck_jupyter.plugins import AnalysisDone, AnswerDone, on_event, plugin

spec = plugin(name="listener", version="0.1", api=">=1,<2")
SEEN = []

@on_event(AnswerDone)
async def stuck(event):
    await asyncio.sleep(3600)  # a handler that never returns (the bus cuts it at 5 s)

@on_event(AnswerDone, AnalysisDone)
async def record(event):
    SEEN.append((type(event).__name__, getattr(event, "engine", getattr(event, "path", ""))))
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def plugins_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    write(folder, "greet", GREET.format(version="1.0", word="Hello", pause=3.0))
    write(folder, "crasher", CRASHER)
    write(folder, "nosy", NOSY)
    write(folder, "linter", LINTER)
    write(folder, "listener", LISTENER)
    write(folder, "broken", "raise RuntimeError('no luck')\n")
    write(
        folder,
        "future",
        "from rubberduck_jupyter.plugins import plugin\n"
        "spec = plugin(name='future', version='1.0', api='>=2,<3')\n",
    )
    return folder


@pytest.fixture
def command_timeout() -> float:
    return 0.5


@pytest.fixture
def rubberduck_config(fake_llm: Any, plugins_dir: Path, command_timeout: float) -> dict[str, Any]:
    return {
        "model": "openai/fake-model",
        "api_base": fake_llm.base_url,
        "api_key": "sk-test-key",
        "ollama_url": "http://127.0.0.1:9",
        "plugins_dir": str(plugins_dir),
        "plugin_command_timeout": command_timeout,
        "plugins_deny": ["problem_solver"],
    }


async def _chat(
    ws: Any, read_turn: Any, msg_id: str, text: str, outside: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """One turn's frames; frames outside turns (`plugins`) go to `outside` when given."""
    frame = {"type": "chat", "id": msg_id, "conversation_id": "c1", "text": text}
    ws.write_message(json.dumps(frame))
    if outside is None:
        return await read_turn(ws, msg_id)
    frames = []
    while True:
        got = json.loads(await asyncio.wait_for(ws.read_message(), 30))
        if got.get("id") != msg_id:
            outside.append(got)
            continue
        frames.append(got)
        if got["type"] in {"done", "error"}:
            return frames


def _answer(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "chunk")


async def test_the_list_api_shows_every_plugin_with_its_state(jp_fetch: Any) -> None:
    rows = json.loads((await jp_fetch("rubberduck", "api", "plugins")).body)["plugins"]
    by_name = {r["name"]: r for r in rows}
    for builtin in ("simple", "analysis", "generation", "help", "static-review"):
        assert by_name[builtin]["state"] == "loaded"
        assert by_name[builtin]["source"].startswith("built-in")
    assert by_name["problem_solver"]["state"] == "skipped"
    assert "plugins_deny" in by_name["problem_solver"]["reason"]
    assert by_name["greet"]["state"] == "loaded" and by_name["greet"]["version"] == "1.0"
    assert by_name["nosy"]["permissions"] == ["propose_edits"]
    assert by_name["broken"]["state"] == "failed"
    assert "RuntimeError: no luck" in by_name["broken"]["reason"]
    assert by_name["future"]["state"] == "skipped" and "too old" in by_name["future"]["reason"]


async def test_a_plugin_command_answers_and_joins_the_command_list(
    jp_ws_fetch: Any, read_turn: Any, history: Any
) -> None:
    ws = await jp_ws_fetch("rubberduck", "ws")
    hello = json.loads(await ws.read_message())
    commands = {c for e in hello["engines"] for c in e["commands"]}
    assert {"/greet", "/slow-greet", "/nosy", "/help"} <= commands
    assert "/fix" not in commands  # problem_solver is denied
    frames = await _chat(ws, read_turn, "m1", "/greet Ada")
    route = next(f for f in frames if f["type"] == "route")
    assert route["engine"] == "greet" and route["forced"]
    assert _answer(frames) == "Hello, Ada!" and frames[-1]["type"] == "done"
    # pre_input rewrote the text for routing; the stored question is what the user wrote.
    frames = await _chat(ws, read_turn, "m2", "hi duck")
    assert _answer(frames) == "Hello, duck!"
    stored = await history("c1")
    assert ("user", "hi duck") in stored and ("assistant", "Hello, duck!") in stored
    frames = await _chat(ws, read_turn, "m3", "/help")
    assert "`/greet`" in _answer(frames) and "Greet someone" in _answer(frames)
    ws.close()


async def test_refusals_timeouts_and_a_disabled_plugin_leave_chat_working(
    jp_ws_fetch: Any, read_turn: Any, jp_fetch: Any, fake_llm: Any
) -> None:
    ws = await jp_ws_fetch("rubberduck", "ws")
    await ws.read_message()
    outside: list[dict[str, Any]] = []
    frames = await _chat(ws, read_turn, "p1", "/nosy", outside)
    assert "without the 'call_model' permission" in _answer(frames)
    assert not fake_llm.requests  # refused in the server: no model call was made
    frames = await _chat(ws, read_turn, "p2", "/hang", outside)
    assert "/hang timed out after 0.5 s" in _answer(frames) and frames[-1]["type"] == "done"
    # crasher's post_response fails after every answer (these two were its 1st and 2nd):
    # the third failure disables it, and the sidebar is told.
    assert outside == []
    fake_llm.set_replies(["answer 0"])
    frames = await _chat(ws, read_turn, "q0", "what is 0?", outside)
    assert _answer(frames) == "answer 0"
    while not outside:
        outside.append(json.loads(await asyncio.wait_for(ws.read_message(), 10)))
    [frame] = outside
    assert frame["type"] == "plugins" and frame["changed"]["name"] == "crasher"
    assert frame["changed"]["state"] == "disabled"
    assert "3 consecutive failures" in frame["changed"]["reason"]
    assert "ValueError: boom" in frame["changed"]["reason"]
    assert any("/greet" in e["commands"] for e in frame["engines"])
    health = json.loads((await jp_fetch("rubberduck", "api", "health")).body)
    assert health["subsystems"]["plugins"]["disabled"] == ["crasher"]
    assert health["subsystems"]["plugins"]["plugins"]["crasher"]["failures"] == 3
    fake_llm.set_replies(["still here"])
    frames = await _chat(ws, read_turn, "q9", "and now?")
    assert _answer(frames) == "still here"
    ws.close()


async def test_review_carries_plugin_findings_whose_fixes_parse(jp_fetch: Any) -> None:
    source = "x = 1  # TODO\nprint(x)\n"
    body = json.dumps({"source": source})
    answer = json.loads(
        (await jp_fetch("rubberduck", "api", "review", "cell", method="POST", body=body)).body
    )
    mine = [f for f in answer["findings"] if f.get("source") == "plugin"]
    assert [(f["code"], f["plugin"], f["line"]) for f in mine] == [
        ("LN1", "linter", 1),
        ("LN2", "linter", 1),
    ]
    assert mine[0]["replacement"] == "x = 1  \nprint(x)\n"
    assert mine[1]["replacement"] is None  # it did not parse: not offered
    cells = [{"index": 0, "source": "y = 2\n"}, {"index": 1, "source": source}]
    body = json.dumps({"cells": cells, "static": True})
    answer = json.loads(
        (await jp_fetch("rubberduck", "api", "review", "notebook", method="POST", body=body)).body
    )
    codes = {
        e["index"]: [f["code"] for f in e["findings"] if f.get("source") == "plugin"]
        for e in answer["static"]
    }
    assert codes == {0: [], 1: ["LN1", "LN2"]}


@pytest.mark.parametrize("command_timeout", [30.0])
async def test_hot_reload_swaps_a_plugin_and_a_failed_reload_keeps_it(
    jp_ws_fetch: Any, read_turn: Any, plugins_dir: Path, jp_fetch: Any
) -> None:
    ws = await jp_ws_fetch("rubberduck", "ws")
    await ws.read_message()
    # A slow command (3 s) on version 1 is running when version 2 lands; it finishes as v1.
    started = asyncio.get_running_loop().time()
    ws.write_message(
        json.dumps({"type": "chat", "id": "s1", "conversation_id": "c2", "text": "/slow-greet"})
    )
    await asyncio.sleep(0.3)
    write(plugins_dir, "greet", GREET.format(version="2.0", word="Howdy", pause=0.01))

    async def reloaded() -> bool:
        rows = json.loads((await jp_fetch("rubberduck", "api", "plugins")).body)["plugins"]
        return any(r["name"] == "greet" and r["version"] == "2.0" for r in rows)

    await eventually(reloaded, "greet 2.0 loaded")
    assert asyncio.get_running_loop().time() - started < 2.8, "reloaded after v1's call ended"
    assert _answer(await read_turn(ws, "s1")) == "Hello after a pause"
    assert _answer(await _chat(ws, read_turn, "g2", "/greet Bo")) == "Howdy, Bo!"
    (plugins_dir / "greet.py").write_text("this is not python (\n")

    async def refused() -> dict[str, Any] | None:
        rows = json.loads((await jp_fetch("rubberduck", "api", "plugins")).body)["plugins"]
        row = next(r for r in rows if r["name"] == "greet")
        return row if "reload failed" in row["reason"] else None

    row = await eventually(refused, "the failed reload reported")
    assert row["state"] == "loaded" and row["version"] == "2.0"
    assert "SyntaxError" in row["reason"] and "version 2.0 keeps running" in row["reason"]
    assert _answer(await _chat(ws, read_turn, "g3", "/greet Cy")) == "Howdy, Cy!"
    (plugins_dir / "greet.py").unlink()

    async def removed() -> bool:
        rows = json.loads((await jp_fetch("rubberduck", "api", "plugins")).body)["plugins"]
        return not any(r["name"] == "greet" and r["state"] == "loaded" for r in rows)

    await eventually(removed, "greet unloaded after its file was deleted")
    frames = await _chat(ws, read_turn, "g4", "/greet Di")
    assert "`/greet` is not a command" in _answer(frames)
    ws.close()


async def test_plugins_get_events_in_order_and_a_stuck_handler_delays_only_itself(
    jp_ws_fetch: Any, read_turn: Any, jp_fetch: Any, jp_serverapp: Any
) -> None:
    host = jp_serverapp.web_app.settings["rubberduck_jupyter"].plugins
    seen = host.registry.get("listener").module.SEEN
    ws = await jp_ws_fetch("rubberduck", "ws")
    await ws.read_message()
    for n in range(3):
        await _chat(ws, read_turn, f"e{n}", f"/greet {n}")
    body = json.dumps({"source": "x = 1\n"})
    await jp_fetch("rubberduck", "api", "review", "cell", method="POST", body=body)

    async def all_seen() -> bool:
        return len(seen) == 4

    await eventually(all_seen, "three answers and a review seen", timeout=5)
    assert seen == [("AnswerDone", "greet")] * 3 + [("AnalysisDone", "cell")]
    stats = host.bus.stats()["subscribers"]
    assert stats["listener:record"]["delivered"] == 4
    assert stats["listener:stuck"]["delivered"] == 0  # still on the first event
    ws.close()
