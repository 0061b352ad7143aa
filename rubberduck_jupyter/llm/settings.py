"""Which model to call and where: resolved once from traitlets and the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

MODEL_ENV = "RUBBERDUCK_MODEL"
API_BASE_ENV = "RUBBERDUCK_API_BASE"
API_KEY_ENV = "RUBBERDUCK_API_KEY"


@dataclass(frozen=True)
class ModelSettings:
    model: str | None
    api_base: str | None = None
    # Kept out of repr so a log line or traceback that prints settings never shows it.
    api_key: str | None = field(default=None, repr=False)
    request_timeout: float = 120.0
    max_output_tokens: int | None = None

    @property
    def configured(self) -> bool:
        return bool(self.model)

    def public_api_base(self) -> str | None:
        """The endpoint without any credentials embedded in the URL, safe to show."""
        if not self.api_base:
            return None
        parts = urlsplit(self.api_base)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))


def resolve_model_settings(
    *,
    model: str = "",
    api_base: str = "",
    api_key: str = "",
    request_timeout: float = 120.0,
    max_output_tokens: int = 0,
    env: Mapping[str, str] | None = None,
) -> ModelSettings:
    """Traitlet values win; the RUBBERDUCK_* variables fill what the admin left empty."""
    environ = os.environ if env is None else env
    return ModelSettings(
        model=(model or environ.get(MODEL_ENV, "")).strip() or None,
        api_base=(api_base or environ.get(API_BASE_ENV, "")).strip() or None,
        api_key=(api_key or environ.get(API_KEY_ENV, "")) or None,
        request_timeout=request_timeout,
        max_output_tokens=max_output_tokens or None,
    )
