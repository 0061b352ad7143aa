"""A real `jupyter lab` subprocess and Debian chromium driven by Playwright's sync API."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import rubberduck_jupyter

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def jp_asyncio_loop() -> None:
    """pytest-jupyter's loop would fight Playwright's own; these tests need neither."""
    return None


@pytest.fixture
def jp_server_cleanup() -> None:
    return None


@dataclass
class LabServer:
    url: str
    token: str
    root: Path
    log_path: Path

    def lab_url(self) -> str:
        return f"{self.url}lab?token={self.token}"

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """RubberDuck's REST API of this lab, as the token's user."""
        request = urllib.request.Request(
            f"{self.url}rubberduck/api/{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def saved_settings(self) -> dict[str, Any]:
        """RubberDuck's user settings as JupyterLab saved them (JSON5, comments and all)."""
        import json5  # jupyterlab_server's own parser

        path = self.root.parent / "settings" / "rubberduck-jupyter" / "plugin.jupyterlab-settings"
        return dict(json5.loads(path.read_text())) if path.exists() else {}

    def wait_saved(self, page: Any, name: str, value: Any) -> None:
        """Until the Settings Editor's debounced save has written `name: value`."""
        for _ in range(100):
            if self.saved_settings().get(name) == value:
                return
            page.wait_for_timeout(100)
        raise AssertionError(f"{name}={value!r} never saved: {self.saved_settings()}")

    def reset_settings(self) -> None:
        """Back to RubberDuck's defaults, so later tests of the module start from them."""
        request = urllib.request.Request(
            f"{self.url}lab/api/settings/rubberduck-jupyter:plugin",
            method="PUT",
            data=json.dumps({"raw": "{}"}).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 204


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _running_lab(
    base: Path, extra_env: Mapping[str, str], extra_args: Sequence[str]
) -> Iterator[LabServer]:
    root = base / "root"
    root.mkdir()
    port = _free_port()
    token = "browser-test-token"
    # Only the caller's RUBBERDUCK_* settings: a developer's own (a models file beats a
    # model name) would change which models the lab offers.
    env = {name: value for name, value in os.environ.items() if not name.startswith("RUBBERDUCK_")}
    env.update(
        {
            "JUPYTER_CONFIG_DIR": str(base / "config"),
            "JUPYTER_DATA_DIR": str(base / "data"),
            "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
            # In a virtualenv jupyter_core puts the env's data dir (where `labextension
            # develop` linked /work/main's build) before JUPYTER_DATA_DIR: without this the
            # worktree's build below is never served.
            "JUPYTER_PREFER_ENV_PATH": "0",
            **extra_env,
        }
    )
    # The lab serves the build beside the rubberduck_jupyter this test imports: its data dir
    # comes first in the labextensions path, so a git worktree tests its own front end, not
    # the one `labextension develop` linked into the venv.
    built = Path(rubberduck_jupyter.__file__).parent / "labextension"
    if (built / "package.json").exists():
        extensions = base / "data" / "labextensions"
        extensions.mkdir(parents=True)
        (extensions / "rubberduck-jupyter").symlink_to(built, target_is_directory=True)
    # JupyterLab's "fetch news?" toast would cover the right sidebar; answer it in settings.
    notification = base / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    log_path = base / "lab.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--allow-root",
            *extra_args,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {log_path.read_text()[-3000:]}")
            try:
                request = urllib.request.Request(
                    url + "rubberduck/api/health", headers={"Authorization": f"token {token}"}
                )
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not start: {log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        yield LabServer(url=url, token=token, root=root, log_path=log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


StartLab = Callable[..., LabServer]
# Where JupyterLab serves our front end from: a stack through it is our code's.
OUR_BUNDLE = "/lab/extensions/rubberduck-jupyter/"


@pytest.fixture(scope="module")
def start_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartLab]:
    """start_lab(extra_env, extra_args=()) runs a `jupyter lab` until the module ends.

    A test module overrides `lab_server` with one started here to get its own config.
    """
    with contextlib.ExitStack() as labs:

        def start(extra_env: Mapping[str, str], extra_args: Sequence[str] = ()) -> LabServer:
            base = tmp_path_factory.mktemp("lab")
            return labs.enter_context(_running_lab(base, extra_env, extra_args))

        yield start


@pytest.fixture(scope="module")
def lab_server(fake_llm_server: Any, start_lab: StartLab) -> LabServer:
    return start_lab(
        {
            "RUBBERDUCK_MODEL": "openai/fake-model",
            "RUBBERDUCK_API_BASE": fake_llm_server.base_url,
            "RUBBERDUCK_API_KEY": "sk-browser-test",
        }
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it with apt")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright gives each launch a fresh, empty profile of its own.
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any, lab_server: LabServer) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    # An exception thrown by our code and never caught is a bug even when the test's own
    # assertions pass (JupyterLab's own are not ours to fail on).
    ours: list[str] = []

    def thrown(error: Any) -> None:
        if OUR_BUNDLE in (error.stack or ""):
            ours.append(f"{error}\n{error.stack}")

    def logged(message: Any) -> None:
        # Lumino catches what a signal's slot throws and logs it with console.error.
        if message.type == "error" and OUR_BUNDLE in message.text:
            ours.append(message.text)

    page.on("pageerror", thrown)
    page.on("console", logged)
    page.goto(lab_server.lab_url())
    page.wait_for_selector("#jp-main-dock-panel", state="attached")
    try:
        yield page
    finally:
        context.close()
    assert not ours, "uncaught errors in RubberDuck's front end:\n" + "\n".join(ours)


@pytest.fixture
def open_sidebar(page: Any) -> Any:
    """Opens the RubberDuck panel and waits until the server said hello."""

    def open_panel(status_text: str = "Model: ") -> Any:
        # Until the splash goes the layout restorer may still open the sidebar, and a click
        # then would close it again.
        page.wait_for_selector("#jupyterlab-splash", state="detached")
        # JupyterLab opens its launcher (which takes the focus) only once the file browser
        # has listed the root too, about a second after the splash goes: keys typed into the
        # sidebar before then would land in the launcher.
        page.wait_for_selector("#jp-main-dock-panel .lm-TabBar-tab", state="attached")
        panel = page.locator(".jp-RubberDuck")
        # The restorer may already have it open from an earlier page in this workspace.
        if not panel.is_visible():
            page.click('.jp-SideBar [data-id="rubberduck-chat"]')
        panel.wait_for(state="visible")
        page.wait_for_selector(f".jp-RubberDuck-status:has-text('{status_text}')")
        return panel

    return open_panel


@pytest.fixture
def open_rubberduck_settings(page: Any) -> Callable[[], None]:
    """Opens RubberDuck's form in JupyterLab's Settings Editor (the lab must expose its app)."""

    def open_form() -> None:
        page.evaluate(
            "() => window.jupyterapp.commands.execute('settingeditor:open', {query: 'RubberDuck'})"
        )
        page.locator(".jp-PluginList-entry-label:has-text('RubberDuck')").first.click()

    return open_form


@pytest.fixture
def screenshot(page: Any) -> Any:
    """Saves what the page shows under test-artifacts/browser/NAME.png."""

    def save(name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return save
