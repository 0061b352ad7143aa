"""Quantized variants of the ONNX MiniLM, each against fp32 ONNX: cosine of the vectors and
tokens/s on pdsh's chunks, interleaved rounds in one process. The survivors go through
benchmarks/embed_quality.py (--graph name=path), the guard that decides.

    python benchmarks/embed_quantize.py [--out DIR] [--rounds 3] [--texts 256]

Variants (weights int8; MatMul only, so the embeddings' Gather stays fp32):
  dyn-all        dynamic, per-tensor, every MatMul (what ENVIRONMENT.md measured: cos 0.93)
  dyn-pc         dynamic, per-channel
  dyn-pc-keep    dynamic, per-channel, the first and last layers and the pooling in fp32
  qdq-pc-keep    static QDQ, per-channel weights, activations calibrated on project-like
                 text (this repository's docs and Python, not the benchmark's corpus)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from index_common import REPO, build_corpus

from rubberduck_jupyter.index.embedder_config import default_model_cache
from rubberduck_jupyter.index.embedder_onnx import OnnxMiniLMEmbedder, batch_order, pad
from rubberduck_jupyter.index.tokens import minilm_token_counter

sys.path.insert(0, str(Path(__file__).parent))
from embed_quality import _texts


def keep_nodes(model: Any) -> list[str]:
    """MatMuls of the first and last encoder layers (the most sensitive, measured)."""
    return [
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul" and ("layer.0/" in n.name or "layer.5/" in n.name)
    ]


def calibration_texts(limit: int) -> list[str]:
    counter = minilm_token_counter()
    from rubberduck_jupyter.index.chunkers import chunk_file

    texts: list[str] = []
    files = sorted((REPO / "docs").glob("*.md")) + sorted(
        (REPO / "rubberduck_jupyter").rglob("*.py")
    )
    for path in files:
        for chunk in chunk_file(path, str(path.relative_to(REPO)), counter):
            texts.append(chunk.text)
    step = max(1, len(texts) // limit)
    return texts[::step][:limit]


def build_variants(fp32: Path, out: Path) -> dict[str, Path]:
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out.mkdir(parents=True, exist_ok=True)
    pre = out / "pre.onnx"
    if not pre.exists():
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    keep = keep_nodes(onnx.load(str(pre)))
    variants: dict[str, Path] = {}
    for name, per_channel, exclude in (
        ("dyn-all", False, []),
        ("dyn-pc", True, []),
        ("dyn-pc-keep", True, keep),
    ):
        target = out / f"{name}.onnx"
        if not target.exists():
            quantize_dynamic(
                str(pre),
                str(target),
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                op_types_to_quantize=["MatMul"],
                nodes_to_exclude=exclude,
                extra_options={"MatMulConstBOnly": True},
            )
        variants[name] = target

    target = out / "qdq-pc-keep.onnx"
    if not target.exists():
        embedder = OnnxMiniLMEmbedder(default_model_cache(), minilm_token_counter())
        embedder.load()
        encodings = embedder._tokenizer.encode_batch(calibration_texts(128))
        groups = batch_order([len(e.ids) for e in encodings], 16)
        batches = [pad([encodings[i] for i in rows], rows) for rows in groups]

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.items = iter(batches)

            def get_next(self) -> dict[str, np.ndarray] | None:
                batch = next(self.items, None)
                if batch is None:
                    return None
                return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}

        quantize_static(
            str(pre),
            str(target),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=keep,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"MatMulConstBOnly": True},
        )
    variants["qdq-pc-keep"] = target
    return variants


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "minilm-quant")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--texts", type=int, default=256)
    args = parser.parse_args()
    counter = minilm_token_counter()
    fp32 = OnnxMiniLMEmbedder(default_model_cache(), counter)
    fp32.load()
    variants = build_variants(fp32.model_path, args.out)
    embedders = {"onnx fp32": fp32} | {
        name: OnnxMiniLMEmbedder(
            default_model_cache(), counter, graph=path, model_id=f"minilm-{name}"
        )
        for name, path in variants.items()
    }
    with tempfile.TemporaryDirectory() as tmp:
        texts = list(_texts(build_corpus(Path(tmp) / "pdsh", code=False)))
    rng = np.random.default_rng(0)
    texts = [texts[i] for i in rng.choice(len(texts), args.texts, replace=False)]
    tokens = sum(counter.count(t) for t in texts)
    reference = fp32.embed(texts)
    speeds: dict[str, list[float]] = {name: [] for name in embedders}
    cosines: dict[str, np.ndarray] = {}
    for embedder in embedders.values():
        embedder.load()
    for round_ in range(args.rounds):
        for name, embedder in embedders.items():
            started = time.perf_counter()
            vectors = embedder.embed(texts)
            speeds[name].append(tokens / (time.perf_counter() - started))
            cosines[name] = np.sum(vectors * reference, axis=1)
            print(
                f"round {round_} {name}: {speeds[name][-1]:,.0f} tokens/s, load "
                f"{os.getloadavg()[0]:.2f}",
                flush=True,
            )
    base = statistics.median(speeds["onnx fp32"])
    print("\n| graph | MB | mean cos | min cos | tokens/s (median) | x fp32 |")
    print("|---|---|---|---|---|---|")
    summary = {}
    for name, embedder in embedders.items():
        median = statistics.median(speeds[name])
        size = embedder.model_path.stat().st_size / 1e6
        print(
            f"| {name} | {size:.0f} | {cosines[name].mean():.4f} | {cosines[name].min():.4f} | "
            f"{median:,.0f} | {median / base:.2f} |"
        )
        summary[name] = str(embedder.model_path)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
