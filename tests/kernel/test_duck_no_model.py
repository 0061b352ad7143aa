"""%duck on a server with no model: a plain explanation in the cell, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.kernel.kernel_harness import execute, server_kernel

pytestmark = pytest.mark.kernel


@pytest.fixture
def jp_server_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"rubberduck_jupyter": True}},
        # No model, no detection: an Ollama that cannot answer, no provider key.
        "RubberDuckApp": {"ollama_url": "http://127.0.0.1:9", "model": ""},
    }


async def test_no_model_is_explained_in_the_cell(
    jp_fetch: Any, jp_serverapp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RUBBERDUCK_MODEL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    async with server_kernel(jp_fetch, jp_serverapp) as kernel:
        asked = await execute(kernel, "%duck how do I pivot")
        models = await execute(kernel, "%duck models")
        use = await execute(kernel, "%duck use gpt-4o")
    assert asked.error == "" and models.error == "" and use.error == ""
    answer = asked.answer()
    assert answer["status"] in ("done", "error")
    said = answer["markdown"] + " ".join(n["message"] for n in answer["notices"])
    said += (answer["error"] or {}).get("message", "")
    assert "model" in said.lower() and "configur" in said.lower(), answer
    assert "no model is configured on the server" in models.stdout
    assert "is not a model you may use here (none are configured)" in use.stderr
