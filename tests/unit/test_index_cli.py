"""`jupyter rubberduck index` and `search` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rubberduck_jupyter.index.store import IndexStore

REPO = Path(__file__).resolve().parents[2]


def rubberduck(
    *args: str, cwd: Path, config_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        JUPYTER_DATA_DIR=str(cwd / "data"),
        # This checkout's package, whichever one the virtualenv installed.
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        JUPYTER_CONFIG_DIR=str(config_dir or cwd / "config"),
    )
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


def test_the_cli_embeds_with_the_servers_embedder(
    tmp_path: Path, fake_llm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pricing.py").write_text("def price_elasticity(demand, price):\n    return 0\n")
    (project / "notes.md").write_text("# Logistics\n\nShipping routes and warehouses.\n")
    config_dir = tmp_path / "jupyter-config"
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.py").write_text(
        "c.RubberDuckApp.index_embedder = 'litellm:openai/fake-embed'\n"
        f"c.RubberDuckApp.index_embedder_api_base = {fake_llm.base_url!r}\n"
        "c.RubberDuckApp.index_embedder_api_key = 'os.environ/FAKE_EMBED_KEY'\n"
    )
    db = tmp_path / "index.duckdb"
    monkeypatch.setenv("FAKE_EMBED_KEY", "sk-from-env")
    indexed = rubberduck("index", "--db", str(db), cwd=project, config_dir=config_dir)
    found = rubberduck(
        "search", "price elasticity of demand", "--db", str(db), "--json", "--mode", "vector",
        cwd=project, config_dir=config_dir,
    )  # fmt: skip
    assert indexed.returncode == 0, indexed.stderr
    assert "embedder litellm:openai/fake-embed:64d:w256" in indexed.stdout
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout.splitlines()[0])["path"] == "pricing.py"
    embeddings = [r for r in fake_llm.requests if r["_fake"]["path"].endswith("/embeddings")]
    assert embeddings and all(r["_fake"]["authorization_present"] for r in embeddings)

    fake_llm.update_settings({"fault": "401"})
    refused = rubberduck("search", "anything", "--db", str(db), cwd=project, config_dir=config_dir)
    assert refused.returncode == 1
    assert "openai/fake-embed" in refused.stderr and "auth" in refused.stderr
    assert "sk-from-env" not in refused.stderr

    typo = rubberduck("index", "--db", str(db), "--embedder", "minilm2", cwd=project)
    assert typo.returncode == 1
    assert "index_embedder 'minilm2'" in typo.stderr
