"""`c.RubberDuckApp.mcp_servers` in a real Jupyter server: nothing starts with the
server, the first `/agent` turn (over the REST door) starts the fixture MCP server and
calls its tool, a secret from the config never comes back, and a user's own server in
the user file is left out when the admin turns user servers off."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

FIXTURE = str(Path(__file__).parents[1] / "mcp_fixtures" / "fixture_server.py")
SECRET = "app-fixture-secret-42424242"


@pytest.fixture
def rubberduck_config(fake_llm: Any, tmp_path: Path) -> dict[str, Any]:
    user_file = tmp_path / "mcp.json"
    user_file.write_text(
        json.dumps({"mcp_servers": {"mine": {"command": [sys.executable, FIXTURE]}}})
    )
    return {
        "model": "openai/fake-model",
        "api_base": fake_llm.base_url,
        "api_key": "sk-test-key",
        "ollama_url": "http://127.0.0.1:9",
        "mcp_servers": {
            "fx": {
                "command": [sys.executable, FIXTURE],
                "env": {"FIXTURE_SECRET": SECRET},
                "permission": "read",
                "start_timeout": 60,  # a loaded 2-core machine starts it in seconds
            }
        },
        "mcp_allow_user_servers": False,
        "mcp_user_servers_file": str(user_file),
    }


def _body(text: str) -> str:
    return json.dumps({"type": "chat", "id": "m1", "conversation_id": "c-mcp", "text": text})


async def test_the_first_agent_turn_starts_the_server_and_calls_its_tool(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    app = jp_serverapp.web_app.settings["rubberduck_jupyter"]
    assert [s.name for s in app.mcp.specs] == ["fx"]  # "mine" is the user's: off here
    assert app.mcp._connections == {}  # nothing started with the server
    assert SECRET in app.redactor.secrets()
    fake_llm.set_replies(
        [
            {"tool_calls": [{"name": "fx__echo", "arguments": {"text": "hi", "secret": True}}]},
            "It echoed.",
        ]
    )
    response = await jp_fetch(
        "rubberduck", "api", "chat", method="POST", body=_body("/agent echo hi")
    )
    body = response.body.decode()
    frames = [json.loads(line) for line in body.splitlines()]
    assert frames[-1]["type"] == "done"
    offered = {t["function"]["name"] for t in fake_llm.requests[0]["tools"]}
    assert "fx__echo" in offered and not any(n.startswith("mine__") for n in offered)
    tool_answer = [m for m in fake_llm.requests[1]["messages"] if m["role"] == "tool"][-1]
    assert tool_answer["content"].startswith("echo: hi key=")
    assert SECRET not in body and SECRET not in json.dumps(fake_llm.requests)
    assert app.mcp._connections["fx"].state == "ready"
