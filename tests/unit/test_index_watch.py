"""The file watcher: a real IndexService on a real folder and DuckDB file, files changed
from outside Jupyter, and a deterministic embedder (no torch) that records what it embeds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from rubberduck_jupyter.index.service import IndexService
from rubberduck_jupyter.testing.embedding import HashingEmbedder

WAIT_S = 20.0  # a bound for failing, not a speed expectation


async def eventually(predicate: Callable[[], Any], what: str, timeout: float = WAIT_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)


def make_project(root: Path) -> None:
    files = {
        "src/calendar_utils.py": "def fiscal_quarter(date):\n    return date.month // 3\n",
        "README.md": "# Sales\n\nWeekly sales forecasting.\n",
        ".gitignore": "build/\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


async def indexed_paths(service: IndexService) -> set[str]:
    return set(await asyncio.to_thread(service._store.file_states))


async def indexed_text(service: IndexService, rel: str) -> str:
    def read() -> str:
        store = service._store
        return "\n".join(c.text for c in store.chunks(store.chunk_ids(rel)))

    return await asyncio.to_thread(read)


async def build(service: IndexService) -> None:
    await service.start()
    await eventually(lambda: service.state != "indexing", "the first index")
    assert service.state == "idle", service.last_error


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    make_project(project)
    # Folders that exist before watching starts: their creation is not part of a test's churn.
    for folder in ("notebooks", "data"):
        (project / folder).mkdir()
    return project


def make_service(root: Path, db: Path, embedder: HashingEmbedder) -> IndexService:
    return IndexService(root, db, embedder_factory=lambda: embedder, debounce_s=0.1)


@contextlib.asynccontextmanager
async def watched(root: Path, db: Path, embedder: HashingEmbedder) -> AsyncIterator[IndexService]:
    """An indexed, watched project (pytest here runs async tests, not async fixtures)."""
    service = make_service(root, db, embedder)
    try:
        await build(service)
        service.watch()
        assert await asyncio.to_thread(service.watcher.wait_ready, WAIT_S)
        yield service
    finally:
        await service.close()


async def test_files_written_changed_and_deleted_outside_jupyter(
    root: Path, tmp_path: Path, embedder: HashingEmbedder
) -> None:
    async with watched(root, tmp_path / "index.duckdb", embedder) as service:
        module = root / "src" / "holidays.py"
        module.write_text("def holiday_calendar(country):\n    return country.upper()\n")
        await eventually(lambda: _contains(service, "src/holidays.py"), "the new file in the index")

        module.write_text("def easter_sunday(year):\n    return year\n")
        await eventually(
            lambda: _text_has(service, "src/holidays.py", "easter_sunday"), "the edit in the index"
        )
        assert "holiday_calendar" not in await indexed_text(service, "src/holidays.py")

        module.unlink()
        await eventually(
            lambda: _lacks(service, "src/holidays.py"), "the deleted file gone from the index"
        )
        hits = await service.search("easter_sunday", mode="bm25")
        assert all(hit.path != "src/holidays.py" for hit in hits)
        assert service.watch_status()["state"] == "watching"
        assert service.watch_status()["backend"] == "native"


async def test_ignored_paths_cost_nothing(
    root: Path, embedder: HashingEmbedder, tmp_path: Path
) -> None:
    async with watched(root, tmp_path / "index.duckdb", embedder) as service:
        refreshes = service.refreshes
        embedded = len(embedder.texts)
        ignored = [
            ".git/objects/ab/cdef.py",
            "node_modules/left-pad/index.js",
            ".ipynb_checkpoints/analysis-checkpoint.ipynb",
            "notebooks/.ipynb_checkpoints/eda-checkpoint.ipynb",
            "build/generated.py",
            ".env",
            "src/__pycache__/calendar_utils.cpython-311.py",
            "data/sales.csv",
        ]
        for rel in ignored:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text("secret_marker = 1\n")
        watcher = service.watcher
        await eventually(
            lambda: watcher.stats.events >= len(ignored), "the watcher to see the writes"
        )
        # A later, relevant write proves the watcher had its chance at the ignored ones.
        (root / "src" / "sentinel.py").write_text("sentinel_marker = 2\n")
        await eventually(lambda: _contains(service, "src/sentinel.py"), "the sentinel indexed")
        await eventually(lambda: service.refresh_idle, "the refresh to settle")

        paths = await indexed_paths(service)
        assert not any(p in paths for p in ignored), paths
        assert not any("secret_marker" in text for text in embedder.texts[embedded:])
        # Only the sentinel's burst(s) reached the index: the ignored churn started no refresh.
        assert service.refreshes - refreshes <= 2
        assert watcher.stats.relevant <= 2 < watcher.stats.events


async def test_a_folder_moved_in_and_away(
    root: Path, tmp_path: Path, embedder: HashingEmbedder
) -> None:
    async with watched(root, tmp_path / "index.duckdb", embedder) as service:
        outside = tmp_path / "elsewhere"
        (outside / "sub").mkdir(parents=True)
        (outside / "pricing.py").write_text("def price_elasticity():\n    pass\n")
        (outside / "sub" / "notes.md").write_text("# Elasticity notes\n")
        os.rename(outside, root / "pricing")  # one event, for the folder
        await eventually(
            lambda: _contains(service, "pricing/pricing.py", "pricing/sub/notes.md"),
            "the moved-in folder's files indexed",
        )
        os.rename(root / "pricing", tmp_path / "gone")
        await eventually(
            lambda: _lacks(service, "pricing/pricing.py", "pricing/sub/notes.md"),
            "the moved-away folder's files dropped",
        )
        shutil.rmtree(root / "src")
        await eventually(
            lambda: _lacks(service, "src/calendar_utils.py"), "the deleted folder's files dropped"
        )


async def test_a_changed_gitignore_rescans(
    root: Path, tmp_path: Path, embedder: HashingEmbedder
) -> None:
    async with watched(root, tmp_path / "index.duckdb", embedder) as service:
        assert "README.md" in await indexed_paths(service)
        (root / ".gitignore").write_text("build/\nREADME.md\n")
        await eventually(lambda: _lacks(service, "README.md"), "the newly ignored file dropped")
        (root / "build").mkdir()
        (root / "build" / "kept.py").write_text("x = 1\n")
        (root / ".gitignore").write_text("README.md\n")
        await eventually(
            lambda: _contains(service, "build/kept.py"), "the no longer ignored file indexed"
        )


async def test_a_save_seen_by_hook_and_watcher_is_embedded_once(
    root: Path, embedder: HashingEmbedder, tmp_path: Path
) -> None:
    async with watched(root, tmp_path / "index.duckdb", embedder) as service:
        path = root / "src" / "calendar_utils.py"
        path.write_text(path.read_text() + "\n\ndef week_of_year_marker(date):\n    return 1\n")
        service.file_saved(str(path))  # what Jupyter's post-save hook does
        watcher = service.watcher
        await eventually(
            lambda: _text_has(service, "src/calendar_utils.py", "week_of_year_marker"),
            "the saved file refreshed",
        )
        await eventually(lambda: watcher.stats.relevant >= 1, "the watcher to see the save")
        await eventually(lambda: service.refresh_idle, "every refresh to finish")
        # The hook again, after the refresh: size and mtime match, so nothing is read or embedded.
        service.file_saved(str(path))
        refreshes = service.refreshes
        await eventually(
            lambda: service.refreshes > refreshes and service.refresh_idle, "a refresh"
        )
        assert sum("week_of_year_marker" in text for text in embedder.texts) == 1


async def test_the_watcher_waits_for_an_index_and_stops_on_close(
    root: Path, tmp_path: Path, embedder: HashingEmbedder
) -> None:
    service = make_service(root, tmp_path / "index.duckdb", embedder)
    service.watch()
    assert service.watcher is None
    assert service.status()["watch"] == {"state": "waiting for an index"}
    (root / "early.py").write_text("x = 1\n")
    await build(service)
    watcher = service.watcher
    assert watcher is not None and await asyncio.to_thread(watcher.wait_ready, WAIT_S)
    assert "early.py" in await indexed_paths(service)

    await service.close()
    assert not watcher.alive
    assert watcher.state == "stopped"
    assert service.watch_status() == {"state": "off"}
    (root / "late.py").write_text("y = 2\n")  # nobody listens; nothing breaks


async def test_polling_when_asked(root: Path, tmp_path: Path, embedder: HashingEmbedder) -> None:
    service = make_service(root, tmp_path / "index.duckdb", embedder)
    await build(service)
    service.watch(force_polling=True, poll_delay_ms=100)
    try:
        assert await asyncio.to_thread(service.watcher.wait_ready, WAIT_S)
        assert service.watch_status()["backend"] == "polling"
        (root / "polled.py").write_text("def polled_marker():\n    pass\n")
        await eventually(lambda: _contains(service, "polled.py"), "the polled change indexed")
    finally:
        await service.close()


async def test_no_watcher_without_asking(root: Path, tmp_path: Path, embedder: Any) -> None:
    service = make_service(root, tmp_path / "index.duckdb", embedder)
    await build(service)
    try:
        assert service.watcher is None
        assert service.status()["watch"] == {"state": "off"}
    finally:
        await service.close()


async def _contains(service: IndexService, *rels: str) -> bool:
    paths = await indexed_paths(service)
    return all(rel in paths for rel in rels)


async def _lacks(service: IndexService, *rels: str) -> bool:
    paths = await indexed_paths(service)
    return not any(rel in paths for rel in rels)


async def _text_has(service: IndexService, rel: str, needle: str) -> bool:
    return needle in await indexed_text(service, rel)


def test_a_failed_watch_is_restarted_with_backoff(tmp_path: Path) -> None:
    from rubberduck_jupyter.index.watcher import TreeWatcher

    root = tmp_path / "tree"
    root.mkdir()
    seen: list[set[Path]] = []
    watcher = TreeWatcher(
        root, lambda paths, _rescan: seen.append(set(paths)), restart_delay_s=0.05
    )
    real_open = watcher._open
    failures = iter([OSError("notify backend went away")])

    def flaky_open() -> Any:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_open()

    watcher._open = flaky_open  # type: ignore[method-assign]
    watcher.start()
    try:
        for _ in range(200):
            if watcher.state == "watching":
                break
            time.sleep(0.02)
        status = watcher.status()
        assert status["state"] == "watching" and status["error"] is None
        assert status["restarts"] == 1
        (root / "late.py").write_text("x = 1\n")
        for _ in range(200):
            if seen:
                break
            time.sleep(0.02)
        assert any(p.name == "late.py" for batch in seen for p in batch)
    finally:
        assert watcher.stop()
