"""The index through the server's REST API: build, search, refresh on save, refuse bad paths."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient

MODULE = '''
def fiscal_quarter(date):
    """Map a timestamp to its fiscal quarter, starting in April."""
    return ((date.month - 4) % 12) // 3 + 1
'''


@pytest.fixture
def project(jp_root_dir: Path) -> Path:
    (jp_root_dir / "src").mkdir()
    (jp_root_dir / "src" / "calendar_utils.py").write_text(MODULE)
    (jp_root_dir / "NOTES.md").write_text("# Notes\n\nThe churn model uses gradient boosting.\n")
    (jp_root_dir / ".env").write_text("OPENAI_API_KEY=sk-should-never-be-indexed\n")
    return jp_root_dir


@pytest.fixture
def rubberduck_config(project: Path, tmp_path: Path) -> dict[str, Any]:
    return {"index_db_path": str(tmp_path / "index.duckdb"), "ollama_url": "http://127.0.0.1:9"}


async def _index(jp_fetch: Any, paths: list[str] | None = None) -> dict[str, Any]:
    body = json.dumps({"paths": paths or []})
    started = await jp_fetch("rubberduck", "api", "index", method="POST", body=body)
    assert started.code == 202
    for _ in range(600):
        status = json.loads((await jp_fetch("rubberduck", "api", "index")).body)
        if status["state"] != "indexing":
            return status
        await asyncio.sleep(0.1)
    raise AssertionError("indexing did not finish")


async def _search(jp_fetch: Any, query: str, **params: Any) -> list[dict[str, Any]]:
    response = await jp_fetch("rubberduck", "api", "index", "search", params={"q": query, **params})
    return json.loads(response.body)["hits"]


async def test_build_search_and_refresh_on_save(jp_fetch: Any, project: Path) -> None:
    status = await _index(jp_fetch)
    assert status["state"] == "idle", status
    report = status["last_report"]
    assert report["files_indexed"] == 2
    assert report["truncated_chunks"] == 0

    hits = await _search(jp_fetch, "which quarter of the fiscal year is a date in")
    assert hits[0]["path"] == "src/calendar_utils.py"
    assert hits[0]["title"] == "fiscal_quarter"
    assert hits[0]["start_line"] == 2
    every = await _search(jp_fetch, "OPENAI_API_KEY sk-should-never-be-indexed", top_k=50)
    assert all(".env" not in h["path"] for h in every)
    only_md = await _search(jp_fetch, "model", path="*.md")
    assert {h["path"] for h in only_md} == {"NOTES.md"}

    # Saving through the contents API refreshes the file in the index.
    model = {
        "type": "file",
        "format": "text",
        "content": MODULE + "\n\ndef holiday_calendar(country):\n    return country.upper()\n",
    }
    await jp_fetch(
        "api", "contents", "src", "calendar_utils.py", method="PUT", body=json.dumps(model)
    )
    app_index = None
    for _ in range(100):
        hits = await _search(jp_fetch, "holiday_calendar", mode="bm25")
        if hits and hits[0]["title"] == "holiday_calendar":
            app_index = hits
            break
        await asyncio.sleep(0.1)
    assert app_index, "the saved file was not re-indexed"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"paths": ["../outside"]}, "bad_path"),
        ({"paths": ["/etc"]}, "bad_path"),
        ({"paths": ["missing-folder"]}, "bad_path"),
        ({"paths": "src"}, "bad_frame"),
    ],
)
async def test_bad_index_requests_are_refused(jp_fetch: Any, body: Any, code: str) -> None:
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("rubberduck", "api", "index", method="POST", body=json.dumps(body))
    assert info.value.code == 400
    assert json.loads(info.value.response.body)["code"] == code


@pytest.mark.parametrize("params", [{}, {"q": "x", "top_k": "0"}, {"q": "x", "mode": "magic"}])
async def test_bad_searches_are_refused(jp_fetch: Any, params: dict[str, str]) -> None:
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("rubberduck", "api", "index", "search", params=params)
    assert info.value.code == 400


async def test_index_api_refuses_unauthenticated_requests(jp_fetch: Any) -> None:
    for method, body in (("GET", None), ("POST", "{}"), ("DELETE", None)):
        with pytest.raises(tornado.httpclient.HTTPClientError) as info:
            await jp_fetch(
                "rubberduck",
                "api",
                "index",
                method=method,
                body=body,
                headers={"Authorization": ""},
            )
        assert info.value.code == 403


async def test_odd_search_globs_are_answered_never_a_500(jp_fetch: Any, project: Path) -> None:
    await _index(jp_fetch)
    for glob in ("/", "./", "[z-a]", "[", "**/**/**", "\\"):
        response = await jp_fetch(
            "rubberduck",
            "api",
            "index",
            "search",
            params={"q": "fiscal quarter", "path": glob},
            raise_error=False,
        )
        assert response.code in (200, 400), (glob, response.code, response.body)
        if response.code == 400:
            assert json.loads(response.body)["code"] == "bad_query", glob
