"""The tests/hub harness: a real JupyterHub, behind a real configurable-http-proxy, with
RubberDuck in each user's server; browsers, token clients and kernels that talk to it.

`Hub` runs `jupyterhub` as a subprocess on 127.0.0.1 in a temporary folder that holds its
sqlite database, cookie secret and config; the hub starts the proxy installed by
`make hub-proxy` (tests/hub/proxy, npm ci from the committed lockfile) and spawns
`jupyterhub-singleuser` for each user with SimpleLocalProcessSpawner, their homes under the
same folder. Every request goes through the proxy's public port, as a browser's would.

The single-user servers reach the suite's fake provider (FakeLLM on 127.0.0.1) through the
spawner's environment, and get a jupyter_server_config with the Ollama probe and index
watching off, so nothing heavy loads.

`Hub.stop` stops the hub with SIGTERM (it stops the proxy and the servers, which stop their
kernels), then finds every process started for this hub by a marker in its environment and
kills the process groups of any still alive; it returns what outlived the graceful stop.
Fixtures are in conftest.py; this module is imported by name (`hub_harness`), so it never
depends on which conftest pytest loaded last.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import psutil
import pytest

requests = pytest.importorskip("requests")
websocket = pytest.importorskip("websocket")  # websocket-client, a jupyter_server dependency

HERE = Path(__file__).parent
CHP = HERE / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
BIN = Path(sys.executable).parent
PASSWORD = "duck-pond-password"
USERS = ("alice", "bob")
MARKER_ENV = "RUBBERDUCK_HUB_TEST_RUN"

# Bounds: a cold hub starts in ~2-4 s and a server spawns in ~3-6 s on 2 cores; these leave
# room for a loaded CI machine while a hang still fails in well under the suite's budget.
HUB_START_TIMEOUT = 60.0
SPAWN_TIMEOUT = 90.0
REQUEST_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0

TIMINGS: dict[str, float] = {}


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def eventually(check: Callable[[], Any], *, timeout: float, what: str, step: float = 0.1) -> Any:
    """The first truthy result of `check()`; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            last = check()
            if last:
                return last
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def ndjson(response: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


class Browser:
    """One person's browser: a cookie jar, page loads as navigations, API calls as the
    same-origin fetches JupyterLab makes (with the `_xsrf` cookie echoed in a header)."""

    def __init__(self, hub: Hub, name: str) -> None:
        self.hub = hub
        self.name = name
        self.session = requests.Session()
        # The hub's pages hand their JavaScript an XSRF token (window.jhdata.xsrf_token),
        # which it sends with its API calls: the token of the last hub page loaded.
        self.hub_xsrf = ""

    def page(self, path: str, **kw: Any) -> Any:
        headers = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin"}
        response = self.session.get(
            self.hub.url + path, headers=headers, timeout=REQUEST_TIMEOUT, **kw
        )
        found = re.search(r'xsrf_token:\s*"([^"]+)"', response.text)
        if found:
            self.hub_xsrf = found.group(1)
        return response

    def xsrf(self, path: str) -> str:
        """What a browser sends as X-XSRFToken to `path`: on the hub, its page's token;
        on a single-user server, JupyterLab's, the most specific `_xsrf` cookie."""
        if path.startswith("/hub/") and self.hub_xsrf:
            return self.hub_xsrf
        best, best_len = "", -1
        for cookie in self.session.cookies:
            cookie_path = cookie.path or "/"
            matches = cookie.name == "_xsrf" and path.startswith(cookie_path)
            if matches and len(cookie_path) > best_len:
                best, best_len = cookie.value, len(cookie_path)
        return best

    def api(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        headers = {
            "Sec-Fetch-Mode": "cors",
            "Sec-Fetch-Site": "same-origin",
            "X-XSRFToken": self.xsrf(path),
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
            kw["data"] = json.dumps(body)
        return self.session.request(
            method, self.hub.url + path, headers=headers, timeout=REQUEST_TIMEOUT, **kw
        )

    def open_server(self, owner: str) -> Any:
        """Load `owner`'s server as a page: the OAuth round trip through the hub, including
        the confirmation form a server shared with this user shows; leaves the server's
        cookies (session and `_xsrf`) in the jar."""
        # A page, not an API path: Jupyter's API handlers answer 403 instead of redirecting.
        response = self.page(f"/user/{owner}/lab")
        if "/hub/api/oauth2/authorize" in response.url and "<form" in response.text:
            response = self._confirm_oauth(response)
        response.raise_for_status()
        return response

    def _confirm_oauth(self, response: Any) -> Any:
        form = re.search(r"<form[^>]*>(.*?)</form>", response.text, re.S)
        assert form, "the hub's authorization page holds no form"
        action = re.search(r'<form[^>]*action="([^"]*)"', response.text)
        fields = [
            (m.group(1), m.group(2))
            for m in re.finditer(
                r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.group(1), re.S
            )
        ]
        target = urljoin(response.url, action.group(1).replace("&amp;", "&") if action else "")
        return self.session.post(
            target,
            data=fields,
            headers={"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin"},
            timeout=REQUEST_TIMEOUT,
        )

    def chat(self, owner: str, conversation: str, text: str, **context: Any) -> Any:
        return self.api(
            "POST",
            f"/user/{owner}/rubberduck/api/chat",
            {
                "type": "chat",
                "id": f"m-{uuid.uuid4().hex[:8]}",
                "conversation_id": conversation,
                "text": text,
                "context": context,
            },
        )

    def conversation_ids(self, owner: str) -> list[str]:
        response = self.api("GET", f"/user/{owner}/rubberduck/api/conversations")
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["conversations"]]


class TokenClient:
    """API requests with a hub API token in the Authorization header, as a script's."""

    def __init__(self, hub: Hub, token: str) -> None:
        self.hub = hub
        self.token = token

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        headers = {"Authorization": f"token {self.token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
            kw["data"] = json.dumps(body)
        return requests.request(
            method, self.hub.url + path, headers=headers, timeout=REQUEST_TIMEOUT, **kw
        )


class Hub:
    def __init__(self, root: Path, fake_base_url: str) -> None:
        self.root = root
        self.hub_port, self.public_port, self.api_port = _free_ports(3)
        self.url = f"http://127.0.0.1:{self.public_port}"
        self.marker = uuid.uuid4().hex
        self.fake_base_url = fake_base_url
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = root / "jupyterhub.log"

    def home(self, user: str) -> Path:
        return self.root / "home" / user

    def write_config(self) -> Path:
        # What each single-user server reads besides its own ~/.jupyter: RubberDuck without
        # the Ollama probe or the index watcher, as an admin's /etc/jupyter would set it.
        server_config = self.root / "etc-jupyter"
        server_config.mkdir(exist_ok=True)
        (server_config / "jupyter_server_config.json").write_text(
            json.dumps({"RubberDuckApp": {"detect_ollama": False, "index_watch": False}})
        )
        environment = {
            MARKER_ENV: self.marker,
            "JUPYTER_CONFIG_PATH": str(server_config),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "RUBBERDUCK_MODEL": "openai/fake-model",
            "RUBBERDUCK_API_BASE": self.fake_base_url,
            "RUBBERDUCK_API_KEY": "sk-fake-hub-test",
        }
        config = f"""
        c = get_config()  # noqa
        c.JupyterHub.ip = "127.0.0.1"
        c.JupyterHub.port = {self.public_port}
        c.JupyterHub.hub_ip = "127.0.0.1"
        c.JupyterHub.hub_port = {self.hub_port}
        c.JupyterHub.db_url = "sqlite:///{self.root / "jupyterhub.sqlite"}"
        c.JupyterHub.cookie_secret_file = "{self.root / "jupyterhub_cookie_secret"}"
        c.ConfigurableHTTPProxy.command = ["{CHP}"]
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.api_port}"
        c.ConfigurableHTTPProxy.pid_file = "{self.root / "proxy.pid"}"
        c.JupyterHub.authenticator_class = "dummy"
        c.DummyAuthenticator.password = "{PASSWORD}"
        c.Authenticator.allowed_users = {set(USERS)!r}
        c.JupyterHub.spawner_class = "simple"
        c.SimpleLocalProcessSpawner.home_dir_template = "{self.root / "home"}/{{username}}"
        c.Spawner.cmd = ["{BIN / "jupyterhub-singleuser"}"]
        # We run as root in CI and here; jupyter_server refuses root without it.
        c.Spawner.args = ["--allow-root"]
        c.Spawner.environment = {environment!r}
        c.Spawner.start_timeout = {int(SPAWN_TIMEOUT)}
        c.Spawner.http_timeout = {int(SPAWN_TIMEOUT)}
        # JupyterHub 5+ sharing: users may share their own servers, with users by name.
        c.JupyterHub.load_roles = [
            {{"name": "user", "scopes": ["self", "shares!user", "read:users:name"]}}
        ]
        """
        path = self.root / "jupyterhub_config.py"
        path.write_text(textwrap.dedent(config))
        return path

    def start(self) -> None:
        config = self.write_config()
        env = dict(os.environ)
        env[MARKER_ENV] = self.marker
        env["CONFIGPROXY_AUTH_TOKEN"] = secrets.token_hex(16)
        for name in list(env):
            if name.startswith("RUBBERDUCK_") and name != MARKER_ENV:
                del env[name]
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(config)],
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def up() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"jupyterhub exited {self.process.returncode}:\n{self.log()}")
            # Through the proxy: answers once the hub is up and has added its route.
            response = requests.get(self.url + "/hub/api/", timeout=2)
            return response.status_code == 200 and "version" in response.json()

        try:
            eventually(up, timeout=HUB_START_TIMEOUT, what="the hub behind the proxy")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log()}") from None
        TIMINGS["hub start"] = time.monotonic() - started

    def log(self, tail: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:])

    def processes(self) -> list[psutil.Process]:
        """Every live process started for this hub: its tree plus anything marked."""
        found: dict[int, psutil.Process] = {}
        if self.process is not None:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(self.process.pid)
                found[root.pid] = root
                for child in root.children(recursive=True):
                    found[child.pid] = child
        for proc in psutil.process_iter():
            if proc.pid in found or proc.pid == os.getpid():
                continue
            with contextlib.suppress(psutil.Error):
                if proc.environ().get(MARKER_ENV) == self.marker:
                    found[proc.pid] = proc
        alive = []
        for proc in found.values():
            with contextlib.suppress(psutil.Error):
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
        return alive

    def stop(self) -> list[str]:
        """Stop the hub as an admin would (SIGTERM), then kill what is left; returns what
        was left after the graceful stop."""
        if self.process is None:
            return []
        before = self.processes()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_TIMEOUT)
        _, alive = psutil.wait_procs(before, timeout=5)
        leftovers = [f"{p.pid} {_cmdline(p)}" for p in alive] + [
            f"{p.pid} {_cmdline(p)}" for p in self.processes() if p not in alive
        ]
        own_group = os.getpgrp()
        for proc in [*alive, *self.processes()]:
            with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
                group = os.getpgid(proc.pid)
                if group != own_group:
                    os.killpg(group, signal.SIGKILL)
                else:
                    proc.kill()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=5)
        return leftovers


def _cmdline(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(proc.cmdline())[:200]
    return "?"


def login(hub: Hub, name: str) -> Browser:
    """The hub's real login form: GET for its `_xsrf`, POST the credentials."""
    browser = Browser(hub, name)
    form = browser.page("/hub/login")
    assert form.status_code == 200, form.text
    match = re.search(r'name="_xsrf"\s+value="([^"]+)"', form.text)
    assert match, "no _xsrf field in the hub's login form"
    response = browser.session.post(
        hub.url + "/hub/login",
        data={"username": name, "password": PASSWORD, "_xsrf": match.group(1)},
        headers={"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin"},
        allow_redirects=False,
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 302, (response.status_code, response.text[:500])
    return browser


def spawn(browser: Browser) -> float:
    """Start the user's server from the hub's spawn page and wait until it is ready."""
    name = browser.name
    started = time.monotonic()
    # The spawn page starts the server and redirects to spawn-pending while it comes up,
    # whose script then follows the spawn through the hub's API.
    response = browser.page(f"/hub/spawn/{name}", allow_redirects=False)
    assert response.status_code in (200, 302), (response.status_code, response.text[:500])
    browser.page(f"/hub/spawn-pending/{name}")

    def ready() -> bool:
        response = browser.api("GET", f"/hub/api/users/{name}")
        assert response.status_code == 200, (response.status_code, response.text[:500])
        server = response.json().get("servers", {}).get("")
        return bool(server and server.get("ready"))

    eventually(ready, timeout=SPAWN_TIMEOUT, what=f"{name}'s server", step=0.2)
    return time.monotonic() - started


def create_token(browser: Browser, note: str) -> str:
    """A hub API token for the browser's user, made through the hub's REST API."""
    response = browser.api(
        "POST",
        f"/hub/api/users/{browser.name}/tokens",
        {"note": note, "expires_in": 3600},
    )
    assert response.status_code == 201, (response.status_code, response.text)
    return str(response.json()["token"])


def ws_url(hub: Hub, path: str) -> str:
    parsed = urlparse(hub.url)
    return f"ws://{parsed.netloc}{path}"


def run_in_kernel(hub: Hub, token: str, owner: str, kernel_id: str, code: str) -> str:
    """Run `code` in a kernel over its channels WebSocket, through the proxy; its stdout."""
    ws = websocket.create_connection(
        ws_url(hub, f"/user/{owner}/api/kernels/{kernel_id}/channels"),
        header=[f"Authorization: token {token}"],
        timeout=REQUEST_TIMEOUT,
    )
    try:
        msg_id = uuid.uuid4().hex
        request = {
            "header": {
                "msg_id": msg_id,
                "username": "",
                "session": uuid.uuid4().hex,
                "msg_type": "execute_request",
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": {
                "code": code,
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
            "channel": "shell",
            "buffers": [],
        }
        ws.send(json.dumps(request))
        out: list[str] = []
        replied = idle = False
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while not (replied and idle):
            assert time.monotonic() < deadline, f"no reply from kernel {kernel_id}"
            message = json.loads(ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["msg_type"]
            if kind == "stream":
                out.append(message["content"]["text"])
            elif kind == "error":
                raise AssertionError("\n".join(message["content"]["traceback"]))
            elif kind == "execute_reply":
                replied = True
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                idle = True
        return "".join(out)
    finally:
        ws.close()


@contextlib.contextmanager
def kernel(client: TokenClient, owner: str) -> Iterator[str]:
    """A kernel started on `owner`'s server with `client`'s token; shut down after."""
    response = client.call("POST", f"/user/{owner}/api/kernels", {"name": "python3"})
    assert response.status_code == 201, (response.status_code, response.text)
    kernel_id = str(response.json()["id"])
    try:
        yield kernel_id
    finally:
        client.call("DELETE", f"/user/{owner}/api/kernels/{kernel_id}")
