"""How far the cell's output lags the server, and how often it is redrawn, while %duck streams.

    python benchmarks/magic_display.py [--rounds 5]

A real IPython kernel (jupyter_client) runs `%duck` against a stand-in for the server's
chat endpoint: a thread in this process that serves `POST /rubberduck/api/chat` as the
server does (NDJSON frames, one chunk per write) and notes, on this process's clock, when
it wrote the answer's last chunk (and `done` right after it). This process also reads the
kernel's iopub, so both ends of the measurement are on one clock:

- lag: from the answer's end on the server (its last chunk, followed at once by `done`) to
  the last output message of the cell received;
- updates per second: output messages of the cell during streaming.

Arms, alternating round by round, on the same streams:
- baseline: the way %duck showed answers before issue 13 (and the fastest possible echo),
  each chunk written to stdout as it arrives (`stream` messages, no throttle);
- ours: the answer as one display updated in place, throttled to 20 updates a second,
  the last state published at once.
Streams: a fast one (2,000 chunks 1 ms apart) and a model-like one (200 chunks 20 ms apart).

Goal (issue 13): under 50 ms behind the server, at most 20 updates a second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from jupyter_client.manager import start_new_async_kernel

ROOT = Path(__file__).resolve().parents[1]
STREAMS = {"fast": (2000, 0.001), "model-like": (200, 0.02)}

BASELINE = """
import json, os, sys, urllib.request
_req = urllib.request.Request(os.environ["RUBBERDUCK_SERVER_URL"] + "rubberduck/api/chat",
    data=json.dumps({"type": "chat", "id": "b", "conversation_id": "c", "text": "x"}).encode(),
    headers={"Content-Type": "application/json"}, method="POST")
for _line in urllib.request.urlopen(_req):
    _f = json.loads(_line)
    if _f["type"] == "chunk":
        sys.stdout.write(_f["text"]); sys.stdout.flush()
"""


class StandIn:
    """The server's chat endpoint as NDJSON, with the time its `done` frame was written."""

    def __init__(self) -> None:
        self.chunks, self.delay = 0, 0.0
        self.done_at = 0.0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:  # http.server's name for it
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Connection", "close")
                self.end_headers()
                turn = "t"
                self.wfile.write(b'{"type": "route", "id": "t", "engine": "simple"}\n')
                for i in range(stand_in.chunks):
                    if i:
                        time.sleep(stand_in.delay)
                    frame = {"type": "chunk", "id": turn, "seq": i, "text": f"w{i} "}
                    self.wfile.write(json.dumps(frame).encode() + b"\n")
                    self.wfile.flush()
                # As the server does: `done` right after the last chunk. The answer's end
                # is this moment for both arms (the baseline shows nothing for `done`).
                stand_in.done_at = time.monotonic()
                done = {"type": "done", "id": turn, "finish_reason": "stop", "usage": {}}
                self.wfile.write(json.dumps(done).encode() + b"\n")
                self.wfile.flush()
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"


async def run_cell(client: Any, code: str) -> list[tuple[str, float]]:
    """(message type, arrival time) of the cell's output messages."""
    msg_id = client.execute(code)
    seen: list[tuple[str, float]] = []
    while True:
        msg = await asyncio.wait_for(client.get_iopub_msg(), 120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind in ("stream", "display_data", "update_display_data"):
            seen.append((kind, time.monotonic()))
        elif kind == "error":
            raise RuntimeError("\n".join(msg["content"]["traceback"]))
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            return seen


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    stand_in = StandIn()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUBBERDUCK_")}
    env["RUBBERDUCK_SERVER_URL"] = stand_in.url
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "magics"), env.get("PYTHONPATH", "")])
    manager, client = await start_new_async_kernel(kernel_name="python3", env=env)
    print(f"# {platform.platform()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"# load average before: {os.getloadavg()[0]:.2f}")
    try:
        await run_cell(client, "%load_ext rubberduck_magics")
        for stream, (chunks, delay) in STREAMS.items():
            stand_in.chunks, stand_in.delay = chunks, delay
            results: dict[str, dict[str, list[float]]] = {
                arm: {"lag": [], "rate": []} for arm in ("baseline", "ours")
            }
            for _ in range(args.rounds):
                for arm, code in (("baseline", BASELINE), ("ours", "%duck go")):
                    seen = await run_cell(client, code)
                    last = seen[-1][1]
                    results[arm]["lag"].append((last - stand_in.done_at) * 1000)
                    span = seen[-1][1] - seen[0][1]
                    results[arm]["rate"].append((len(seen) - 1) / span if span > 0 else 0.0)
            base, ours = results["baseline"], results["ours"]
            base_lag, our_lag = statistics.median(base["lag"]), statistics.median(ours["lag"])
            print(
                f"{stream:>10} ({chunks} chunks, {delay * 1000:g} ms apart): lag behind the "
                f"server median {our_lag:.1f} ms (max {max(ours['lag']):.1f}) vs baseline "
                f"{base_lag:.1f} ms (max {max(base['lag']):.1f}); ratio "
                f"{our_lag / base_lag if base_lag > 0 else float('nan'):.2f}"
            )
            print(
                f"{'':>10} updates/s median {statistics.median(ours['rate']):.1f} "
                f"(max {max(ours['rate']):.1f}) vs baseline stream messages/s "
                f"{statistics.median(base['rate']):.1f}"
            )
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)
        stand_in.server.shutdown()
    print(f"# load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
