"""The embedder choice: the fake provider's /v1/embeddings, the litellm embedder against it
(batching, retries, clear failures, an index built and searched through it), the setting's
validation, and the model2vec embedder distilled from the bundled MiniLM."""

from __future__ import annotations

import asyncio
import importlib.util
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from rubberduck_jupyter.index.embedder_config import (
    EmbedderConfig,
    EmbedderConfigError,
    build_embedder,
)
from rubberduck_jupyter.index.service import IndexService
from rubberduck_jupyter.index.tokens import minilm_token_counter
from rubberduck_jupyter.llm.embedder import (
    EmbeddingProviderError,
    LiteLLMEmbedder,
    provider_embedder,
    resolved_api_key,
)
from rubberduck_jupyter.testing.embedding import hashed_bag_of_words

MODEL = "openai/fake-embed"


def embedding_requests(fake: Any) -> list[dict[str, Any]]:
    return [r for r in fake.requests if r["_fake"]["path"].endswith("/embeddings")]


def api_embedder(fake: Any, **options: Any) -> LiteLLMEmbedder:
    sleeps: list[float] = []
    embedder = LiteLLMEmbedder(
        MODEL,
        minilm_token_counter(),
        api_base=fake.base_url,
        api_key="sk-test-key",
        sleep=sleeps.append,
        **options,
    )
    embedder.sleeps = sleeps  # type: ignore[attr-defined]
    return embedder


async def finished(service: IndexService) -> None:
    for _ in range(600):  # a bound for failing, not a speed expectation
        if service.state != "indexing":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("indexing did not finish")


# --- the fake provider's embeddings -------------------------------------------------------


def test_fake_embeddings_are_openai_shaped_unit_vectors(fake_llm: Any) -> None:
    body = {"model": "fake-embed", "input": ["group sales by region", "plot a histogram"]}
    response = httpx.post(f"{fake_llm.base_url}/embeddings", json=body)
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "list"
    assert [item["index"] for item in data["data"]] == [0, 1]
    vectors = np.array([item["embedding"] for item in data["data"]])
    assert vectors.shape == (2, 64)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert vectors[0].tolist() == hashed_bag_of_words("group sales by region", 64)
    assert data["usage"]["prompt_tokens"] == 7

    wider = httpx.post(
        f"{fake_llm.base_url}/embeddings", json={"model": "m", "input": "x y", "dimensions": 8}
    )
    assert len(wider.json()["data"][0]["embedding"]) == 8
    bad = httpx.post(f"{fake_llm.base_url}/embeddings", json={"model": "m", "input": []})
    assert bad.status_code == 400


def test_fake_embeddings_take_the_fault_queue(fake_llm: Any) -> None:
    fake_llm.add_faults(["429", "malformed"])
    limited = httpx.post(f"{fake_llm.base_url}/embeddings", json={"model": "m", "input": "a"})
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    broken = httpx.post(f"{fake_llm.base_url}/embeddings", json={"model": "m", "input": "a"})
    assert broken.text == "{not json"
    fine = httpx.post(f"{fake_llm.base_url}/embeddings", json={"model": "m", "input": "a"})
    assert fine.status_code == 200
    assert [r["_fake"]["fault"] for r in embedding_requests(fake_llm)] == ["429", "malformed", None]


# --- the litellm embedder -----------------------------------------------------------------


def test_litellm_embedder_learns_its_width_and_batches(fake_llm: Any) -> None:
    fake_llm.update_settings({"embedding_dim": 48})
    embedder = api_embedder(fake_llm, batch_size=4)
    assert embedder.dim == 48
    assert embedder.id == f"litellm:{MODEL}:48d:w256"
    texts = [f"chunk number {i} about revenue" for i in range(10)]
    vectors = embedder.embed(texts)
    assert vectors.shape == (10, 48)
    assert vectors.dtype == np.float32
    assert np.allclose(vectors[3], hashed_bag_of_words(texts[3], 48), atol=1e-6)
    sizes = [len(r["input"]) for r in embedding_requests(fake_llm)]
    assert sizes == [1, 4, 4, 2]  # the width probe, then batches of at most 4
    assert all(r["_fake"]["authorization_present"] for r in embedding_requests(fake_llm))
    query = embedder.embed_query("revenue")
    assert query.shape == (48,)
    assert embedder.embed([]).shape == (0, 48)


def test_litellm_embedder_retries_rate_limits_and_server_errors(fake_llm: Any) -> None:
    embedder = api_embedder(fake_llm)
    assert embedder.dim == 64
    fake_llm.add_faults(["429", "500", "drop"])
    vectors = embedder.embed(["weekly churn by cohort"])
    assert np.allclose(vectors[0], hashed_bag_of_words("weekly churn by cohort", 64), atol=1e-6)
    faults = [r["_fake"]["fault"] for r in embedding_requests(fake_llm)]
    assert faults == [None, "429", "500", "drop", None]
    assert embedder.sleeps[0] == 1.0  # the 429's Retry-After, honoured
    assert len(embedder.sleeps) == 3


def test_litellm_embedder_fails_clearly(fake_llm: Any) -> None:
    embedder = api_embedder(fake_llm)
    fake_llm.add_faults(["401"])
    with pytest.raises(EmbeddingProviderError) as refused:
        embedder.embed(["x"])
    message = str(refused.value)
    assert MODEL in message and "auth" in message and "index_embedder" in message
    assert "sk-test-key" not in message
    assert len(embedding_requests(fake_llm)) == 1  # a bad key is not retried

    fake_llm.update_settings({"fault": "503"})
    with pytest.raises(EmbeddingProviderError, match="after 4 attempts"):
        embedder.embed(["x"])


async def test_index_built_and_searched_through_the_provider(fake_llm: Any, tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "calendar_utils.py").write_text(
        "def fiscal_quarter(date):\n"
        '    """Which fiscal quarter a date falls in."""\n'
        "    return date.month // 3\n"
    )
    (root / "NOTES.md").write_text("# Churn\n\nThe churn model uses gradient boosting trees.\n")
    config = EmbedderConfig(spec=f"litellm:{MODEL}", api_base=fake_llm.base_url, api_key="k")
    service = IndexService(
        root,
        tmp_path / "index.duckdb",
        embedder_factory=partial(build_embedder, config, provider_embedder),
    )
    try:
        await service.start()
        await finished(service)
        assert service.state == "idle", service.last_error
        assert service.last_report and service.last_report["files_indexed"] == 2
        assert service.status()["embedder"] == f"litellm:{MODEL}:64d:w256"
        hits = await service.search("churn model gradient boosting", mode="vector")
        assert hits[0].path == "NOTES.md"
        hits = await service.search("fiscal quarter of a date")
        assert hits[0].path == "src/calendar_utils.py"

        fake_llm.update_settings({"fault": "500"})
        with pytest.raises(EmbeddingProviderError, match="server_error"):
            await service.search("anything at all")
        # find() degrades instead: keyword hits, and why, with the state in status().
        hits, degraded = await service.find("fiscal_quarter date")
        assert hits and hits[0].path == "src/calendar_utils.py"
        assert hits[0].vector_rank is None and hits[0].bm25_rank == 1
        assert degraded is not None and "server_error" in degraded
        assert service.status()["embedder_error"] == degraded
        with pytest.raises(EmbeddingProviderError):
            await service.find("fiscal_quarter", mode="vector")  # asked for vectors only
        fake_llm.update_settings({"fault": None})
        hits, degraded = await service.find("fiscal quarter of a date")
        assert degraded is None and service.status()["embedder_error"] is None
    finally:
        fake_llm.update_settings({"fault": None})
        await service.close()


async def test_a_provider_down_at_open_is_an_index_error(fake_llm: Any, tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    config = EmbedderConfig(spec=f"litellm:{MODEL}", api_base=fake_llm.base_url, api_key="k")
    service = IndexService(
        tmp_path,
        tmp_path / "db" / "i.duckdb",
        embedder_factory=partial(build_embedder, config, provider_embedder),
    )
    fake_llm.add_faults(["401"])
    try:
        await service.start()
        await finished(service)
        assert service.state == "error"
        assert "EmbeddingProviderError" in (service.last_error or "")
        assert MODEL in (service.last_error or "")
    finally:
        await service.close()


# --- the setting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    ["", "minilm:x", "litellm:", "litellm:   ", "openai/text-embedding-3-small", "MiniLM"],
)
def test_bad_embedder_settings_are_refused(spec: str) -> None:
    with pytest.raises(EmbedderConfigError):
        EmbedderConfig(spec=spec).validate()


def test_embedder_settings() -> None:
    config = EmbedderConfig(spec="litellm:openai/text-embedding-3-small").validate()
    assert (config.kind, config.model) == ("litellm", "openai/text-embedding-3-small")
    with pytest.raises(EmbedderConfigError, match="256"):
        EmbedderConfig(spec="minilm", window=512).validate()
    assert EmbedderConfig(spec="litellm:m", window=512).validate().window == 512
    referenced = EmbedderConfig(spec="litellm:m", api_key="os.environ/MY_EMBED_KEY")
    assert resolved_api_key(referenced, {"MY_EMBED_KEY": "sk-1"}) == "sk-1"
    assert resolved_api_key(referenced, {}) is None
    assert resolved_api_key(EmbedderConfig(spec="litellm:m", api_key="sk-2"), {}) == "sk-2"
    assert "sk-2" not in str(EmbedderConfig(spec="litellm:m", api_key="sk-2").describe())


def test_the_window_shapes_the_litellm_embedder(fake_llm: Any) -> None:
    config = EmbedderConfig(spec=f"litellm:{MODEL}", api_base=fake_llm.base_url, window=512)
    embedder = build_embedder(config, provider_embedder)
    assert embedder.counter.window == 512
    assert embedder.id.endswith(":w512")


# --- model2vec -----------------------------------------------------------------------------

HAS_MODEL2VEC = importlib.util.find_spec("model2vec") is not None


@pytest.mark.skipif(not HAS_MODEL2VEC, reason="model2vec (the 'static' extra) is not installed")
def test_model2vec_distils_once_then_loads_from_its_cache(
    pytestconfig: pytest.Config, tmp_path: Path
) -> None:
    # pytest's cache folder keeps the distilled model between runs (~25 s the first time);
    # with the cache plugin off (CI), the test distils into its own folder.
    cache_plugin = getattr(pytestconfig, "cache", None)
    cache = Path(cache_plugin.mkdir("rubberduck-models")) if cache_plugin else tmp_path
    embedder = build_embedder(EmbedderConfig(spec="model2vec", cache_dir=cache))
    assert embedder.id == "model2vec:all-MiniLM-L6-v2-distilled:256d"
    texts = [
        "group the sales table by region and sum revenue",
        "aggregate revenue per region with a groupby",
        "draw a scatter plot of height against weight",
    ]
    vectors = embedder.embed(texts)
    assert vectors.shape == (3, 256)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert (embedder.model_dir / "model.safetensors").exists()

    again = build_embedder(EmbedderConfig(spec="model2vec", cache_dir=cache))
    assert np.allclose(again.embed(texts), vectors, atol=1e-6)


def test_without_a_provider_wired_the_index_refuses_litellm() -> None:
    # The index knows only the Embedder protocol: app.py and the CLI hand it the provider's.
    with pytest.raises(EmbedderConfigError, match="provider_embedder"):
        build_embedder(EmbedderConfig(spec=f"litellm:{MODEL}"))
