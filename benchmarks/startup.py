"""Server start cost of RubberDuck: `jupyter server` time-to-ready and idle RSS, with the
extension enabled vs disabled, alternating runs in one process, medians and ratio.

    python benchmarks/startup.py [--runs 9]

Ready = the first 200 from /api/status. Idle RSS = VmRSS of the server process after it has
sat idle for a moment. Everything else (installed extensions, config) is the same in both arms.

    python benchmarks/startup.py --first-chat [--runs 5] [--after 8] [--notebooks 20]

The first chat after a start vs the tenth: a server with a model (the fake provider, a
separate process) and an index of pdsh notebooks on disk, built once before the runs with
the default embedder; each run starts the server, waits `--after` seconds past ready (a
person opening JupyterLab and typing), then sends 10 chats one after the other through
REST and times each to its first answer chunk. Arms alternate run by run: the warm-ups on
(the default) and off (RUBBERDUCK_LLM_WARM_UP=0, index_warm_up=False) as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
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


def server_env(workdir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "JUPYTER_CONFIG_DIR": str(workdir / "config"),
            "JUPYTER_DATA_DIR": str(workdir / "data"),
            "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
            **extra,
        }
    )
    return env


def server_command(port: int, root: Path, enabled: bool) -> list[str]:
    flag = "True" if enabled else "False"
    return [
        sys.executable,
        "-m",
        "jupyter_server",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.jpserver_extensions={{'rubberduck_jupyter': {flag}}}",
    ]


def one_run(enabled: bool, workdir: Path, idle_seconds: float) -> tuple[float, float]:
    port = free_port()
    env = server_env(workdir)
    command = server_command(port, workdir, enabled)
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


PDSH = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "pdsh"
CHATS = 10
QUESTIONS = [
    "How do I group a DataFrame by two columns and take the mean?",
    "What does broadcasting do when I add arrays of different shapes?",
    "How can I pivot a table in pandas?",
    "Why is vectorized numpy faster than a Python loop?",
    "How do I plot a histogram with matplotlib?",
    "How do I handle missing values in a DataFrame?",
    "What is the difference between loc and iloc?",
    "How do I fit a linear regression with scikit-learn?",
    "How can I merge two DataFrames on a key?",
    "How do I resample a time series by month?",
]


def start_fake() -> tuple[subprocess.Popen[str], str]:
    fake = subprocess.Popen(
        [sys.executable, "-m", "rubberduck_jupyter.testing.fake_llm", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None
    line = fake.stdout.readline().strip()
    if "listening on" not in line:
        raise RuntimeError(f"fake provider did not start: {line!r}")
    return fake, line.rsplit(" ", 1)[-1]


def chat_server(
    workdir: Path, fake_url: str, *, warm_up: bool
) -> tuple[subprocess.Popen[bytes], str, float]:
    port = free_port()
    env = server_env(
        workdir,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        RUBBERDUCK_LLM_WARM_UP="1" if warm_up else "0",
    )
    command = [
        *server_command(port, workdir / "root", True),
        "--RubberDuckApp.model=openai/fake-model",
        f"--RubberDuckApp.api_base={fake_url}",
        "--RubberDuckApp.api_key=sk-bench",
        "--RubberDuckApp.index_watch=False",
        f"--RubberDuckApp.index_warm_up={warm_up}",
        "--RubberDuckApp.detect_ollama=False",
    ]
    log = (workdir / "server.log").open("ab")
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((workdir / "server.log").read_text()[-3000:])
        try:
            with urllib.request.urlopen(_get(f"{base}/api/status"), timeout=1):
                return process, base, time.perf_counter() - started
        except OSError:
            time.sleep(0.01)
    process.kill()
    raise RuntimeError("server did not start within 90 s")


def _get(url: str, body: dict[str, object] | None = None) -> urllib.request.Request:
    data = None if body is None else json.dumps(body).encode()
    return urllib.request.Request(
        url,
        data=data,
        headers={"Authorization": f"token {TOKEN}"},
        method="POST" if data else "GET",
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def build_index(workdir: Path, fake_url: str, notebooks: int) -> int:
    root = workdir / "root" / "pdsh"
    root.mkdir(parents=True)
    for source in sorted(PDSH.glob("*.ipynb"))[:notebooks]:
        shutil.copy(source, root / source.name)
    process, base, _ = chat_server(workdir, fake_url, warm_up=False)
    try:
        with urllib.request.urlopen(_get(f"{base}/rubberduck/api/index", {}), timeout=30):
            pass
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            with urllib.request.urlopen(_get(f"{base}/rubberduck/api/index"), timeout=30) as r:
                status = json.loads(r.read())
            if status["state"] != "indexing":
                if status["state"] != "idle":
                    raise RuntimeError(f"indexing ended {status}")
                return int(status["chunks"])
            time.sleep(0.5)
        raise RuntimeError("indexing did not finish")
    finally:
        stop(process)


def first_chunk_seconds(base: str, conversation: str, n: int) -> float:
    frame = {"type": "chat", "v": 1, "id": f"{conversation}-{n}", "text": QUESTIONS[n],
             "conversation_id": conversation, "engine": "simple"}  # fmt: skip
    started = time.perf_counter()
    with urllib.request.urlopen(_get(f"{base}/rubberduck/api/chat", frame), timeout=120) as r:
        first = 0.0
        last: dict[str, object] = {}
        for raw in r:
            if not raw.strip():
                continue
            last = json.loads(raw)
            if last.get("type") == "chunk" and not first:
                first = time.perf_counter() - started
    if last.get("type") != "done" or not first:
        raise RuntimeError(f"turn ended with {last}")
    return first


def first_chat(args: argparse.Namespace) -> None:
    fake, fake_url = start_fake()
    results: dict[bool, list[list[float]]] = {True: [], False: []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            chunks = build_index(workdir, fake_url, args.notebooks)
            for i in range(2 * args.runs):
                warm_up = i % 2 == 0
                process, base, _ = chat_server(workdir, fake_url, warm_up=warm_up)
                try:
                    time.sleep(args.after)
                    conversation = f"bench-{i}"
                    results[warm_up].append(
                        [first_chunk_seconds(base, conversation, n) for n in range(CHATS)]
                    )
                finally:
                    stop(process)
                row = results[warm_up][-1]
                print(
                    f"run {i + 1}: warm-up {'on ' if warm_up else 'off'}"
                    f" first {row[0] * 1000:.0f} ms, tenth {row[-1] * 1000:.0f} ms",
                    flush=True,
                )
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"index: {args.notebooks} pdsh notebooks, {chunks} chunks;"
        f" first chat {args.after:g} s after ready"
    )
    for warm_up in (True, False):
        runs = results[warm_up]
        first = statistics.median(r[0] for r in runs) * 1000
        tenth = statistics.median(r[-1] for r in runs) * 1000
        print(
            f"warm-up {'on ' if warm_up else 'off'}: first chat {first:.0f} ms,"
            f" tenth {tenth:.0f} ms, first - tenth {first - tenth:+.0f} ms,"
            f" ratio {first / tenth:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9, help="runs per arm (alternating)")
    parser.add_argument("--idle", type=float, default=2.0, help="seconds idle before RSS")
    parser.add_argument("--first-chat", action="store_true", help="first chat vs the tenth")
    parser.add_argument("--after", type=float, default=8.0, help="seconds after ready")
    parser.add_argument("--notebooks", type=int, default=20, help="pdsh notebooks indexed")
    args = parser.parse_args()
    if args.first_chat:
        first_chat(args)
        return

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
