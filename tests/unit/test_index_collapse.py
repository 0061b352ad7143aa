"""One hit per definition: the parts of a function too long for one chunk (each carrying
its header) count once in search results, at the best part's place; notebook cells and
other chunks that share a title are all kept."""

from __future__ import annotations

from pathlib import Path

from rubberduck_jupyter.index.indexer import Indexer
from rubberduck_jupyter.index.search import HybridSearcher
from rubberduck_jupyter.index.store import IndexStore
from rubberduck_jupyter.testing.embedding import HashingEmbedder


def _long_function() -> str:
    # ~60 statements mentioning the same words: several chunks of one function.
    body = "\n".join(
        f"    reconcile_ledger_entry(ledger, entry_{i}, tolerance={i})" for i in range(60)
    )
    return f'def reconcile_ledger(ledger):\n    """Reconcile every ledger entry."""\n{body}\n'


def test_split_parts_collapse_into_the_best_part(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "ledger.py").write_text(_long_function())
    (root / "other.py").write_text(
        "def ledger_summary(ledger):\n    return len(ledger)\n\n"
        "def entry_tolerance(entry):\n    return entry.tolerance\n"
    )
    (root / "notes.md").write_text(
        "# Ledger\n\nReconcile the ledger weekly.\n\n# Ledger\n\nReconcile ledger entries.\n"
    )
    embedder = HashingEmbedder()
    with IndexStore(tmp_path / "i.duckdb", dim=embedder.dim, embedder_id=embedder.id) as store:
        Indexer(store, embedder).index_folder(root)
        parts = store.chunks(store.chunk_ids("ledger.py"))
        assert len(parts) >= 3 and len({c.title for c in parts}) == 1  # one split function
        searcher = HybridSearcher(store, embedder.embed_query)
        for mode in ("hybrid", "bm25", "vector"):
            every = searcher.search(
                "reconcile ledger entry", 5, mode=mode, one_per_definition=False
            )
            one = searcher.search("reconcile ledger entry", 5, mode=mode)
            titles = [h.title for h in every if h.path == "ledger.py"]
            assert len(titles) >= 2, (mode, [(h.path, h.title) for h in every])
            kept = [h for h in one if h.path == "ledger.py"]
            assert len(kept) == 1, mode
            # At the best part's place, with that part's text.
            best = next(h for h in every if h.path == "ledger.py")
            assert kept[0].text == best.text
            assert one.index(kept[0]) == every.index(best)
            # The places freed go to the next other chunks, in their order.
            longer = searcher.search(
                "reconcile ledger entry", 20, mode=mode, one_per_definition=False
            )
            others = [h.text for h in longer if h.path != "ledger.py"]
            assert [h.text for h in one if h.path != "ledger.py"] == others[: len(one) - 1]
        # Two Markdown sections under the same heading are two results, not one.
        notes = [
            h
            for h in searcher.search("reconcile ledger weekly entries", 10)
            if h.path == "notes.md"
        ]
        assert len(notes) == 2
