"""Where derived models are cached: RUBBERDUCK_MODEL_CACHE when set (a machine's or hub's
shared cache), else the user's Jupyter data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from rubberduck_jupyter.index.embedder_config import MODEL_CACHE_ENV, default_model_cache


def test_the_environment_names_a_shared_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(MODEL_CACHE_ENV, str(tmp_path / "shared"))
    assert default_model_cache() == tmp_path / "shared"


def test_without_it_the_cache_is_in_the_jupyter_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(MODEL_CACHE_ENV, "  ")
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    assert default_model_cache() == tmp_path / "data" / "rubberduck" / "models"
