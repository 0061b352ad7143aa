"""%%duck in a real IPython kernel started by the Jupyter server, with no user setup."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytestmark = pytest.mark.kernel


async def _execute(client: Any, code: str, timeout: float = 60) -> dict[str, str]:
    """Run code; return the text it wrote to stdout and stderr."""
    msg_id = client.execute(code)
    out = {"stdout": "", "stderr": "", "error": ""}
    while True:
        msg = await asyncio.wait_for(client.get_iopub_msg(), timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out[content["name"]] += content["text"]
        elif kind == "error":
            out["error"] += "\n".join(content["traceback"])
        elif kind == "status" and content["execution_state"] == "idle":
            return out


@contextlib.asynccontextmanager
async def running_kernel(jp_fetch: Any, jp_serverapp: Any) -> AsyncIterator[Any]:
    """A kernel started through the server's REST API, as JupyterLab starts one."""
    response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    kernel_id = json.loads(response.body)["id"]
    manager = jp_serverapp.kernel_manager.get_kernel(kernel_id)
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        yield client
    finally:
        client.stop_channels()
        await jp_serverapp.kernel_manager.shutdown_kernel(kernel_id, now=True)


async def test_duck_cell_streams_the_answer_into_the_cell(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["Use df.dropna() to drop rows with missing values."])
    async with running_kernel(jp_fetch, jp_serverapp) as kernel:
        loaded = await _execute(kernel, "%load_ext rubberduck_magics")
        assert loaded["error"] == ""
        out = await _execute(kernel, "%%duck\nHow do I drop missing rows in pandas?")
        fake_llm.set_replies(["Pass subset= to choose the columns."])
        again = await _execute(kernel, "%%duck\nOnly some columns?")
    assert out["error"] == "", out
    # This server has no index: the magic says so once, on stderr, beside the answer.
    assert out["stderr"].startswith("RubberDuck: This project has no index yet"), out
    assert again["stderr"] == "", again
    assert again["stdout"].strip() == "Pass subset= to choose the columns."
    assert out["stdout"].strip() == "Use df.dropna() to drop rows with missing values."
    request = fake_llm.requests[0]
    assert request["messages"][-1]["content"] == "How do I drop missing rows in pandas?"


async def test_duck_sends_the_last_error_when_asked(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    async with running_kernel(jp_fetch, jp_serverapp) as kernel:
        await _execute(kernel, "%load_ext rubberduck_magics")
        await _execute(kernel, "1 / 0")
        out = await _execute(kernel, "%duck --error explain that failure")
    assert out["error"] == ""
    prompt = fake_llm.requests[-1]["messages"][-1]["content"]
    assert "ZeroDivisionError" in prompt
    assert "explain that failure" in prompt
    # An error plus a question about it goes to the problem solver, which parsed it first.
    assert "Parsed error: ZeroDivisionError" in prompt


async def test_duck_describes_the_kernels_variables(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["Sum the values."])
    async with running_kernel(jp_fetch, jp_serverapp) as kernel:
        await _execute(kernel, "%load_ext rubberduck_magics")
        await _execute(
            kernel,
            "sales = {'north': 3, 'south': 5}\nlabels = ['a', 'b', 'c']\nimport math\n"
            "class Odd:\n    def __repr__(self):\n        raise RuntimeError('no repr')\n"
            "odd = Odd()",
        )
        out = await _execute(kernel, "%%duck\nhow do I total sales?")
        quiet = await _execute(kernel, "%%duck --no-vars\nand without variables?")
    assert out["error"] == "" and quiet["error"] == ""
    prompts = [r["messages"][-1]["content"] for r in fake_llm.requests[-2:]]
    assert "- sales: dict — len 2" in prompts[0]
    assert "- labels: list — len 3" in prompts[0]
    assert "- odd: Odd" in prompts[0]  # its repr raised: the summary is just left out
    assert "math" not in prompts[0].split("Kernel variables:")[1]
    assert "Kernel variables" not in prompts[1]


async def test_duck_reports_a_refused_token_plainly(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    async with running_kernel(jp_fetch, jp_serverapp) as kernel:
        await _execute(kernel, "%load_ext rubberduck_magics")
        await _execute(kernel, "import os; os.environ['RUBBERDUCK_KERNEL_TOKEN'] = 'forged'")
        out = await _execute(kernel, "%%duck\nhello")
    assert "refused this kernel's credentials" in out["stderr"]
    assert fake_llm.requests == []
