"""`jupyter rubberduck index` and `search` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rubberduck_jupyter.index.store import IndexStore


def rubberduck(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, JUPYTER_DATA_DIR=str(cwd / "data"))
    return subprocess.run(
        [sys.executable, "-m", "jupyter", "rubberduck", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_index_then_search_json(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "geo.py").write_text(
        "def haversine(lat1, lon1, lat2, lon2):\n"
        '    """Great-circle distance between two points on Earth, in km."""\n'
        "    return 0.0\n"
    )
    (project / "notes.md").write_text("# Notes\n\nShipping costs depend on distance.\n")
    db = tmp_path / "index.duckdb"

    indexed = rubberduck("index", "--db", str(db), cwd=project)
    assert indexed.returncode == 0, indexed.stderr
    assert "Indexed 2 file(s)" in indexed.stdout
    assert "0 truncated" in indexed.stdout

    found = rubberduck(
        "search", "distance between two places on the globe", "--db", str(db), "--json",
        "--top-k", "2", cwd=project,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    hits = [json.loads(line) for line in found.stdout.splitlines()]
    assert hits[0]["path"] == "src/geo.py"
    assert (hits[0]["start_line"], hits[0]["end_line"]) == (1, 3)
    assert set(hits[0]) >= {"path", "kind", "score", "text", "start_line", "end_line"}

    again = rubberduck("index", "--db", str(db), cwd=project)
    assert "Indexed 0 file(s), 2 unchanged" in again.stdout


def test_a_database_held_elsewhere_gets_a_clear_message(tmp_path: Path) -> None:
    db = tmp_path / "index.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from rubberduck_jupyter.index.store import IndexStore;"
            f"s = IndexStore(Path({str(db)!r})); print('open', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        result = rubberduck("search", "anything", "--db", str(db), cwd=tmp_path)
        assert result.returncode == 1
        assert "in use by another process" in result.stderr
    finally:
        holder.kill()
        holder.wait()
    with IndexStore(db) as store:  # usable again once the holder is gone
        assert store.file_states() == {}
