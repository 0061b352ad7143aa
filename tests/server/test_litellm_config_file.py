"""A LiteLLM proxy config.yaml named by `models_file` drives a real server as the proxy would:
router_settings' fallbacks, context_window_fallbacks, deployments and num_retries, on both
streaming paths, against the fake provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.server_fixtures import chat_on_model, chunks_text


@pytest.fixture
def rubberduck_config(
    fake_llm: Any, tmp_path: Path, direct_openai_streaming: bool
) -> dict[str, Any]:
    base = fake_llm.base_url
    config = tmp_path / "config.yaml"
    # `fault-500` / `fault-context_window` in a model's name make the fake fail every call
    # to it that way.
    config.write_text(
        f"""
model_list:
  - model_name: main
    litellm_params: {{model: openai/fake-main-fault-500, api_base: "{base}"}}
  - model_name: main
    litellm_params: {{model: openai/fake-main-second-fault-500, api_base: "{base}"}}
  - model_name: backup
    litellm_params: {{model: openai/fake-backup, api_base: "{base}"}}
  - model_name: narrow
    litellm_params: {{model: openai/fake-narrow-fault-context_window, api_base: "{base}"}}
  - model_name: wide
    litellm_params: {{model: openai/fake-wide, api_base: "{base}"}}
router_settings:
  fallbacks: [{{main: [backup]}}, {{narrow: [backup]}}]
  context_window_fallbacks: [{{narrow: [wide]}}]
  num_retries: 0
  routing_strategy: simple-shuffle
"""
    )
    return {
        "models_file": str(config),
        "direct_openai_streaming": direct_openai_streaming,
        "retry_base_delay": 0.01,
        "breaker_failure_threshold": 100,
        "ollama_url": "http://127.0.0.1:9",
    }


async def test_router_settings_fallbacks_fail_over_through_every_deployment(
    jp_ws_fetch: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["from the backup"])
    frames = await chat_on_model(jp_ws_fetch, "hello", "main")
    done = frames[-1]
    assert done["type"] == "done", done
    assert done["model"] == "backup"
    # num_retries: 0 → one try per deployment, then the fallback.
    assert [(a["model"], a["outcome"]) for a in done["attempts"]] == [
        ("main", "server_error"),
        ("main#2", "server_error"),
        ("backup", "ok"),
    ]
    assert [r["model"] for r in fake_llm.requests] == [
        "fake-main-fault-500",
        "fake-main-second-fault-500",
        "fake-backup",
    ]


async def test_a_prompt_too_long_goes_to_the_context_window_fallback(
    jp_ws_fetch: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["from the wide model"])
    frames = await chat_on_model(jp_ws_fetch, "a long question", "narrow")
    done = frames[-1]
    assert done["type"] == "done", done
    assert done["model"] == "wide"
    # Not the ordinary fallback (backup): a wider window is what the prompt needs.
    assert [(a["model"], a["outcome"]) for a in done["attempts"]] == [
        ("narrow", "context_window"),
        ("wide", "ok"),
    ]
    text = chunks_text(frames)
    assert text == "from the wide model"


async def test_deployments_are_not_offered_by_name(jp_fetch: Any) -> None:
    models = json.loads((await jp_fetch("rubberduck", "api", "models")).body)
    names = [m["name"] for m in models["models"]]
    assert names == ["main", "backup", "narrow", "wide"]
