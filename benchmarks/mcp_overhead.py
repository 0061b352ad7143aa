"""MCP, both directions: what RubberDuck adds to an MCP server's tool call, and how fast
`jupyter rubberduck mcp` answers another agent.

    python benchmarks/mcp_overhead.py [--rounds 15]

(Not "mcp.py": run as a script, its folder is first on sys.path and that name would
shadow the SDK.)

1. Client side. The fixture MCP server (tests/mcp_fixtures, over stdio) echoes a 50-line
   text. Baseline: the SDK's own `call_tool` on the connection RubberDuck holds. Ours: the
   agent's path for the same call (the dispatcher: argument JSON and schema check, the
   adapter, the connection's bound, the result's text, redaction). Interleaved rounds of
   20 calls each, medians; also the per-turn tool listing of a ready server and the cold
   first turn (spawn, SDK import, handshake, tools/list).
2. Server side. `jupyter rubberduck mcp` over stdio on a keyword index of this package's
   own sources (embedder "none", so no model load is timed): spawn to an answered
   `list_tools`, then `read_file` and `search_project` per call. Baseline for the search:
   the same query through `jupyter rubberduck search`, a fresh process per search, which
   is what an agent without our server would run.
The 1-minute load average is printed with each result: on a shared 2-core machine it is
the first thing to read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rubberduck_jupyter.context.redact import Redactor  # noqa: E402
from rubberduck_jupyter.llm.client import ToolCall  # noqa: E402
from rubberduck_jupyter.protocol import ChatContext  # noqa: E402
from rubberduck_jupyter.tools.base import ToolContext  # noqa: E402
from rubberduck_jupyter.tools.dispatch import Dispatcher  # noqa: E402
from rubberduck_jupyter.tools.mcp import McpServers  # noqa: E402
from rubberduck_jupyter.tools.registry import default_tools  # noqa: E402

FIXTURE = REPO / "tests" / "mcp_fixtures" / "fixture_server.py"
CALLS_PER_ROUND = 20
TEXT_50_LINES = "\n".join(f"line {i}: " + "x" * 40 for i in range(50))


async def _no_notice(code: str, message: str) -> None:
    return None


async def client_side(rounds: int) -> dict[str, float]:
    started = time.perf_counter()
    servers = McpServers(
        {"fx": {"command": [sys.executable, str(FIXTURE)], "permission": "read"}},
        admin_dirs=[],
        redact=Redactor().text,
    )
    tools = await servers.turn_tools(_no_notice)
    cold_s = time.perf_counter() - started
    connection = servers._connections["fx"]
    sdk = connection._client  # the SDK session RubberDuck holds
    if sdk is None or not tools:
        raise SystemExit(f"the fixture MCP server did not start: {connection.error}")
    dispatcher = Dispatcher(default_tools().extended(tools))
    ctx = ToolContext(context=ChatContext())
    arguments = json.dumps({"text": TEXT_50_LINES})
    sdk_ms: list[float] = []
    ours_ms: list[float] = []
    for r in range(rounds):
        for kind in ("sdk", "ours") if r % 2 == 0 else ("ours", "sdk"):
            t = time.perf_counter()
            for _ in range(CALLS_PER_ROUND):
                if kind == "sdk":
                    await sdk.call_tool("echo", {"text": TEXT_50_LINES})
                else:
                    out = await dispatcher.run(ToolCall("c1", "fx__echo", arguments), ctx)
                    assert out.result.ok, out.result.text
            (sdk_ms if kind == "sdk" else ours_ms).append(
                (time.perf_counter() - t) / CALLS_PER_ROUND * 1000
            )
    listing_ms = []
    for _ in range(200):
        t = time.perf_counter()
        listed = await servers.turn_tools(_no_notice)
        default_tools().extended(listed).schemas()
        listing_ms.append((time.perf_counter() - t) * 1000)
    await servers.stop()
    sdk_call, ours_call = statistics.median(sdk_ms), statistics.median(ours_ms)
    return {
        "cold_first_turn_s": round(cold_s, 3),
        "sdk_call_ms": round(sdk_call, 3),
        "ours_call_ms": round(ours_call, 3),
        "added_ms": round(ours_call - sdk_call, 3),
        "ratio": round(ours_call / sdk_call, 3),
        "turn_listing_ms": round(statistics.median(listing_ms), 3),
    }


def _jupyter_rubberduck(*args: str) -> list[str]:
    return [sys.executable, "-m", "rubberduck_jupyter.cli", *args]


async def server_side(root: Path, db: Path, query: str, calls: int) -> dict[str, float]:
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=_jupyter_rubberduck("mcp", "--root", str(root), "--db", str(db), "--embedder", "none")[
            1:
        ],
    )
    t = time.perf_counter()
    async with Client(params, read_timeout_seconds=60) as client:
        await client.list_tools()
        start_s = time.perf_counter() - t
        reads, searches = [], []
        for _ in range(calls):
            t = time.perf_counter()
            await client.call_tool("read_file", {"path": "protocol.py"})
            reads.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await client.call_tool("search_project", {"query": query})
            searches.append((time.perf_counter() - t) * 1000)
    cli_ms = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(  # noqa: ASYNC221 (timed on purpose: a process per search)
            _jupyter_rubberduck(
                "search", query, "--root", str(root), "--db", str(db), "--embedder", "none"
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        cli_ms.append((time.perf_counter() - t) * 1000)
    search = statistics.median(searches[1:])
    cli = statistics.median(cli_ms)
    return {
        "start_to_list_tools_s": round(start_s, 3),
        "read_file_ms": round(statistics.median(reads), 2),
        "first_search_ms": round(searches[0], 1),
        "search_ms": round(search, 1),
        "cli_search_per_process_ms": round(cli, 1),
        "held_vs_cli": round(cli / search, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--query", default="parse a client frame and check its size")
    args = parser.parse_args()
    print(
        json.dumps(
            {"load1": os.getloadavg()[0], "part": "client", **asyncio.run(client_side(args.rounds))}
        )
    )
    root = REPO / "rubberduck_jupyter"
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "index.duckdb"
        subprocess.run(
            _jupyter_rubberduck(
                "index", "--root", str(root), "--db", str(db), "--embedder", "none"
            ),
            check=True,
            capture_output=True,
            timeout=600,
        )
        result = asyncio.run(server_side(root, db, args.query, args.calls))
    print(json.dumps({"load1": os.getloadavg()[0], "part": "server", **result}))


if __name__ == "__main__":
    main()
