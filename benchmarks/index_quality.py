"""Retrieval quality on a query set written for this project: hit@5 and MRR for
vector-only, BM25-only and hybrid search over pdsh + a code tree.

    python benchmarks/index_quality.py [--show-misses]

Goal: hybrid hit@5 at least 0.9 and better than either alone.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from index_common import build_corpus, load_queries, machine

from rubberduck_jupyter.index.embedder import SentenceTransformerEmbedder
from rubberduck_jupyter.index.indexer import Indexer
from rubberduck_jupyter.index.search import Hit, HybridSearcher
from rubberduck_jupyter.index.store import IndexStore

MODES = ("vector", "bm25", "hybrid")


def relevant(hit: Hit, path: str, name: str | None) -> bool:
    if not hit.path.endswith(path):
        return False
    # A method counts for its class and for its own name: "Sniffer.sniff" answers "Sniffer".
    return name is None or (hit.title is not None and name in hit.title.split("."))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    queries = load_queries()
    cases = [(q, f"notebooks/{nb}", None) for q, nb in queries["notebooks"]]
    cases += [(q, f"code/{module}", name) for q, module, name in queries["code"]]
    embedder = SentenceTransformerEmbedder()
    print(f"machine: {machine()}; {len(cases)} queries")
    with tempfile.TemporaryDirectory() as tmp:
        root = build_corpus(Path(tmp) / "project")
        with IndexStore(Path(tmp) / "index.duckdb", embedder_id=embedder.id) as store:
            report = Indexer(store, embedder).index_folder(root)
            print(f"indexed {report.files_indexed} files, {report.chunks_written} chunks")
            searcher = HybridSearcher(store, embedder.embed_query)
            for mode in MODES:
                hits5, rr = 0, 0.0
                for query, path, name in cases:
                    hits = searcher.search(query, 10, mode=mode)
                    rank = next((i for i, h in enumerate(hits, 1) if relevant(h, path, name)), None)
                    if rank is not None and rank <= 5:
                        hits5 += 1
                    rr += 1 / rank if rank else 0.0
                    if args.show_misses and (rank is None or rank > 5):
                        top = hits[0].path + (f":{hits[0].title}" if hits[0].title else "")
                        print(
                            f"  [{mode}] miss: {query!r} -> wanted {path} {name or ''}, got {top}"
                        )
                print(f"{mode:>6}: hit@5 {hits5 / len(cases):.3f}   MRR {rr / len(cases):.3f}")


if __name__ == "__main__":
    main()
