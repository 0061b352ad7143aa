"""Module-scoped fixtures for tests/hub: one hub per test module, both users' servers
spawned once (the harness itself is in hub_harness.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hub_harness import BIN, CHP, TIMINGS, USERS, Browser, Hub, login, spawn


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        parts = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in TIMINGS.items())
        terminalreporter.write_line(f"hub timings: {parts}")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, fake_llm_server: Any) -> Iterator[Hub]:
    if not CHP.exists():
        pytest.fail(
            f"configurable-http-proxy is not installed at {CHP}: run `make hub-proxy` "
            "(npm ci from tests/hub/proxy/package-lock.json)"
        )
    if not (BIN / "jupyterhub-singleuser").exists():
        pytest.fail("jupyterhub is not installed in this venv: pip install -e '.[test]'")
    hub = Hub(tmp_path_factory.mktemp("hub"), fake_llm_server.base_url)
    try:
        hub.start()
        yield hub
    finally:
        leftovers = hub.stop()
        still = hub.processes()
    assert not still, f"processes survived the kill: {still}"
    assert not leftovers, "processes outlived the hub's stop:\n" + "\n".join(leftovers)


@pytest.fixture(scope="module")
def browsers(hub: Hub) -> dict[str, Browser]:
    """Both users logged in through the form, their servers spawned (at once) and opened."""
    logged_in = {name: login(hub, name) for name in USERS}
    with ThreadPoolExecutor(len(USERS)) as pool:
        spawn_times = dict(zip(USERS, pool.map(spawn, logged_in.values()), strict=True))
    for name, seconds in spawn_times.items():
        TIMINGS[f"spawn {name}"] = seconds
    for name, browser in logged_in.items():
        started = time.monotonic()
        browser.open_server(name)
        TIMINGS.setdefault("open server (OAuth)", time.monotonic() - started)
    return logged_in


@pytest.fixture(autouse=True)
def _fresh_fake_provider(fake_llm: Any) -> None:
    """The fake provider is the suite's shared one: each hub test starts with no scripted
    replies, queued faults or changed settings left by an earlier test (tests/conftest.py's
    `fake_llm` resets them)."""
