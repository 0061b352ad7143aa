from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def jp_server_config(fake_llm: Any) -> dict[str, Any]:
    # Two models, so `%duck models` and `%duck use` have a choice to show.
    models = [
        {"model_name": name, "litellm_params": {"model": model, "api_base": fake_llm.base_url}}
        for name, model in (("main", "openai/fake-model"), ("fast", "openai/fake-fast"))
    ]
    return {
        "ServerApp": {"jpserver_extensions": {"rubberduck_jupyter": True}},
        "RubberDuckApp": {"models": models, "api_key": "sk-test-key"},
    }
