"""Fixtures shared by the suite: a real fake provider on 127.0.0.1 and server config."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[object]:
    from rubberduck_jupyter.testing.fake_llm import FakeLLMThread

    with FakeLLMThread() as fake:
        yield fake


@pytest.fixture
def fake_llm(fake_llm_server: object) -> object:
    fake_llm_server.reset()  # type: ignore[attr-defined]
    return fake_llm_server


@pytest.fixture(autouse=True)
def _no_ambient_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own RUBBERDUCK_* or provider keys must not leak into tests.
    for name in ("RUBBERDUCK_MODEL", "RUBBERDUCK_API_BASE", "RUBBERDUCK_API_KEY"):
        monkeypatch.delenv(name, raising=False)
