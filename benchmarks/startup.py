"""Server start cost of RubberDuck: `jupyter server` time-to-ready and idle RSS, with the
extension enabled vs disabled, alternating runs in one process, medians and ratio.

    python benchmarks/startup.py [--runs 9]

Ready = the first 200 from /api/status. Idle RSS = VmRSS of the server process after it has
sat idle for a moment. Everything else (installed extensions, config) is the same in both arms.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def one_run(enabled: bool, workdir: Path, idle_seconds: float) -> tuple[float, float]:
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "JUPYTER_CONFIG_DIR": str(workdir / "config"),
            "JUPYTER_DATA_DIR": str(workdir / "data"),
            "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        }
    )
    flag = "True" if enabled else "False"
    command = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={workdir}",
        f"--ServerApp.jpserver_extensions={{'rubberduck_jupyter': {flag}}}",
    ]
    url = f"http://127.0.0.1:{port}/api/status"
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {process.stderr.read()[-2000:]}")  # type: ignore[union-attr]
            try:
                request = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
                with urllib.request.urlopen(request, timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.01)
        ready = time.perf_counter() - started
        if enabled:
            check = urllib.request.Request(
                f"http://127.0.0.1:{port}/rubberduck/api/health",
                headers={"Authorization": f"token {TOKEN}"},
            )
            # Proves the extension really loaded in the "enabled" arm; costs nothing before ready.
            with urllib.request.urlopen(check, timeout=5) as response:
                assert response.status == 200
        time.sleep(idle_seconds)
        return ready, rss_mb(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9, help="runs per arm (alternating)")
    parser.add_argument("--idle", type=float, default=2.0, help="seconds idle before RSS")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        one_run(True, workdir, 0.1)  # warm the OS page cache for both arms
        one_run(False, workdir, 0.1)
        results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for i in range(args.runs):
            for enabled in (i % 2 == 0, i % 2 != 0):
                results[enabled].append(one_run(enabled, workdir, args.idle))

    def med(enabled: bool, index: int) -> float:
        return statistics.median(r[index] for r in results[enabled])

    base_ready, with_ready = med(False, 0), med(True, 0)
    base_rss, with_rss = med(False, 1), med(True, 1)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"runs per arm: {args.runs} (alternating)")
    print(f"time to ready, without RubberDuck: median {base_ready * 1000:.0f} ms")
    print(f"time to ready, with RubberDuck:    median {with_ready * 1000:.0f} ms")
    print(f"startup ratio (with / without):    {with_ready / base_ready:.3f}")
    print(
        f"idle RSS without: {base_rss:.1f} MB, with: {with_rss:.1f} MB, "
        f"added: {with_rss - base_rss:+.1f} MB"
    )


if __name__ == "__main__":
    main()
