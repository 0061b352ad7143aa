"""The quality guard for MiniLM's backends: hit@5 and MRR on index_quality.json (pdsh +
the stdlib code tree, as benchmarks/index_quality.py builds it) for torch, fp32 ONNX and
any quantized ONNX graph, with each graph's cosine to torch's vectors and its speed.

    python benchmarks/embed_quality.py [--graph name=path.onnx ...]

A quantized graph is accepted only when every mode's hit@5 and MRR stay within 0.01 of
torch's fp32 MiniLM (docs/configuration.md records what was tried). The relevance rule is
index_quality.py's: the path matches and, for code, the chunk's title names the function.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from index_common import build_corpus, load_queries, machine

from rubberduck_jupyter.index.embedder import SentenceTransformerEmbedder
from rubberduck_jupyter.index.embedder_config import default_model_cache
from rubberduck_jupyter.index.embedder_onnx import OnnxMiniLMEmbedder
from rubberduck_jupyter.index.indexer import Indexer
from rubberduck_jupyter.index.search import HybridSearcher
from rubberduck_jupyter.index.store import IndexStore
from rubberduck_jupyter.index.tokens import minilm_token_counter

MODES = ("vector", "hybrid")
TOLERANCE = 0.01


def cases() -> list[tuple[str, str, str | None]]:
    queries = load_queries()
    found: list[tuple[str, str, str | None]] = [
        (q, f"notebooks/{nb}", None) for q, nb in queries["notebooks"]
    ]
    found += [(q, f"code/{module}", name) for q, module, name in queries["code"]]
    return found


def relevant(path: str, title: str | None, want_path: str, name: str | None) -> bool:
    if not path.endswith(want_path):
        return False
    return name is None or (title is not None and name in title.split("."))


def scores(root: Path, db: Path, embedder: Any) -> tuple[dict[str, tuple[float, float]], float]:
    with IndexStore(db, dim=embedder.dim, embedder_id=embedder.id) as store:
        report = Indexer(store, embedder).index_folder(root)
        speed = report.tokens_embedded / report.seconds
        searcher = HybridSearcher(store, embedder.embed_query)
        result = {}
        for mode in MODES:
            hits5, rr, all_cases = 0, 0.0, cases()
            for query, path, name in all_cases:
                hits = searcher.search(query, 10, mode=mode)
                rank = next(
                    (i for i, h in enumerate(hits, 1) if relevant(h.path, h.title, path, name)),
                    None,
                )
                hits5 += rank is not None and rank <= 5
                rr += 1 / rank if rank else 0.0
            result[mode] = (hits5 / len(all_cases), rr / len(all_cases))
    db.unlink(missing_ok=True)
    return result, speed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--graph", action="append", default=[], help="name=path.onnx")
    parser.add_argument("--no-torch", action="store_true", help="fp32 ONNX is the reference")
    args = parser.parse_args()
    counter = minilm_token_counter()
    embedders: dict[str, Any] = {}
    if not args.no_torch:
        embedders["torch fp32"] = SentenceTransformerEmbedder()
    embedders["onnx fp32"] = OnnxMiniLMEmbedder(default_model_cache(), counter)
    for item in args.graph:
        name, _, path = item.partition("=")
        embedders[name] = OnnxMiniLMEmbedder(
            default_model_cache(), counter, graph=Path(path), model_id=f"minilm-{name}"
        )
    print(f"machine: {machine()}; {len(cases())} queries; load {os.getloadavg()[0]:.2f}")
    rows: dict[str, tuple[dict[str, tuple[float, float]], float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = build_corpus(tmp / "project")
        probe = [t for _, t in zip(range(200), _texts(root), strict=False)]
        reference = None
        for name, embedder in embedders.items():
            embedder.load()
            vectors = embedder.embed(probe)
            if reference is None:
                reference = vectors
            cosine = float(np.mean(np.sum(vectors * reference, axis=1)))
            started = time.perf_counter()
            result, speed = scores(root, tmp / f"{len(rows)}.duckdb", embedder)
            rows[name] = (result, speed, cosine)
            print(
                f"[{name}] {time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    base = next(iter(rows.values()))[0]
    print(
        "\n| embedder | mean cos to first | "
        + " | ".join(f"{m} hit@5 | {m} MRR" for m in MODES)
        + " | index tokens/s | within 0.01 |"
    )
    print("|---" * (3 + 2 * len(MODES)) + "|---|")
    for name, (result, speed, cosine) in rows.items():
        ok = all(
            abs(result[m][0] - base[m][0]) <= TOLERANCE
            and abs(result[m][1] - base[m][1]) <= TOLERANCE
            for m in MODES
        )
        cells = " | ".join(f"{result[m][0]:.3f} | {result[m][1]:.3f}" for m in MODES)
        print(f"| {name} | {cosine:.4f} | {cells} | {speed:,.0f} | {'yes' if ok else 'no'} |")


def _texts(root: Path) -> Any:
    from rubberduck_jupyter.index.chunkers import chunk_file
    from rubberduck_jupyter.index.discovery import Candidate, discover

    counter = minilm_token_counter()
    for item in discover(root):
        if isinstance(item, Candidate):
            for chunk in chunk_file(item.path, item.rel_path, counter):
                yield chunk.text


if __name__ == "__main__":
    main()
