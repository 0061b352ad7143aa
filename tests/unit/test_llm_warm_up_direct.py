"""The LLM service's warm-up prepares the direct OpenAI-compatible path too: its pool's
clients (whose SSL contexts load the CA bundle, ~50 ms each when built on the loop) exist
before the first chat, and that chat streams through them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from rubberduck_jupyter.llm.config import build_models_config
from rubberduck_jupyter.llm.openai_stream import POOL_SHARDS
from rubberduck_jupyter.llm.service import LLMService, ServiceSettings
from rubberduck_jupyter.testing.fake_llm import FakeLLMThread

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture
def fake() -> Iterator[FakeLLMThread]:
    with FakeLLMThread() as server:
        yield server


def _service(fake: FakeLLMThread, direct: bool) -> LLMService:
    config = build_models_config(
        model="openai/fake-model", api_base=fake.base_url, api_key="sk-test", env={}
    )
    return LLMService(config, settings=ServiceSettings(direct_openai_streaming=direct))


def test_the_warm_up_builds_the_direct_pool_before_the_first_chat(fake: FakeLLMThread) -> None:
    fake.set_replies(["warm answer"])
    service = _service(fake, direct=True)

    async def run() -> str:
        warm = service.warm_up(delay_s=0)
        assert warm is not None
        await warm
        direct = service._direct
        assert direct is not None and len(direct._clients) == POOL_SHARDS
        prepared = list(direct._clients)
        text = "".join(
            [
                piece.text
                async for piece in service.stream(
                    user="alice", messages=[{"role": "user", "content": "hi"}]
                )
            ]
        )
        assert direct._clients == prepared  # the first chat used the prepared clients
        await service.aclose()
        return text

    assert asyncio.run(run()) == "warm answer"


def test_without_direct_streaming_the_warm_up_leaves_it_alone(fake: FakeLLMThread) -> None:
    service = _service(fake, direct=False)

    async def run() -> None:
        warm = service.warm_up(delay_s=0)
        assert warm is not None
        await warm
        assert service._direct is None

    asyncio.run(run())
