"""Where torch's MiniLM loses to ONNX Runtime's, on the same pdsh chunks in one process.

    python benchmarks/embed_profile.py [--texts 256]

1. Padding: sentence-transformers sorts a call's texts by characters and pads each batch to
   its longest in tokens; ours sorts by tokens. Padded tokens / real tokens for both.
2. Time split of sentence-transformers' encode: tokenization (HF tokenizer + tensors),
   the forward pass, the rest (pooling, normalization, copies).
3. Per-operator time: torch.profiler's top ops against ORT's own profile by node type,
   the same batches (ours, token-sorted) fed to both, one thread each so the numbers are
   kernel speed, not thread scheduling.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from embed_quality import _texts
from index_common import build_corpus, machine

from rubberduck_jupyter.index.embedder import SentenceTransformerEmbedder
from rubberduck_jupyter.index.embedder_config import default_model_cache
from rubberduck_jupyter.index.embedder_onnx import OnnxMiniLMEmbedder, batch_order, pad
from rubberduck_jupyter.index.tokens import minilm_token_counter


def padding(lengths: list[int], keys: list[int], batch: int) -> float:
    order = np.asarray(lengths)
    padded = sum(len(g) * order[g].max() for g in batch_order(keys, batch))
    return padded / order.sum()


def ort_profile(onnx: OnnxMiniLMEmbedder, batches: list[Any]) -> dict[str, float]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.gettempdir()) / "rubberduck-ort-profile")
    session = ort.InferenceSession(
        str(onnx.model_path), options, providers=["CPUExecutionProvider"]
    )
    for b in batches:
        session.run(None, {"input_ids": b.input_ids, "attention_mask": b.attention_mask})
    trace = json.loads(Path(session.end_profiling()).read_text())
    per_op: collections.Counter[str] = collections.Counter()
    for event in trace:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"] / 1e6
    return dict(per_op)


def torch_profile(model: Any, batches: list[Any]) -> dict[str, float]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(1)
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        for b in batches:
            features = {
                "input_ids": torch.from_numpy(b.input_ids),
                "attention_mask": torch.from_numpy(b.attention_mask),
                "token_type_ids": torch.zeros_like(torch.from_numpy(b.input_ids)),
            }
            model(features)
    per_op = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    return per_op


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=256)
    args = parser.parse_args()
    counter = minilm_token_counter()
    with tempfile.TemporaryDirectory() as tmp:
        texts = list(_texts(build_corpus(Path(tmp) / "pdsh", code=False)))
    rng = np.random.default_rng(0)
    texts = [texts[i] for i in rng.choice(len(texts), args.texts, replace=False)]
    lengths = [min(counter.count(t), counter.window) for t in texts]
    tokens = sum(lengths)
    print(f"machine: {machine()}; {len(texts)} pdsh chunks, {tokens} tokens")
    print(f"load {os.getloadavg()[0]:.2f}")

    print("\n1. padded tokens / real tokens, batches of 16")
    print(
        f"   sorted by characters (sentence-transformers): "
        f"{padding(lengths, [len(t) for t in texts], 16):.3f}"
    )
    print(f"   sorted by tokens (ours):                      {padding(lengths, lengths, 16):.3f}")
    print(
        f"   call order, unsorted:                         "
        f"{padding(lengths, [0] * len(texts), 16):.3f}"
    )

    st = SentenceTransformerEmbedder()
    st.load()
    from rubberduck_jupyter.index.embedder import _models

    model = _models[str(st.model_dir)]
    st.embed(texts[:16])
    split = collections.Counter()
    order = np.argsort([-len(t) for t in texts], kind="stable")
    import torch

    started = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(texts), 16):
            batch = [texts[j] for j in order[i : i + 16]]
            t0 = time.perf_counter()
            features = model.tokenize(batch)
            t1 = time.perf_counter()
            out = model.forward(features)
            t2 = time.perf_counter()
            torch.nn.functional.normalize(out["sentence_embedding"], p=2, dim=1).numpy()
            t3 = time.perf_counter()
            split["tokenize"] += t1 - t0
            split["forward"] += t2 - t1
            split["pool+normalize+copy"] += t3 - t2
    total = time.perf_counter() - started
    print(
        f"\n2. sentence-transformers encode, split ({tokens / total:,.0f} tokens/s, "
        f"{torch.get_num_threads()} threads; load {os.getloadavg()[0]:.2f})"
    )
    for name, seconds in split.items():
        print(f"   {name:22s} {seconds:6.2f} s  {100 * seconds / total:5.1f}%")

    onnx = OnnxMiniLMEmbedder(default_model_cache(), counter)
    onnx.load()
    encodings = onnx._tokenizer.encode_batch(texts)
    batches = [pad([encodings[i] for i in g], g) for g in batch_order(lengths, 16)]
    torch_ops = torch_profile(model, batches)
    ort_ops = ort_profile(onnx, batches)
    print(
        f"\n3. per-operator time, same token-sorted batches, 1 thread "
        f"(load {os.getloadavg()[0]:.2f})"
    )
    torch_total = sum(v for k, v in torch_ops.items() if k.startswith("aten::"))
    gemm = sum(
        torch_ops.get(k, 0.0) for k in ("aten::addmm", "aten::mm", "aten::bmm", "aten::matmul")
    )
    print(f"   torch: kernels {torch_total:.2f} s, of which GEMM (addmm/mm/bmm) {gemm:.2f} s")
    for name, seconds in sorted(torch_ops.items(), key=lambda kv: -kv[1])[:8]:
        print(f"     {name:28s} {seconds:6.2f} s")
    ort_total = sum(ort_ops.values())
    ort_gemm = sum(
        v for k, v in ort_ops.items() if "MatMul" in k or k in ("Gemm", "Attention", "FusedMatMul")
    )
    print(f"   ORT: kernels {ort_total:.2f} s, of which MatMul/Attention {ort_gemm:.2f} s")
    for name, seconds in sorted(ort_ops.items(), key=lambda kv: -kv[1])[:8]:
        print(f"     {name:28s} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
