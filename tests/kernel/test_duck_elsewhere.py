"""%duck from a kernel the server did not start (`%duck connect`), and `%duck search` over a
real index of the server's root."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import start_new_async_kernel

from tests.kernel.kernel_harness import execute, prompt_of
from tests.server_fixtures import indexed_config

pytestmark = pytest.mark.kernel


@pytest.fixture
def jp_server_config(fake_llm: Any, tmp_path: Path) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"rubberduck_jupyter": True}},
        "RubberDuckApp": indexed_config(fake_llm, tmp_path, index_watch=False),
    }


@contextlib.asynccontextmanager
async def kernel_elsewhere() -> AsyncIterator[Any]:
    """A kernel started by jupyter_client, as a terminal or VS Code would: it knows no
    server (the variables a server would export are removed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUBBERDUCK_")}
    manager, client = await start_new_async_kernel(kernel_name="python3", env=env)
    try:
        loaded = await execute(client, "%load_ext rubberduck_magics")
        assert loaded.error == ""
        yield client
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


async def test_connect_points_a_foreign_kernel_at_the_server(
    jp_serverapp: Any, jp_fetch: Any, fake_llm: Any
) -> None:
    # jp_fetch: pytest-jupyter's server listens on its port only once a client fixture asks.
    fake_llm.set_replies(["Hello from afar."])
    url = jp_serverapp.connection_url
    token = jp_serverapp.identity_provider.token
    async with kernel_elsewhere() as kernel:
        before = await execute(kernel, "%duck hello")
        wrong = await execute(kernel, f"%duck connect {url} --token not-the-token")
        bad_url = await execute(kernel, "%duck connect localhost:8888")
        connected = await execute(kernel, f"%duck connect {url} --token {token}")
        asked = await execute(kernel, "%duck hello")
        models = await execute(kernel, "%duck models")
    assert "does not know a RubberDuck server" in before.stderr
    assert "%duck connect http://HOST:PORT/ --token TOKEN" in before.stderr
    assert "refused this kernel's credentials" in wrong.stderr
    assert "is not a server address" in bad_url.stderr
    for case in (before, wrong, bad_url):
        assert case.error == "" and len(case.stderr.strip().splitlines()) == 1, case
    assert f"connected to {url}" in connected.stdout
    assert asked.answer()["markdown"] == "Hello from afar."
    assert asked.answer()["server_url"] == url
    assert "hello" in prompt_of(fake_llm.requests[-1])
    assert "openai/fake-model" in models.stdout or "fake-model" in models.stdout


async def test_search_lists_index_hits_with_paths_and_cells(
    jp_serverapp: Any, jp_fetch: Any, jp_root_dir: Path, fake_llm: Any
) -> None:
    notebook = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# Weather"},
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": "rainfall = load_rainfall('seattle.csv')\nrainy_days = rainfall > 0",
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (jp_root_dir / "weather.ipynb").write_text(json.dumps(notebook))
    (jp_root_dir / "tools.py").write_text("def parse_dates(text):\n    return text.split('-')\n")
    await jp_fetch("rubberduck", "api", "index", method="POST", body="{}")
    for _ in range(300):
        status = json.loads((await jp_fetch("rubberduck", "api", "index")).body)
        if status["state"] == "idle" and status["chunks"] >= 2:
            break
        await asyncio.sleep(0.1)
    assert status["chunks"] >= 2, status
    response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    kernel_id = json.loads(response.body)["id"]
    client = jp_serverapp.kernel_manager.get_kernel(kernel_id).client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        await execute(client, "%load_ext rubberduck_magics")
        found = await execute(client, "%duck search rainfall seattle rainy days")
        nothing = await execute(client, "%duck search zzqqxx")
    finally:
        client.stop_channels()
        await jp_serverapp.kernel_manager.shutdown_kernel(kernel_id, now=True)
    answer = found.answer()
    assert answer["title"] == "Search: rainfall seattle rainy days"
    assert answer["citations"][0]["path"] == "weather.ipynb"
    assert "cell" in answer["citations"][0]
    assert "`weather.ipynb`, cell" in answer["markdown"]
    assert "rainy_days" in answer["markdown"]
    assert nothing.error == ""
    assert "No matches" in nothing.answer()["markdown"] or nothing.answer()["citations"]
    # A search asks no model.
    assert all("messages" not in r for r in fake_llm.requests)


async def test_a_terminal_ipython_gets_plain_text(
    jp_serverapp: Any, jp_fetch: Any, fake_llm: Any, tmp_path: Path
) -> None:
    fake_llm.set_replies(["Use **groupby**.\n\n```python\ndf.groupby('a').sum()\n```"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUBBERDUCK_")}
    env |= {
        "RUBBERDUCK_SERVER_URL": jp_serverapp.connection_url,
        "RUBBERDUCK_TOKEN": jp_serverapp.identity_provider.token,
        "IPYTHONDIR": str(tmp_path / "ipython"),
    }
    code = "%load_ext rubberduck_magics\n%duck how do I total by group\n%duck fix"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "IPython",
        "--quick",
        "--colors=nocolor",
        "-c",
        code,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    out, err = stdout.decode(), stderr.decode()
    # The answer as it came, on stdout; nothing of the display machinery.
    assert "Use **groupby**." in out and "df.groupby('a').sum()" in out, (out, err)
    assert "application/vnd.rubberduck" not in out and "<IPython" not in out
    assert "RubberDuck: Nothing has failed in this kernel yet" in err
    assert "Traceback" not in out + err
