"""The sidebar's answer survives its WebSocket being cut mid-stream, in a real JupyterLab.

Between chromium and `jupyter lab` sits a TCP proxy standing for the network. Cutting a
socket there is what a dropped Wi-Fi or a restarted proxy does: no close frame, whatever
was in flight is lost, the server sees its socket close and the browser sees 1006. Neither
the server nor the front end has test code for it: the server keeps the turn's frames and
the sidebar reconnects and resumes by itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.browser

# Word pieces the fake provider streams one per chunk; plain text, so the rendered answer
# must equal it character for character.
REPLY = " ".join(f"piece{i:03d}" for i in range(150))
GRACE_S = 8  # resume_grace_seconds: short for giving up, long enough to reconnect under load


class CuttingProxy:
    """Forwards TCP to the lab; `cut()` severs every RubberDuck WebSocket at once, and while
    `refusing` is set a new one is closed as soon as it asks, so a reconnect fails."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.refusing = threading.Event()
        self.sockets: list[tuple[socket.socket, socket.socket]] = []  # the live WebSockets
        self.opened = 0  # RubberDuck WebSockets that got through
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._pump(client, upstream, watch=True)

    def _pump(self, source: socket.socket, target: socket.socket, watch: bool = False) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                # Browsers open a fresh connection for each WebSocket: its request starts it.
                if watch and data.startswith(b"GET /rubberduck/ws"):
                    if self.refusing.is_set():
                        break
                    with self._lock:
                        self.sockets.append((source, target))
                        self.opened += 1
                target.sendall(data)
        with self._lock:
            self.sockets = [p for p in self.sockets if source not in p]
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def cut(self) -> int:
        with self._lock:
            cut, self.sockets = self.sockets, []
        for pair in cut:
            for end in pair:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
        return len(cut)

    def close(self) -> None:
        self.listener.close()
        self.cut()


@pytest.fixture(scope="module")
def proxy_and_lab(fake_llm_server: Any, start_lab: Any) -> Iterator[tuple[CuttingProxy, Any]]:
    lab = start_lab(
        {
            "RUBBERDUCK_MODEL": "openai/fake-model",
            "RUBBERDUCK_API_BASE": fake_llm_server.base_url,
            "RUBBERDUCK_API_KEY": "sk-browser-test",
        },
        [
            "--LabApp.expose_app_in_browser=True",
            "--RubberDuckApp.ollama_url=http://127.0.0.1:9",
            f"--RubberDuckApp.resume_grace_seconds={GRACE_S}",
        ],
    )
    proxy = CuttingProxy(int(lab.url.rstrip("/").rsplit(":", 1)[1]))
    yield proxy, lab
    proxy.close()


@pytest.fixture(scope="module")
def lab_server(proxy_and_lab: tuple[CuttingProxy, Any]) -> Any:
    """The lab as the browser reaches it: through the proxy."""
    proxy, lab = proxy_and_lab
    return dataclasses.replace(lab, url=f"http://127.0.0.1:{proxy.port}/")


@pytest.fixture
def proxy(proxy_and_lab: tuple[CuttingProxy, Any]) -> Iterator[CuttingProxy]:
    cutter = proxy_and_lab[0]
    yield cutter
    cutter.refusing.clear()


def _ask_and_cut_mid_answer(page: Any, panel: Any, proxy: CuttingProxy, question: str) -> Any:
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill(question)
    box.press("Enter")
    assistant = panel.locator('.jp-RubberDuck-message[data-role="assistant"]').last
    assistant.locator(".jp-RubberDuck-markdown:has-text('piece020')").wait_for()
    assert assistant.get_attribute("data-streaming") == "true", "the answer ended too soon"
    proxy.refusing.set()
    assert proxy.cut() == 1
    return assistant


def _status(panel: Any) -> str:
    return str(panel.locator(".jp-RubberDuck-status").inner_text())


def test_an_answer_cut_mid_stream_resumes_with_nothing_lost_or_repeated(
    page: Any, open_sidebar: Any, fake_llm: Any, proxy: CuttingProxy, screenshot: Any
) -> None:
    fake_llm.set_replies([REPLY])
    fake_llm.chunk_delay = 0.03  # ~4.5 s of streaming
    try:
        panel = open_sidebar("fake-model")
        assistant = _ask_and_cut_mid_answer(page, panel, proxy, "Count the pieces.")
        # Reconnects fail for a while; the answer is not over, and the status says so.
        page.wait_for_function(
            "() => document.querySelector('.jp-RubberDuck-status').textContent"
            ".includes('Reconnecting to continue the answer')"
        )
        assert assistant.get_attribute("data-streaming") == "true"
        screenshot("resume-reconnecting-light")
        time.sleep(1.0)  # the server streams on into its buffer meanwhile
        proxy.refusing.clear()
        page.wait_for_selector(
            '.jp-RubberDuck-message[data-role="assistant"]:not([data-streaming="true"])',
            timeout=30_000,
        )
    finally:
        fake_llm.chunk_delay = 0
    assert assistant.locator(".jp-RubberDuck-markdown").inner_text().strip() == REPLY
    assert "incomplete" not in assistant.inner_text()
    assert panel.locator(".jp-RubberDuck-error").count() == 0
    assert _status(panel).startswith("Model:")
    assert len(fake_llm.requests) == 1, "the answer was asked for again instead of resumed"
    assert proxy.opened >= 2
    screenshot("resume-resumed-light")


def test_an_answer_the_server_no_longer_has_is_marked_incomplete_and_the_message_kept(
    page: Any, open_sidebar: Any, fake_llm: Any, proxy: CuttingProxy, screenshot: Any
) -> None:
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme',"
        " {theme: 'JupyterLab Dark'})"
    )
    page.wait_for_selector("body[data-jp-theme-light='false']", state="attached")
    fake_llm.set_replies(["piece " * 5 + REPLY])
    fake_llm.chunk_delay = 0.05
    question = "Count the pieces again."
    try:
        panel = open_sidebar("fake-model")
        assistant = _ask_and_cut_mid_answer(page, panel, proxy, question)
        # Longer than the grace period and the time a finished turn is kept after it.
        time.sleep(2 * GRACE_S + 1.5)
        proxy.refusing.clear()
        panel.locator(".jp-RubberDuck-error").last.wait_for(timeout=30_000)
    finally:
        fake_llm.chunk_delay = 0
    assert assistant.get_attribute("data-streaming") != "true"
    assert "(incomplete: the connection dropped)" in assistant.inner_text()
    assert "piece020" in assistant.inner_text()  # what streamed before the cut stays
    notice = panel.locator(".jp-RubberDuck-error").last.inner_text()
    assert "no longer has the rest of this answer" in notice
    # The message is back in the box, to send again.
    assert panel.locator("textarea.jp-RubberDuck-input").input_value() == question
    assert _status(panel).startswith("Model:")
    screenshot("resume-unavailable-dark")
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme',"
        " {theme: 'JupyterLab Light'})"
    )
