"""Kernels for the magics' tests: one started through the server's REST API (as JupyterLab
starts one), and what running a cell in it produced, message by message."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

ANSWER_MIME = "application/vnd.rubberduck.answer.v1+json"


@dataclass
class Execution:
    stdout: str = ""
    stderr: str = ""
    error: str = ""
    # (display_id, bundle) of each display_data, and of each update_display_data with the
    # time it arrived (time.monotonic()).
    displays: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)
    updates: list[tuple[str | None, dict[str, Any], float]] = field(default_factory=list)

    def answer(self) -> dict[str, Any]:
        """The answer's JSON as the cell shows it at the end (the last display or update)."""
        bundles = [b for _, b in self.displays] + [b for _, b, _ in self.updates]
        shown = [b[ANSWER_MIME] for b in bundles if ANSWER_MIME in b]
        assert shown, f"no RubberDuck answer was displayed: {self}"
        return shown[-1]

    def final_bundle(self) -> dict[str, Any]:
        bundles = [b for _, b in self.displays] + [b for _, b, _ in self.updates]
        return bundles[-1]


async def execute(
    client: Any,
    code: str,
    timeout: float = 60,
    *,
    on_message: Any = None,
) -> Execution:
    """Runs `code` and collects its output until the kernel is idle again."""
    msg_id = client.execute(code)
    out = Execution()
    while True:
        msg = await asyncio.wait_for(client.get_iopub_msg(), timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if on_message is not None:
            await on_message(kind, content)
        display_id = (content.get("transient") or {}).get("display_id")
        if kind == "stream":
            out.__dict__[content["name"]] += content["text"]
        elif kind == "error":
            out.error += "\n".join(content["traceback"])
        elif kind == "display_data":
            out.displays.append((display_id, content["data"]))
        elif kind == "update_display_data":
            out.updates.append((display_id, content["data"], time.monotonic()))
        elif kind == "status" and content["execution_state"] == "idle":
            return out


@contextlib.asynccontextmanager
async def server_kernel(jp_fetch: Any, jp_serverapp: Any) -> AsyncIterator[Any]:
    """A kernel started through the server's REST API, as JupyterLab starts one."""
    response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    kernel_id = json.loads(response.body)["id"]
    manager = jp_serverapp.kernel_manager.get_kernel(kernel_id)
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        loaded = await execute(client, "%load_ext rubberduck_magics")
        assert loaded.error == "", loaded
        yield client
    finally:
        client.stop_channels()
        await jp_serverapp.kernel_manager.shutdown_kernel(kernel_id, now=True)


def prompt_of(request: dict[str, Any]) -> str:
    """Everything the provider was sent in one request, as one string."""
    return "\n".join(str(m.get("content", "")) for m in request["messages"])
