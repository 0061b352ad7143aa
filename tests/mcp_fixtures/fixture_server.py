"""A small MCP server for the tests, written with the SDK: `python fixture_server.py
[stdio|http PORT] [--mode ok|hang-start|hang-call|crash-call]`.

Tools: `echo(text)` answers the text back (and the value of $FIXTURE_SECRET when
`secret` is true, to show results are redacted); `add(a, b)`; `slow()` (never answers in
`hang-call` mode, or always: a call that hangs); `write_note(text)` annotated as not
read-only, appending to $FIXTURE_CALLS_FILE (to show it never ran). Every call is logged
one line to $FIXTURE_CALLS_FILE when that is set, so a test sees what really ran.
`hang-start` never answers the handshake; `crash-call` exits during any call."""

from __future__ import annotations

import os
import sys
import time


def _log(line: str) -> None:
    path = os.environ.get("FIXTURE_CALLS_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def main(argv: list[str]) -> None:
    mode = "ok"
    if "--mode" in argv:
        mode = argv[argv.index("--mode") + 1]
    if mode == "hang-start":
        # Reads nothing, answers nothing: a server stuck before its handshake.
        time.sleep(120)
        return

    import anyio
    from mcp.server.mcpserver import MCPServer
    from mcp_types import ToolAnnotations

    server = MCPServer("fixture")

    def _maybe_crash(name: str) -> None:
        _log(name)
        if mode == "crash-call":
            os._exit(3)

    @server.tool(description="Answer the text back.")
    def echo(text: str, secret: bool = False) -> str:
        _maybe_crash(f"echo {text}")
        if secret:
            return f"echo: {text} key={os.environ.get('FIXTURE_SECRET', '')}"
        return f"echo: {text}"

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> str:
        _maybe_crash(f"add {a} {b}")
        return str(a + b)

    @server.tool(description="Take a long time.")
    async def slow() -> str:
        _maybe_crash("slow")
        await anyio.sleep(120)
        return "late"

    @server.tool(
        description="Write a note somewhere (changes something).",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True),
    )
    def write_note(text: str) -> str:
        _maybe_crash(f"write_note {text}")
        return "written"

    if len(argv) > 1 and argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(argv[2]))
    else:
        server.run("stdio")


if __name__ == "__main__":
    main(sys.argv)
