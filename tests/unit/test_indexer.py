"""The indexer end to end: real notebooks, the real embedder, a real DuckDB file."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rubberduck_jupyter.index.embedder import SentenceTransformerEmbedder
from rubberduck_jupyter.index.indexer import Indexer
from rubberduck_jupyter.index.search import HybridSearcher
from rubberduck_jupyter.index.store import IndexStore

REPO = Path(__file__).resolve().parents[2]
CORPUS_CANDIDATES = [REPO.parent / "shared" / "corpora" / "pdsh", Path("/work/shared/corpora/pdsh")]
CORPUS = next((p for p in CORPUS_CANDIDATES if p.is_dir()), None)
NOTEBOOKS = [
    "02.01-Understanding-Data-Types.ipynb",
    "03.08-Aggregation-and-Grouping.ipynb",
    "04.02-Simple-Scatter-Plots.ipynb",
    "05.02-Introducing-Scikit-Learn.ipynb",
]

pytestmark = pytest.mark.skipif(CORPUS is None, reason="the pdsh corpus is not here")


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    model = SentenceTransformerEmbedder()
    model.load()
    return model


def make_project(root: Path) -> Path:
    assert CORPUS is not None
    (root / "notebooks").mkdir(parents=True)
    for name in NOTEBOOKS:
        shutil.copy(CORPUS / name, root / "notebooks" / name)
    (root / "src").mkdir()
    (root / "src" / "features.py").write_text(
        textwrap.dedent(
            '''
            import pandas as pd


            def rolling_zscore(series: pd.Series, window: int = 30) -> pd.Series:
                """Standardise each value against its trailing window."""
                mean = series.rolling(window).mean()
                std = series.rolling(window).std()
                return (series - mean) / std


            class OutlierFilter:
                def __init__(self, threshold: float = 3.0) -> None:
                    self.threshold = threshold

                def apply(self, frame: pd.DataFrame, column: str) -> pd.DataFrame:
                    scores = rolling_zscore(frame[column])
                    return frame[scores.abs() < self.threshold]
            '''
        )
    )
    (root / "README.md").write_text("# Sales analysis\n\nForecasting weekly sales.\n")
    return root


def snapshot(store: IndexStore) -> dict[str, list[str]]:
    """Every file's chunk texts, for comparing two indexes."""
    return {
        path: sorted(c.text for c in store.chunks(store.chunk_ids(path)))
        for path in store.file_states()
    }


def test_full_then_incremental_index(tmp_path: Path, embedder: Any) -> None:
    root = make_project(tmp_path / "project")
    with IndexStore(tmp_path / "index.duckdb", embedder_id=embedder.id) as store:
        indexer = Indexer(store, embedder)
        first = indexer.index_folder(root)
        assert first.files_indexed == len(NOTEBOOKS) + 2
        assert first.errors == []
        assert first.truncated_chunks == 0
        assert first.chunks_written == store.stats()["chunks"]

        again = indexer.index_folder(root)
        assert again.files_indexed == 0
        assert again.files_unchanged == len(NOTEBOOKS) + 2
        assert again.chunks_written == 0

        source = root / "src" / "features.py"
        source.write_text(source.read_text().replace("rolling_zscore", "trailing_zscore"))
        (root / "README.md").unlink()
        changed = indexer.index_folder(root)
        assert changed.files_indexed == 1
        assert changed.files_removed == 1
        assert "README.md" not in store.file_states()

        searcher = HybridSearcher(store, embedder.embed_query)
        hits = searcher.search("standardise values against a trailing window", 5)
        assert hits[0].path == "src/features.py"
        assert hits[0].title and "trailing_zscore" in hits[0].title
        assert hits[0].start_line is not None
        notebook_hits = searcher.search("group by a column and compute the mean", 5)
        assert notebook_hits[0].path == "notebooks/03.08-Aggregation-and-Grouping.ipynb"
        assert notebook_hits[0].cell is not None


def test_index_files_refreshes_one_saved_file(tmp_path: Path, embedder: Any) -> None:
    root = make_project(tmp_path / "project")
    with IndexStore(tmp_path / "index.duckdb", embedder_id=embedder.id) as store:
        indexer = Indexer(store, embedder)
        indexer.index_folder(root)
        path = root / "src" / "features.py"
        extra = "\n\ndef seasonal_naive(series):\n    return series.shift(52)\n"
        path.write_text(path.read_text() + extra)
        report = indexer.index_files(root, [path])
        assert report.files_indexed == 1
        assert report.chunks_reused >= 1, "unchanged chunks keep their vectors"
        assert report.chunks_reused < report.chunks_written
        searcher = HybridSearcher(store, embedder.embed_query)
        assert any(h.title == "seasonal_naive" for h in searcher.search("seasonal_naive", 5))
        path.unlink()
        gone = indexer.index_files(root, [path])
        assert gone.files_removed == 1


CRASH_SCRIPT = """
import sys
from pathlib import Path
from rubberduck_jupyter.index.embedder import SentenceTransformerEmbedder
from rubberduck_jupyter.index.indexer import Indexer
from rubberduck_jupyter.index.store import IndexStore

root, db = Path(sys.argv[1]), Path(sys.argv[2])
embedder = SentenceTransformerEmbedder()
store = IndexStore(db, embedder_id=embedder.id)
def progress(p):
    if p.files_done:
        print("committed", p.files_done, flush=True)
Indexer(store, embedder, batch_chunks=24, progress=progress).index_folder(root)
print("finished", flush=True)
"""


def test_kill_9_mid_index_leaves_a_database_that_converges(tmp_path: Path, embedder: Any) -> None:
    root = make_project(tmp_path / "project")
    crashed_db = tmp_path / "crashed.duckdb"
    process = subprocess.Popen(
        [sys.executable, "-c", CRASH_SCRIPT, str(root), str(crashed_db)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith("committed"):
                break
        else:
            pytest.fail("the indexer finished or died before committing a batch")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL

    with IndexStore(crashed_db, embedder_id=embedder.id) as store:
        partial = store.file_states()
        assert 0 < len(partial) < len(NOTEBOOKS) + 2
        Indexer(store, embedder).index_folder(root)
        resumed = snapshot(store)
        resumed_vectors = _vectors_by_text(store)
    with IndexStore(tmp_path / "clean.duckdb", embedder_id=embedder.id) as store:
        Indexer(store, embedder).index_folder(root)
        clean = snapshot(store)
        clean_vectors = _vectors_by_text(store)
    assert resumed == clean
    for text, vector in clean_vectors.items():
        assert np.allclose(resumed_vectors[text], vector, atol=1e-4)


def _vectors_by_text(store: IndexStore) -> dict[str, np.ndarray]:
    vectors: dict[str, np.ndarray] = {}
    for path in store.file_states():
        ids = store.chunk_ids(path)
        for chunk, vector in zip(store.chunks(ids), store.vectors(ids), strict=True):
            vectors[chunk.text] = vector
    return vectors


def test_a_touched_but_unchanged_file_keeps_its_chunks_and_gets_its_new_mtime(
    tmp_path: Path, embedder: Any
) -> None:
    root = make_project(tmp_path / "project")
    with IndexStore(tmp_path / "index.duckdb", embedder_id=embedder.id) as store:
        indexer = Indexer(store, embedder)
        indexer.index_folder(root)
        readme = root / "README.md"
        readme.write_text(readme.read_text())  # same bytes, new mtime
        first = indexer.index_folder(root)
        assert (first.files_indexed, first.files_unchanged) == (0, len(NOTEBOOKS) + 2)
        assert store.file_states()["README.md"].mtime == readme.stat().st_mtime
