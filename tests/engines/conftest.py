"""Fixtures for the engine tests; the harness itself is in engine_harness.py (a module
name of its own, so it never collides with the other test folders' conftest modules)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_harness import Harness


@pytest.fixture
def make_harness(
    tmp_path: Path, fake_llm: Any, jp_asyncio_loop: Any
) -> Iterator[Callable[..., Harness]]:
    """Builds harnesses (several may share one database, like a server restart)."""
    made: list[Harness] = []
    root = tmp_path / "project"
    root.mkdir()

    def make(**kwargs: Any) -> Harness:
        h = Harness(tmp_path / "conversations.sqlite3", root, fake_llm, **kwargs)
        made.append(h)
        return h

    yield make
    for h in made:
        jp_asyncio_loop.run_until_complete(h.close())


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()


@pytest.fixture
def offline(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness(with_model=False)
