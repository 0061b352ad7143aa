"""The ONNX Runtime backend of MiniLM: exported once into a cache (here a session's tmp
folder), reused, redone when the cache is damaged, safe when two processes race, vectors
equal to torch's, bucketing invisible in the vectors, no torch on the runtime path, and the
`minilm[:onnx|:torch]` setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from rubberduck_jupyter.index import embedder_onnx
from rubberduck_jupyter.index.embedder import MINILM_ID, SentenceTransformerEmbedder
from rubberduck_jupyter.index.embedder_config import (
    EmbedderConfig,
    EmbedderConfigError,
    build_embedder,
)
from rubberduck_jupyter.index.embedder_onnx import (
    MANIFEST_FILE,
    OnnxExportError,
    OnnxMiniLMEmbedder,
)
from rubberduck_jupyter.index.tokens import minilm_token_counter

TEXTS = [
    "group the sales table by region and sum revenue",
    "x",
    "def fiscal_quarter(date):\n    return (date.month - 1) // 3 + 1\n",
    "import pandas as pd\ndf = pd.read_csv('sales.csv')\ndf.groupby('region').sum()\n" * 20,
    "draw a scatter plot of height against weight",
    "Broadcasting lets numpy combine arrays of different shapes. " * 6,
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> OnnxMiniLMEmbedder:
    """The one real export of this module (~20 s on 2 cores), into a fresh cache."""
    embedder = OnnxMiniLMEmbedder(tmp_path_factory.mktemp("models"), minilm_token_counter())
    # An earlier test in this process (a server that indexed) may have verified an export
    # elsewhere, which a fresh cache would copy instead of exporting: forget it here.
    known = dict(embedder_onnx._verified)
    embedder_onnx._verified.clear()
    try:
        embedder.load()
    finally:
        embedder_onnx._verified.update({**known, **embedder_onnx._verified})
    assert embedder.exported
    return embedder


@pytest.fixture(autouse=True)
def no_earlier_exports() -> Iterator[None]:
    """Each test sees only the exports it makes: the process-wide memory of verified exports
    (filled by any earlier test that indexed) would otherwise turn an export into a copy."""
    known = dict(embedder_onnx._verified)
    embedder_onnx._verified.clear()
    yield
    embedder_onnx._verified.update(known)


@pytest.fixture
def fake_export(exported: OnnxMiniLMEmbedder, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replaces the torch export with a copy of the real graph (and its real reference
    vectors), so the cache's handling is tested in milliseconds."""
    reference = exported.embed(list(embedder_onnx.VERIFY_TEXTS))
    calls: list[Path] = []

    def export_graph(model_dir: Path, target: Path, window: int) -> np.ndarray:
        calls.append(target)
        target.write_bytes(exported.model_path.read_bytes())
        return reference

    monkeypatch.setattr(embedder_onnx, "_export_graph", export_graph)
    monkeypatch.setattr(embedder_onnx, "_fuse", lambda graph: False)  # the copy is fused
    monkeypatch.setattr(embedder_onnx, "_verified", {})  # no copy of this process's export
    return calls


def copy_cache(exported: OnnxMiniLMEmbedder, cache: Path) -> OnnxMiniLMEmbedder:
    target = cache / exported.export_dir.name
    target.mkdir(parents=True)
    for name in (embedder_onnx.MODEL_FILE, MANIFEST_FILE):
        (target / name).write_bytes((exported.export_dir / name).read_bytes())
    return OnnxMiniLMEmbedder(cache, minilm_token_counter())


# --- export and cache ------------------------------------------------------------------


def test_export_is_verified_and_recorded(exported: OnnxMiniLMEmbedder) -> None:
    manifest = json.loads((exported.export_dir / MANIFEST_FILE).read_text())
    assert manifest["min_cosine_to_torch"] >= 0.9999
    assert manifest["fused"]  # Attention and SkipLayerNormalization fused at export
    assert manifest["bytes"] == exported.model_path.stat().st_size
    assert manifest["versions"]["onnxruntime"]
    siblings = [p.name for p in exported.export_dir.parent.iterdir()]
    assert not [name for name in siblings if ".partial-" in name or ".stale-" in name]
    assert exported.id == MINILM_ID  # interchangeable with torch's vectors: same index


def test_a_second_build_reuses_the_cache(exported: OnnxMiniLMEmbedder) -> None:
    stamp = exported.model_path.stat().st_mtime_ns
    again = build_embedder(EmbedderConfig(spec="minilm:onnx", cache_dir=exported.export_dir.parent))
    assert isinstance(again, OnnxMiniLMEmbedder)
    again.load()
    assert not again.exported and again.backend == "onnx"
    assert exported.model_path.stat().st_mtime_ns == stamp
    assert np.allclose(again.embed(TEXTS), exported.embed(TEXTS), atol=1e-6)


def test_another_cache_folder_gets_a_copy_not_an_export(
    exported: OnnxMiniLMEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A test server has its own Jupyter data dir: one export per process, not per server.
    def no_export(model_dir: Path, target: Path, window: int) -> np.ndarray:
        raise AssertionError("exported again")

    monkeypatch.setattr(embedder_onnx, "_export_graph", no_export)
    # What this process verified: the module's own export (no_earlier_exports cleared it).
    embedder_onnx._verified[exported.export_dir.name] = exported.export_dir
    embedder = OnnxMiniLMEmbedder(tmp_path / "other-data-dir", minilm_token_counter())
    assert np.allclose(embedder.embed(TEXTS), exported.embed(TEXTS), atol=1e-6)
    assert embedder.cached() and not embedder.exported
    assert embedder.export_dir != exported.export_dir


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "no manifest", "old format"])
def test_a_damaged_cache_is_detected_and_redone(
    exported: OnnxMiniLMEmbedder, fake_export: list[Path], tmp_path: Path, damage: str
) -> None:
    embedder = copy_cache(exported, tmp_path)
    assert embedder.cached()
    model, manifest = embedder.model_path, embedder.export_dir / MANIFEST_FILE
    if damage == "truncated":
        model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    elif damage == "flipped byte":
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0xFF
        model.write_bytes(bytes(data))
    elif damage == "no manifest":
        manifest.unlink()
    else:
        manifest.write_text(json.dumps(json.loads(manifest.read_text()) | {"format": 0}))
    (tmp_path / f"{embedder.export_dir.name}.partial-1-dead").mkdir()  # a crashed exporter's
    assert not embedder.cached()

    vectors = embedder.embed(TEXTS)
    assert embedder.exported and len(fake_export) == 1
    assert embedder.cached()
    assert np.allclose(vectors, exported.embed(TEXTS), atol=1e-6)


def test_an_export_that_differs_from_torch_is_refused(
    exported: OnnxMiniLMEmbedder, fake_export: list[Path], tmp_path: Path, monkeypatch: Any
) -> None:
    def wrong(model_dir: Path, target: Path, window: int) -> np.ndarray:
        target.write_bytes(exported.model_path.read_bytes())
        return -exported.embed(list(embedder_onnx.VERIFY_TEXTS))

    monkeypatch.setattr(embedder_onnx, "_export_graph", wrong)
    embedder = OnnxMiniLMEmbedder(tmp_path, minilm_token_counter())
    with pytest.raises(OnnxExportError, match="minilm:torch"):
        embedder.load()
    assert not embedder.export_dir.exists()
    assert [p.name for p in tmp_path.iterdir()] == [embedder.export_dir.name + ".lock"]


RACER = """
import sys, time
from pathlib import Path
import numpy as np
from rubberduck_jupyter.index import embedder_onnx
from rubberduck_jupyter.index.embedder_onnx import OnnxMiniLMEmbedder
from rubberduck_jupyter.index.tokens import minilm_token_counter

source, reference, cache = Path(sys.argv[1]), np.load(sys.argv[2]), Path(sys.argv[3])
def export_graph(model_dir, target, window):
    time.sleep(1.0)  # long enough for the other process to arrive while this one exports
    target.write_bytes(source.read_bytes())
    return reference
embedder_onnx._export_graph = export_graph
embedder_onnx._fuse = lambda graph: False
embedder = OnnxMiniLMEmbedder(cache, minilm_token_counter())
vector = embedder.embed(["group by region"])[0]
print(int(embedder.exported), float(vector @ vector))
"""


def test_two_processes_racing_export_once(exported: OnnxMiniLMEmbedder, tmp_path: Path) -> None:
    reference = tmp_path / "reference.npy"
    np.save(reference, exported.embed(list(embedder_onnx.VERIFY_TEXTS)))
    cache = tmp_path / "cache"
    args = [sys.executable, "-c", RACER, str(exported.model_path), str(reference), str(cache)]
    racers = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [racer.communicate(timeout=120)[0].split() for racer in racers]
    assert all(racer.returncode == 0 for racer in racers)
    assert sorted(int(out[0]) for out in outputs) == [0, 1]  # one exported, one reused it
    assert all(abs(float(out[1]) - 1.0) < 1e-5 for out in outputs)
    assert OnnxMiniLMEmbedder(cache, minilm_token_counter()).cached()


# --- vectors ---------------------------------------------------------------------------


def test_vectors_match_torch(exported: OnnxMiniLMEmbedder) -> None:
    torch_vectors = SentenceTransformerEmbedder().embed(TEXTS)
    onnx_vectors = exported.embed(TEXTS)
    assert onnx_vectors.shape == (len(TEXTS), 384) and onnx_vectors.dtype == np.float32
    assert np.min(np.sum(onnx_vectors * torch_vectors, axis=1)) >= 0.9999
    assert np.allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-5)


def test_bucketing_gives_the_vectors_of_unpadded_single_texts(
    exported: OnnxMiniLMEmbedder,
) -> None:
    texts = TEXTS * 7  # 42 texts: several batches of mixed lengths, tokenized in a thread
    bucketed = exported.embed(texts)
    alone = np.stack([exported.embed([text])[0] for text in TEXTS])
    assert np.allclose(bucketed, np.tile(alone, (7, 1)), atol=2e-5)
    assert np.allclose(exported.embed_query(TEXTS[3]), alone[3], atol=2e-5)
    assert exported.embed([]).shape == (0, 384)


def test_batches_are_sorted_by_length_and_padded_to_their_longest() -> None:
    groups = embedder_onnx.batch_order([5, 50, 7, 300, 6, 49], batch_size=2)
    assert [g.tolist() for g in groups] == [[3, 1], [5, 2], [4, 0]]


def test_the_runtime_path_does_not_import_torch(exported: OnnxMiniLMEmbedder) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from rubberduck_jupyter.index.embedder_config import EmbedderConfig, build_embedder
        embedder = build_embedder(
            EmbedderConfig(spec="minilm:onnx", cache_dir=Path({str(exported.export_dir.parent)!r}))
        )
        vector = embedder.embed(["how do I pivot a data frame"])[0]
        heavy = [m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]
        print(type(embedder).__name__, embedder.exported, heavy, round(float(vector @ vector), 4))
        """
    )
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["OnnxMiniLMEmbedder", "False", "[]", "1.0"]


# --- the setting -----------------------------------------------------------------------


def test_the_int8_variant_has_its_own_export_and_id(
    exported: OnnxMiniLMEmbedder, tmp_path: Path
) -> None:
    # A real export and quantization (~20 s): what minilm:int8 ships must hold its floor.
    int8 = build_embedder(EmbedderConfig(spec="minilm:int8", cache_dir=tmp_path))
    assert isinstance(int8, OnnxMiniLMEmbedder) and int8.int8
    vectors = int8.embed(TEXTS)
    assert int8.exported and int8.export_dir.name.startswith("onnx-all-MiniLM-L6-v2-int8-")
    assert int8.id != exported.id and int8.id.startswith(MINILM_ID)  # not interchangeable
    assert int8.model_path.stat().st_size < 0.8 * exported.model_path.stat().st_size
    manifest = json.loads((int8.export_dir / MANIFEST_FILE).read_text())
    assert manifest["int8"] and manifest["min_cosine_to_torch"] >= 0.98
    cosines = np.sum(vectors * exported.embed(TEXTS), axis=1)
    assert cosines.min() >= 0.98
    assert int8._fallback_factory is None  # torch's vectors are not its vectors


@pytest.mark.parametrize("spec", ["minilm", "minilm:onnx", "minilm:torch", "minilm:int8"])
def test_minilm_backends_are_accepted(spec: str) -> None:
    assert EmbedderConfig(spec=spec).validate().kind == "minilm"


@pytest.mark.parametrize("spec", ["minilm:", "minilm:gpu", "minilm:ONNX", "minilm:torch:x"])
def test_unknown_minilm_backends_are_refused(spec: str) -> None:
    with pytest.raises(EmbedderConfigError, match="minilm:torch"):
        EmbedderConfig(spec=spec).validate()


def test_the_spec_picks_the_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def built(spec: str, **options: Any) -> Any:
        return build_embedder(EmbedderConfig(spec=spec, cache_dir=tmp_path, **options))

    default = built("minilm")
    assert isinstance(default, OnnxMiniLMEmbedder) and default.int8
    assert default._fallback_factory is None
    assert built("minilm:int8").id == default.id
    fp32 = built("minilm:onnx")
    assert isinstance(fp32, OnnxMiniLMEmbedder) and not fp32.int8 and fp32.id == MINILM_ID
    assert isinstance(built("minilm:torch"), SentenceTransformerEmbedder)
    assert built("minilm:onnx", batch_size=4).batch_size == 4
    assert built("minilm:torch", batch_size=4).batch_size == 4
    config = "rubberduck_jupyter.index.embedder_config"
    monkeypatch.setattr(f"{config}.onnx_quantizer_available", lambda: False)
    no_quantizer = built("minilm")  # fp32 ONNX, torch as its fallback
    assert not no_quantizer.int8 and no_quantizer._fallback_factory is not None
    monkeypatch.setattr(f"{config}.onnx_runtime_available", lambda: False)
    assert isinstance(built("minilm"), SentenceTransformerEmbedder)
    assert isinstance(built("minilm:onnx"), OnnxMiniLMEmbedder)  # asked for: its error, later


def test_minilm_falls_back_to_torch_when_the_export_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(model_dir: Path, target: Path, window: int) -> np.ndarray:
        raise OnnxExportError("no torch here")

    monkeypatch.setattr(embedder_onnx, "_export_graph", broken)
    monkeypatch.setattr(embedder_onnx, "_verified", {})
    forced = build_embedder(EmbedderConfig(spec="minilm:onnx", cache_dir=tmp_path))
    with pytest.raises(OnnxExportError, match="no torch here"):
        forced.embed(TEXTS)
    monkeypatch.setattr(
        "rubberduck_jupyter.index.embedder_config.onnx_quantizer_available", lambda: False
    )
    auto = build_embedder(EmbedderConfig(spec="minilm", cache_dir=tmp_path))  # fp32 ONNX
    vectors = auto.embed(TEXTS)
    assert auto.backend == "torch" and auto.id == MINILM_ID
    assert np.allclose(vectors, SentenceTransformerEmbedder().embed(TEXTS), atol=1e-6)
