"""A real `jupyter server` process with RubberDuck, for tests that restart or kill it
(tests/server/test_restart.py, tests/reliability/test_crash.py)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

TOKEN = "server-process-test-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
        if path.endswith("/chat"):
            return [json.loads(line) for line in text.splitlines()]
        return json.loads(text) if text else None


@contextlib.contextmanager
def jupyter_server(
    base: Path,
    fake_url: str,
    *,
    kill: bool = False,
    extra: Sequence[str] = (),
    data: Path | None = None,
    wait_s: float = 60.0,
) -> Iterator[tuple[Server, subprocess.Popen[bytes]]]:
    """A `jupyter server` on a free port with RubberDuck, its root `base/root` and its
    Jupyter dirs under `data` (default `base`), so two servers may share or not share data.
    `extra`: more command-line options. Stopped with SIGTERM (or SIGKILL with `kill`)."""
    (base / "root").mkdir(parents=True, exist_ok=True)
    data = data or base
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUBBERDUCK_")}
    env.update(
        {
            "JUPYTER_CONFIG_DIR": str(data / "config"),
            "JUPYTER_DATA_DIR": str(data / "data"),
            "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        }
    )
    log_path = base / "server.log"
    log = log_path.open("a")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={base / 'root'}",
            "--ServerApp.jpserver_extensions=rubberduck_jupyter=True",
            "--RubberDuckApp.model=openai/fake-model",
            f"--RubberDuckApp.api_base={fake_url}",
            "--RubberDuckApp.api_key=sk-restart-key",
            "--RubberDuckApp.index_watch=False",
            "--allow-root",
            *extra,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}/")
    try:
        deadline = time.monotonic() + wait_s
        while True:
            assert process.poll() is None, log_path.read_text()[-3000:]
            try:
                server.call("GET", "rubberduck/api/health")
                break
            except (OSError, urllib.error.URLError):
                assert time.monotonic() < deadline, "jupyter server did not start"
                time.sleep(0.25)
        yield server, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
