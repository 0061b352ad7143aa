"""Jupyter server config for the RubberDuck demo: answers without keys (docs/binder.md).

On Binder, `postBuild` links this file into ~/.jupyter/; locally:

    jupyter lab --config binder/jupyter_server_config.py binder/demo.ipynb

When no real model is configured ($RUBBERDUCK_MODEL, $RUBBERDUCK_MODELS_FILE or a provider
key such as $OPENAI_API_KEY), the server starts the bundled fake provider in demo mode
(`python -m rubberduck_jupyter.testing.fake_llm --demo`) as a child process and uses it as
one clearly labelled model: canned answers that stream, no real AI. When torch cannot be
imported (Binder installs none) or $RUBBERDUCK_DEMO_NO_TORCH=1, the project index is
keyword-only (`index_embedder = "none"`: BM25, with a notice saying so). The demo's own
folder is indexed when the server starts (binder/rubberduck_demo.py).

Environment:
    RUBBERDUCK_DEMO=0            never start the demo model (the no-model path instead)
    RUBBERDUCK_DEMO_NO_TORCH=1   keyword-only index even where torch is installed
    RUBBERDUCK_DEMO_LOG=PATH     the demo model's log (default: the Jupyter runtime dir)

Only a Jupyter server starts the demo model: other readers of this file (`jupyter
rubberduck doctor`, `jupyter rubberduck index`) get the index setting alone.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

c: Any = get_config()  # type: ignore[name-defined]  # noqa: F821 (traitlets provides it)

HERE = Path(__file__).resolve().parent  # binder/, also through postBuild's symlink
DEMO_MODEL = "openai/rubberduck-demo"
# What the sidebar's model picker, `%duck models` and answers' footers show.
DEMO_MODEL_NAME = "demo (canned answers, no AI)"
DEMO_EXTENSION = "rubberduck_demo"
# A real provider would need a key; the fake one ignores it. Not a secret.
DEMO_API_KEY = "demo-no-key"
READY_TIMEOUT_S = 5.0
# Where a second load of this file in one process finds the model already started.
_STARTED = "_rubberduck_demo_model"


def real_model_configured(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    from rubberduck_jupyter.llm.config import (
        DETECTED_PROVIDERS,
        MODEL_ENV,
        MODELS_FILE_ENV,
    )

    names = [MODEL_ENV, MODELS_FILE_ENV, *(var for var, _ in DETECTED_PROVIDERS)]
    return any(env.get(name, "").strip() for name in names)


def torch_available() -> bool:
    if os.environ.get("RUBBERDUCK_DEMO_NO_TORCH", "") == "1":
        return False
    return importlib.util.find_spec("torch") is not None


def in_a_jupyter_server() -> bool:
    """True in `jupyter lab` / `jupyter server` (they load this file from their ServerApp);
    False for the CLI commands that read it for the index settings."""
    try:
        from jupyter_server.serverapp import ServerApp
    except ImportError:
        return False
    return bool(ServerApp.initialized())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: a SIGKILLed server must not leave the model behind."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: atexit alone stops it


def _log_path() -> Path:
    chosen = os.environ.get("RUBBERDUCK_DEMO_LOG", "")
    if chosen:
        return Path(chosen).expanduser()
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir()) / "rubberduck-demo-model.log"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


def start_demo_model() -> str:
    """Starts the fake provider in demo mode; returns its base URL once it listens (or
    after READY_TIMEOUT_S: the server then reports the model unreachable on first use)."""
    started = getattr(sys, _STARTED, None)
    if started is not None and started[1].poll() is None:
        return str(started[0])
    port = _free_port()
    log_path = _log_path()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "rubberduck_jupyter.testing.fake_llm"),
                *("--demo", "--host", "127.0.0.1", "--port", str(port)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    atexit.register(_stop, process)
    base_url = f"http://127.0.0.1:{port}/v1"
    setattr(sys, _STARTED, (base_url, process))
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    print(
        f"RubberDuck demo: canned answers from the fake provider at {base_url} "
        f"(model {DEMO_MODEL_NAME!r}, log {log_path})",
        file=sys.stderr,
    )
    return base_url


def configure(config: Any) -> None:
    if not torch_available():
        # Binder: no torch, so no embedding model; the index matches words (BM25).
        config.RubberDuckApp.index_embedder = "none"
    if os.environ.get("RUBBERDUCK_DEMO", "1") == "0" or real_model_configured():
        return
    if not in_a_jupyter_server():
        return
    base_url = start_demo_model()
    config.RubberDuckApp.models = [
        {
            "model_name": DEMO_MODEL_NAME,
            "litellm_params": {
                "model": DEMO_MODEL,
                "api_base": base_url,
                "api_key": DEMO_API_KEY,
            },
        }
    ]
    config.RubberDuckApp.default_model = DEMO_MODEL_NAME
    # The demo's own folder is indexed at start, so `%duck search` has something to find.
    if str(HERE) not in sys.path:
        sys.path.append(str(HERE))  # last: binder/ shadows no installed module
    extensions = dict(config.ServerApp.get("jpserver_extensions", {}))
    extensions.setdefault("rubberduck_jupyter", True)
    extensions[DEMO_EXTENSION] = True
    config.ServerApp.jpserver_extensions = extensions


configure(c)
