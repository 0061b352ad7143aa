"""Index build cost against bare embedding, in one run.

    python benchmarks/index_build.py

1. Full index of pdsh + a code tree vs embedding the same chunk texts with the same model
   and batch size (goal: at most 1.15x).
2. Re-index with nothing changed, as a share of the full index (goal: at most 2%); one
   changed file refreshed (goal: under 1 s).
3. Coverage and throughput: truncated chunks (goal: 0) and indexing tokens/s on pdsh vs the
   embedder's raw tokens/s on full-window inputs (goal: at least 85%).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from index_common import build_corpus, machine

from rubberduck_jupyter.index.chunkers import chunk_file
from rubberduck_jupyter.index.discovery import Candidate, discover
from rubberduck_jupyter.index.embedder import SentenceTransformerEmbedder
from rubberduck_jupyter.index.indexer import Indexer
from rubberduck_jupyter.index.store import IndexStore


def chunk_texts(root: Path, embedder: SentenceTransformerEmbedder) -> tuple[list[str], int]:
    texts: list[str] = []
    tokens = 0
    for item in discover(root):
        if isinstance(item, Candidate):
            for chunk in chunk_file(item.path, item.rel_path, embedder.counter):
                texts.append(chunk.text)
                tokens += chunk.n_tokens
    return texts, tokens


def full_window_texts(embedder: SentenceTransformerEmbedder, count: int) -> list[str]:
    """Texts of exactly the window's length in tokens (special tokens included)."""
    words = (
        "data frame column index value group mean plot array model fit predict feature sample"
    ).split()
    texts = []
    for i in range(count):
        text = " ".join(words[(i + j) % len(words)] for j in range(400))
        offsets = embedder.counter.offsets(text)
        cut = offsets[embedder.counter.window - 3][1]
        texts.append(text[:cut])
    return texts


def main() -> None:
    embedder = SentenceTransformerEmbedder()
    embedder.load()
    embedder.embed(["warm up"] * 16)
    print(f"machine: {machine()}; model {embedder.id}, batch {embedder.batch_size}")
    with tempfile.TemporaryDirectory() as tmp:
        root = build_corpus(Path(tmp) / "project")
        texts, _ = chunk_texts(root, embedder)

        started = time.perf_counter()
        embedder.embed(texts)
        bare = time.perf_counter() - started

        with IndexStore(Path(tmp) / "index.duckdb", embedder_id=embedder.id) as store:
            indexer = Indexer(store, embedder)
            report = indexer.index_folder(root)
            full = report.seconds
            again = indexer.index_folder(root)
            notebook = root / "notebooks" / "03.08-Aggregation-and-Grouping.ipynb"
            notebook.write_text(notebook.read_text().replace("groupby", "group_by", 1))
            one = indexer.index_files(root, [notebook])

        print(f"\n1. {len(texts)} chunks from {report.files_indexed} files")
        print(f"   bare embedding of the same texts: {bare:.2f} s")
        print(f"   full index: {full:.2f} s (embedding {report.seconds_embedding:.2f} s)")
        print(f"   ratio full index / bare embedding: {full / bare:.3f}  (goal <= 1.15)")
        print(
            f"\n2. re-index, nothing changed: {again.seconds * 1000:.1f} ms = "
            f"{100 * again.seconds / full:.2f}% of the full index (goal <= 2%)"
        )
        print(
            f"   one changed notebook refreshed in {one.seconds * 1000:.0f} ms (goal < 1000 ms), "
            f"{one.chunks_reused} of {one.chunks_written} chunks' vectors reused"
        )

    with tempfile.TemporaryDirectory() as tmp:
        root = build_corpus(Path(tmp) / "pdsh", code=False)
        raw_texts = full_window_texts(embedder, 256)
        started = time.perf_counter()
        embedder.embed(raw_texts)
        raw_tokens_per_s = 256 * embedder.counter.window / (time.perf_counter() - started)
        with IndexStore(Path(tmp) / "index.duckdb", embedder_id=embedder.id) as store:
            report = Indexer(store, embedder).index_folder(root)
        index_tokens_per_s = report.tokens_embedded / report.seconds
        print(
            f"\n3. pdsh: {report.chunks_written} chunks, {report.tokens_embedded} tokens "
            f"embedded, {report.truncated_chunks} truncated (goal 0), {report.seconds:.1f} s"
        )
        print(f"   embedder raw throughput on full-window inputs: {raw_tokens_per_s:,.0f} tokens/s")
        print(
            f"   indexing throughput: {index_tokens_per_s:,.0f} tokens/s = "
            f"{100 * index_tokens_per_s / raw_tokens_per_s:.1f}% of raw (goal >= 85%)"
        )


if __name__ == "__main__":
    main()
