"""Fixtures shared by the suite: a real fake provider on 127.0.0.1 and server config."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# One cache of derived models (the MiniLM ONNX export, ~20 s; model2vec's distillation) for
# the whole run, and kept between runs: each test has its own Jupyter data dir, which would
# export the model again in every test that indexes with the default embedder.
os.environ.setdefault(
    "RUBBERDUCK_MODEL_CACHE",
    os.path.join(tempfile.gettempdir(), f"rubberduck-test-models-{os.getuid()}"),
)

pytest_plugins = ["pytest_jupyter.jupyter_server", "suite_counts"]


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[Any]:
    from rubberduck_jupyter.testing.fake_llm import FakeLLMThread

    with FakeLLMThread() as fake:
        fake.initial_settings = fake.settings()  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
def fake_llm(fake_llm_server: Any) -> Any:
    """The shared fake provider, with nothing queued and its default timings."""
    fake_llm_server.reset()
    fake_llm_server.update_settings(fake_llm_server.initial_settings)
    return fake_llm_server


@pytest.fixture(autouse=True)
def _no_ambient_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own RUBBERDUCK_* or provider keys must not leak into tests.
    from rubberduck_jupyter.llm.config import DETECTED_PROVIDERS

    names = [
        "RUBBERDUCK_MODEL",
        "RUBBERDUCK_API_BASE",
        "RUBBERDUCK_API_KEY",
        "RUBBERDUCK_MODELS_FILE",
    ]
    for name in names + [var for var, _ in DETECTED_PROVIDERS]:
        monkeypatch.delenv(name, raising=False)
