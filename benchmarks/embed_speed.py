"""MiniLM's embedding speed on pdsh's chunks: the ONNX embedder's batch size, bucketing and
thread layout, against torch, in interleaved rounds of one process, with the spread of
the rounds (the stability goal: under 15% over five).

    python benchmarks/embed_speed.py [--rounds 5] [--texts 256] [--only shipped|onnx|torch]

`--only shipped`: the shipped embedders (int8 and fp32 ONNX, torch), the stability check.
The other sets compare fp32 ONNX layouts, "shipped" there being fp32's settings.

Also measured, not in the default set: batch 32 (slower than 16) and no sorting (40%
padding on pdsh).

Layouts: "2x1" is the shipped one (two single-threaded runs at once, each on its own
batch); "1x2" one run whose operators are split over both cores (ORT's usual setting);
"1x2 spin" the same with ORT's default spinning pool threads. Bucketing: "tokens" sorts
the call's texts by token length and pads each batch to its longest (shipped); "chars"
sorts by characters as sentence-transformers does; "none" keeps the call's order.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from embed_quality import _texts
from index_common import build_corpus, machine

from rubberduck_jupyter.index import embedder_onnx
from rubberduck_jupyter.index.embedder_config import default_model_cache
from rubberduck_jupyter.index.embedder_onnx import OnnxMiniLMEmbedder
from rubberduck_jupyter.index.tokens import minilm_token_counter


def onnx_embedder(
    workers: int, threads: int, batch: int, spin: bool = False, int8: bool = False
) -> Any:
    embedder = OnnxMiniLMEmbedder(
        default_model_cache(),
        minilm_token_counter(),
        workers=workers,
        threads=threads,
        batch_size=batch,
        int8=int8,
    )
    embedder.load()
    if spin:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        embedder._session = ort.InferenceSession(
            str(embedder.model_path), options, providers=["CPUExecutionProvider"]
        )
    return embedder


def with_order(embedder: Any, policy: str) -> Callable[[list[str]], Any]:
    """The embedder with another bucketing policy (the batch order function swapped)."""

    def embed(texts: list[str]) -> Any:
        original = embedder_onnx.batch_order
        if policy == "chars":
            lengths = [len(t) for t in texts]

            def by_chars(_: Any, size: int) -> list[np.ndarray]:
                return original(lengths, size)

            embedder_onnx.batch_order = by_chars
        elif policy == "none":

            def in_order(lengths: Any, size: int) -> list[np.ndarray]:
                rows = np.arange(len(lengths))
                return [rows[i : i + size] for i in range(0, len(rows), size)]

            embedder_onnx.batch_order = in_order
        try:
            return embedder.embed(texts)
        finally:
            embedder_onnx.batch_order = original

    return embed


def torch_encoder(threads: int) -> Callable[[list[str]], Any]:
    import torch

    from rubberduck_jupyter.index.embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    embedder.load()

    def embed(texts: list[str]) -> Any:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return embedder.embed(texts)
        finally:
            torch.set_num_threads(before)

    return embed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--only", choices=["shipped", "onnx", "torch", "all"], default="all")
    args = parser.parse_args()
    counter = minilm_token_counter()
    with tempfile.TemporaryDirectory() as tmp:
        texts = list(_texts(build_corpus(Path(tmp) / "pdsh", code=False)))
    rng = np.random.default_rng(0)
    texts = [texts[i] for i in rng.choice(len(texts), args.texts, replace=False)]
    tokens = sum(min(counter.count(t), counter.window) for t in texts)
    cores = embedder_onnx.cpu_count()
    contenders: dict[str, Callable[[list[str]], Any]] = {}
    shipped = onnx_embedder(cores, 1, 8)
    if args.only == "shipped":
        contenders[f"onnx int8 {cores}x1 b8 (minilm)"] = onnx_embedder(cores, 1, 8, int8=True).embed
        contenders[f"onnx fp32 {cores}x1 b8 (minilm:onnx)"] = shipped.embed
        contenders[f"torch {cores} threads b16 (minilm:torch)"] = torch_encoder(cores)
    if args.only in ("onnx", "all"):
        contenders |= {
            f"onnx {cores}x1 b8 tokens (shipped)": shipped.embed,
            f"onnx {cores}x1 b16 tokens": onnx_embedder(cores, 1, 16).embed,
            f"onnx {cores}x1 b8 chars": with_order(shipped, "chars"),
            f"onnx 1x{cores} b8 tokens": onnx_embedder(1, cores, 8).embed,
            f"onnx 1x{cores} b8 tokens spin": onnx_embedder(1, cores, 8, spin=True).embed,
        }
    if args.only in ("torch", "all"):
        contenders |= {
            f"torch {cores} threads b16": torch_encoder(cores),
            "torch 1 thread b16": torch_encoder(1),
        }
    print(
        f"machine: {machine()}; {len(texts)} pdsh chunks, {tokens} tokens; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    for embed in contenders.values():
        embed(texts[:32])  # warm: arenas, first shapes
    speeds: dict[str, list[float]] = {name: [] for name in contenders}
    # Tokens per second of this process's CPU time (all its threads): what the embedder
    # itself costs, apart from the share of the cores other processes leave it.
    per_cpu: dict[str, list[float]] = {name: [] for name in contenders}
    loads: list[float] = []
    for round_ in range(args.rounds):
        for name, embed in contenders.items():
            started, cpu = time.perf_counter(), time.process_time()
            embed(texts)
            speeds[name].append(tokens / (time.perf_counter() - started))
            per_cpu[name].append(tokens / (time.process_time() - cpu))
            loads.append(os.getloadavg()[0])
            print(
                f"  round {round_ + 1} {name:34s} {speeds[name][-1]:8,.0f} tokens/s "
                f"load {loads[-1]:.2f}",
                flush=True,
            )
    first = next(iter(speeds))
    base = statistics.median(speeds[first])
    print(
        f"\nload {min(loads):.1f}-{max(loads):.1f} over the rounds\n\n"
        "| embedder | tokens/s (median) | x shipped | spread of "
        f"{args.rounds} | tokens per CPU-s (median) | its spread |\n|---|---|---|---|---|---|"
    )

    def spread(values: list[float]) -> str:
        return f"{100 * (max(values) - min(values)) / statistics.median(values):.0f}%"

    for name, values in speeds.items():
        median = statistics.median(values)
        print(
            f"| {name} | {median:,.0f} | {median / base:.2f} | {spread(values)} | "
            f"{statistics.median(per_cpu[name]):,.0f} | {spread(per_cpu[name])} |"
        )


if __name__ == "__main__":
    main()
