"""Response times per model: recorded where streams run, bounded, percentiles right."""

from __future__ import annotations

from typing import Any

from rubberduck_jupyter.llm.cache import ResponseCache
from rubberduck_jupyter.llm.client import StreamPiece
from rubberduck_jupyter.llm.config import build_models_config
from rubberduck_jupyter.llm.latency import MAX_MODELS, RING_SIZE, LatencyBoard
from rubberduck_jupyter.llm.service import LLMService, ServiceSettings
from rubberduck_jupyter.protocol import Usage


class SteppedGateway:
    """Three pieces; the clock advances 0.25 s per piece, so times are exact."""

    state = "ready"

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock

    async def stream(self, entry: Any, messages: Any, **_: Any) -> Any:
        for text in ("a", "b", "c"):
            self.clock[0] += 0.25
            yield StreamPiece(text=text)
        self.clock[0] += 0.25
        yield StreamPiece(usage=Usage(1, 3, 4), finish_reason="stop")

    def cost_usd(self, entry: Any, usage: Any) -> None:
        return None


async def test_the_service_records_first_token_and_total_per_answering_model() -> None:
    now = [100.0]
    config = build_models_config(model="ollama/bench", env={})
    service = LLMService(
        config,
        settings=ServiceSettings(direct_openai_streaming=False),
        gateway=SteppedGateway(now),  # type: ignore[arg-type]
        clock=lambda: now[0],
    )
    for _ in range(2):
        async for _piece in service.stream(user="u", messages=[{"role": "user", "content": "x"}]):
            pass
    series = service.health()["latency"]["ollama/bench"]
    assert series["time_to_first_token"]["count"] == 2
    assert series["time_to_first_token"]["p50_s"] == 0.25
    assert series["total"]["p99_s"] == 1.0 and series["total"]["sum_s"] == 2.0
    assert series["total"]["counts"][series["total"]["buckets_s"].index(1.0)] == 2


def test_percentiles_cover_the_recent_ring_and_counts_stay_cumulative() -> None:
    board = LatencyBoard()
    for i in range(RING_SIZE + 100):
        board.first_token("m", 10.0 if i < 100 else (i % 100) / 100)
    snap = board.snapshot()["m"]["time_to_first_token"]
    assert snap["count"] == RING_SIZE + 100  # all of them
    assert sum(snap["counts"]) == RING_SIZE + 100
    assert snap["p99_s"] < 10  # the old slow ones left the ring
    assert 0.45 <= snap["p50_s"] <= 0.55 and 0.85 <= snap["p90_s"] <= 0.95
    for i in range(MAX_MODELS + 5):
        board.total(f"model-{i}", 1.0)
    assert len(board.snapshot()) == MAX_MODELS  # bounded, whatever the config does


def test_an_empty_cache_or_registry_passed_in_is_the_one_used() -> None:
    # Both define __len__, so `x or Default()` replaced an empty one given by app.py.
    config = build_models_config(model="ollama/bench", env={})
    cache = ResponseCache(max_entries=0)
    assert LLMService(config, cache=cache).cache is cache
