"""Zero-config: find an Ollama server on this machine when no model is configured."""

from __future__ import annotations

import json
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from .config import ModelsConfig, build_models_config

DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"


async def detect_ollama(url: str = DEFAULT_OLLAMA_URL, wait_s: float = 0.5) -> list[str]:
    """Names of the models a local Ollama serves; empty when none answers quickly."""
    try:
        response = await AsyncHTTPClient().fetch(
            url.rstrip("/") + "/api/tags", connect_timeout=wait_s, request_timeout=wait_s
        )
        data: Any = json.loads(response.body)
    except (OSError, HTTPClientError, ValueError):
        return []
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        return []
    return [m["name"] for m in models if isinstance(m, dict) and isinstance(m.get("name"), str)]


def ollama_config(url: str, names: list[str]) -> ModelsConfig:
    model_list = [
        {
            "model_name": f"ollama/{name}",
            "litellm_params": {"model": f"ollama/{name}", "api_base": url},
        }
        for name in names
    ]
    config = build_models_config(model_list=model_list, env={})
    return ModelsConfig(
        entries=config.entries,
        default=config.default,
        fallbacks=config.fallbacks,
        allowed=config.allowed,
        source=f"detected:ollama@{url}",
    )
