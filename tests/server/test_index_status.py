"""The index's status through GET/POST/DELETE /rubberduck/api/index against a real server:
activity words (indexing with done/total, watching), counts, the report's skipped files with
reason codes, the saved scope (used by re-index and the watcher), bad scopes refused, and
stop, also while the index is still opening. Embeddings come from the fake provider."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
from server_fixtures import eventually, indexed_config


@pytest.fixture
def project(jp_root_dir: Path) -> Path:
    for folder in ("src", "notebooks", "data"):
        (jp_root_dir / folder).mkdir()
    (jp_root_dir / "src" / "calendar_utils.py").write_text(
        "def fiscal_quarter(date):\n    return date.month // 3\n"
    )
    (jp_root_dir / "src" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (jp_root_dir / "notebooks" / "churn.md").write_text("# Churn\n\nGradient boosting.\n")
    (jp_root_dir / "data" / "sales.csv").write_text("a,b\n1,2\n")
    (jp_root_dir / "data" / "blob.py").write_bytes(b"x = 1\x00\x00\x00")
    return jp_root_dir


@pytest.fixture
def rubberduck_config(project: Path, tmp_path: Path, fake_llm: Any) -> dict[str, Any]:
    return indexed_config(fake_llm, tmp_path, index_watch_debounce=0.1)


async def _status(jp_fetch: Any) -> dict[str, Any]:
    return json.loads((await jp_fetch("rubberduck", "api", "index")).body)


async def _post(jp_fetch: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = await jp_fetch("rubberduck", "api", "index", method="POST", body=json.dumps(body))
    assert response.code == 202
    return json.loads(response.body)


async def _finished(jp_fetch: Any) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        status = await _status(jp_fetch)
        return status if status["state"] != "indexing" else None

    try:
        return await eventually(
            done, "indexing to finish", timeout=240
        )  # the first run imports litellm: ~2 s idle, 40 s on a busy machine
    except AssertionError:
        raise AssertionError(await _status(jp_fetch)) from None


async def _bad(jp_fetch: Any, body: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("rubberduck", "api", "index", method="POST", body=json.dumps(body))
    assert info.value.code == 400, info.value
    return json.loads(info.value.response.body)


async def test_status_counts_and_skipped_reasons(jp_fetch: Any, project: Path) -> None:
    before = await _status(jp_fetch)
    assert before["activity"] == "idle" and before["files"] == 0 and before["scope"] == []
    started = await _post(jp_fetch, {})
    assert started["activity"] == "indexing"
    status = await _finished(jp_fetch)
    assert status["activity"] in {"idle", "watching"}, status
    assert status["files"] == 2 and status["chunks"] >= 2
    report = status["last_report"]
    assert report["files_indexed"] == 2
    assert report["skipped_by_reason"] == {"binary": 1, "unsupported_kind": 2}
    assert report["skipped_total"] == 3
    codes = {s["path"]: s["code"] for s in report["skipped"]}
    assert codes == {
        "src/logo.png": "unsupported_kind",
        "data/blob.py": "binary",
        "data/sales.csv": "unsupported_kind",
    }
    assert all(s["reason"] for s in report["skipped"])
    assert status["done"] is None and status["total"] is None


async def test_scope_is_saved_used_by_reindex_and_narrowing_drops_files(
    jp_fetch: Any, project: Path, jp_serverapp: Any, tmp_path: Path
) -> None:
    await _post(jp_fetch, {"scope": ["src", "notebooks"]})
    status = await _finished(jp_fetch)
    assert status["scope"] == ["notebooks", "src"] and status["files"] == 2
    saved = json.loads((tmp_path / "index.scope.json").read_text())
    assert saved == {"paths": ["notebooks", "src"]}

    # A file added outside the scope is not picked up by a re-index of the saved scope.
    (project / "data" / "extra.md").write_text("# Extra\n")
    await _post(jp_fetch, {})
    status = await _finished(jp_fetch)
    assert status["scope"] == ["notebooks", "src"] and status["files"] == 2

    # Narrowing the scope drops what now lies outside it.
    await _post(jp_fetch, {"scope": ["src"]})
    status = await _finished(jp_fetch)
    assert status["scope"] == ["src"] and status["files"] == 1
    assert status["last_report"]["files_removed"] == 1

    # The whole project again: [] (or ".").
    await _post(jp_fetch, {"scope": ["."]})
    status = await _finished(jp_fetch)
    assert status["scope"] == [] and status["files"] == 3


async def test_watcher_ignores_changes_outside_the_scope(jp_fetch: Any, project: Path) -> None:
    await _post(jp_fetch, {"scope": ["src"]})
    await _finished(jp_fetch)
    await eventually(
        lambda: _activity_is(jp_fetch, "watching"), "the watcher to run (activity watching)"
    )
    (project / "notebooks" / "new.md").write_text("# Outside the scope\n")
    (project / "src" / "inside.py").write_text("def inside():\n    return 1\n")

    async def two_files() -> bool:
        return (await _status(jp_fetch))["files"] == 2

    await eventually(two_files, "the file inside the scope to be indexed")
    await asyncio.sleep(0.5)  # a debounce more: the outside file must still be absent
    assert (await _status(jp_fetch))["files"] == 2


async def _activity_is(jp_fetch: Any, word: str) -> bool:
    return (await _status(jp_fetch))["activity"] == word


async def test_bad_scopes_are_refused(jp_fetch: Any, project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (project / "escape").symlink_to(outside)
    assert (await _bad(jp_fetch, {"scope": ["../"]}))["code"] == "bad_path"
    assert (await _bad(jp_fetch, {"scope": ["escape"]}))["code"] == "bad_path"
    assert (await _bad(jp_fetch, {"scope": ["/etc"]}))["code"] == "bad_path"
    assert (await _bad(jp_fetch, {"scope": ["missing"]}))["code"] == "bad_path"
    assert (await _bad(jp_fetch, {"scope": "src"}))["code"] == "bad_frame"
    assert (await _bad(jp_fetch, {"scope": ["src"], "paths": ["src"]}))["code"] == "bad_frame"
    assert not (tmp_path / "index.scope.json").exists()
    assert (await _status(jp_fetch))["scope"] == []


async def test_stop_a_slow_run_and_while_opening(
    jp_fetch: Any, project: Path, fake_llm: Any
) -> None:
    # Every embedding request waits 2 s: the run is slow from its first batch (and the
    # embedder's opening probe, if any), so DELETE lands while it is in flight.
    fake_llm.update_settings({"fault": "slow_first_byte", "slow_first_byte_seconds": 2.0})
    await _post(jp_fetch, {})
    response = await jp_fetch("rubberduck", "api", "index", method="DELETE")
    stopped = json.loads(response.body)
    assert stopped["stopping"] is True
    fake_llm.update_settings({"fault": None})
    status = await _finished(jp_fetch)
    assert status["state"] == "idle" and status["stopping"] is False
    assert status["files"] == 0, status
    # Nothing in flight now: DELETE says so.
    response = await jp_fetch("rubberduck", "api", "index", method="DELETE")
    assert json.loads(response.body)["stopping"] is False
    # And a new run completes.
    await _post(jp_fetch, {})
    assert (await _finished(jp_fetch))["files"] == 2


def test_no_index_notice_carries_the_index_action() -> None:
    from rubberduck_jupyter.context.retrieval import NO_INDEX_MESSAGE
    from rubberduck_jupyter.protocol import NoticeCode, notice_frame

    frame = notice_frame("m1", NoticeCode.NO_INDEX, NO_INDEX_MESSAGE)
    assert frame["action"] == {"command": "rubberduck:index-project", "label": "Index this project"}
    assert "status item" in frame["message"]
    assert "action" not in notice_frame("m1", NoticeCode.KEYWORD_SEARCH_ONLY, "x")
