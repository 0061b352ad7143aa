"""`jupyter rubberduck mcp` answering a real `mcp` client session: over stdio (the
client starts it) it lists its read-only tools, searches a small real index (built by
`jupyter rubberduck index`), lists and reads a notebook's cells, reads a file, and
refuses a file outside the root, a hidden one and a bad call; over streamable HTTP on
127.0.0.1 it answers the same way. It never writes: the project is unchanged after."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from mcp import Client, StdioServerParameters

CLI = [sys.executable, "-m", "rubberduck_jupyter.cli"]


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "project"
    root.mkdir()
    (root / "loaders.py").write_text(
        "def load_orders(path):\n"
        '    """Read the orders export and parse its dates."""\n'
        "    return read_csv(path, parse_dates=['ordered_at'])\n"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Sales"),
        nbformat.v4.new_code_cell("orders = load_orders('o.csv')\norders.head()"),
    ]
    nbformat.write(nb, str(root / "sales.ipynb"))
    (root / ".env").write_text("TOKEN=abc\n")
    (tmp_path / "outside.txt").write_text("not yours\n")
    db = tmp_path / "index.duckdb"
    # A small real index, keywords alone (the embedder the server must match).
    subprocess.run(
        [*CLI, "index", "--root", str(root), "--db", str(db), "--embedder", "none"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return root, db


def server_args(root: Path, db: Path) -> list[str]:
    return ["mcp", "--root", str(root), "--db", str(db), "--embedder", "none"]


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


async def test_our_server_over_stdio_answers_a_real_client(project: tuple[Path, Path]) -> None:
    root, db = project
    before = snapshot(root)
    params = StdioServerParameters(command=sys.executable, args=[*CLI[1:], *server_args(root, db)])
    async with Client(params, read_timeout_seconds=60) as client:
        listed = (await client.list_tools()).tools
        assert {t.name for t in listed} == {
            "search_project",
            "list_cells",
            "read_cell",
            "read_file",
        }
        assert all(t.annotations.read_only_hint for t in listed)
        [read_cell] = [t for t in listed if t.name == "read_cell"]
        assert read_cell.input_schema["required"] == ["notebook", "cell"]

        found = await client.call_tool("search_project", {"query": "parse the orders dates"})
        assert not found.is_error
        assert text_of(found).startswith("[1] loaders.py:1-3") and "load_orders" in text_of(found)

        cells = await client.call_tool("list_cells", {"notebook": "sales.ipynb"})
        assert "## Cell 2 [code]" in text_of(cells) and "# Sales" in text_of(cells)
        cell = await client.call_tool("read_cell", {"notebook": "sales.ipynb", "cell": 2})
        assert text_of(cell).startswith("Cell 2 [code]:\norders = load_orders")

        read = await client.call_tool("read_file", {"path": "loaders.py", "end_line": 1})
        assert not read.is_error and "1  def load_orders(path):" in text_of(read)

        for path in ("../outside.txt", ".env"):
            refused = await client.call_tool("read_file", {"path": path})
            assert refused.is_error and "cannot read" in text_of(refused)
            assert "not yours" not in text_of(refused) and "TOKEN" not in text_of(refused)
        bad = await client.call_tool("read_cell", {"notebook": "sales.ipynb", "cell": "two"})
        assert bad.is_error and "'cell' must be an integer" in text_of(bad)
        missing = await client.call_tool("list_cells", {})
        assert missing.is_error and "'notebook'" in text_of(missing)
        unknown = await client.call_tool("edit_file", {"path": "loaders.py", "new": "x"})
        assert unknown.is_error and "no tool named 'edit_file'" in text_of(unknown)
    assert snapshot(root) == before


async def test_without_an_index_search_says_how_to_build_one(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    args = [*CLI[1:], *server_args(root, tmp_path / "none.duckdb")]
    async with Client(StdioServerParameters(command=sys.executable, args=args)) as client:
        result = await client.call_tool("search_project", {"query": "anything"})
    assert result.is_error and "jupyter rubberduck index" in text_of(result)
    assert not (tmp_path / "none.duckdb").exists()  # never built by a search


@pytest.fixture
def http_url(project: tuple[Path, Path], tmp_path: Path) -> Iterator[str]:
    root, db = project
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "mcp-http.log").open("w")
    process = subprocess.Popen(
        [*CLI, *server_args(root, db), "--http", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert process.poll() is None, (tmp_path / "mcp-http.log").read_text()
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)
        log.close()


async def test_our_server_over_streamable_http(http_url: str) -> None:
    async with Client(http_url, read_timeout_seconds=60) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "search_project" in names
        found = await client.call_tool("search_project", {"query": "parse dates", "top_k": 1})
        assert text_of(found).startswith("[1] loaders.py")
        refused = await client.call_tool("read_file", {"path": "../outside.txt"})
        assert refused.is_error


def test_the_index_is_held_for_a_burst_of_searches_then_released(
    project: tuple[Path, Path],
) -> None:
    import argparse

    from rubberduck_jupyter.index.cli import CliWiring
    from rubberduck_jupyter.mcp_server import read_tools

    root, db = project
    args = argparse.Namespace(db=str(db), embedder="none", embedder_api_base=None)
    index = read_tools(root, args, CliWiring()).index
    [hit] = index.search("parse dates", 1, None)
    assert hit["path"] == "loaders.py"
    assert index.close_if_idle(3600.0) is False  # just used: kept open for the next
    assert index.search("orders", 1, "*.py")[0]["path"] == "loaders.py"
    assert index.close_if_idle(0.0) is True and index._store is None
    assert index.search("parse dates", 1, None)[0]["path"] == "loaders.py"  # reopens
    index.close_if_idle(0.0)
