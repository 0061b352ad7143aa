from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def jp_server_config(fake_llm: Any) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"rubberduck_jupyter": True}},
        "RubberDuckApp": {"model": "openai/fake-model", "api_base": fake_llm.base_url},
    }
