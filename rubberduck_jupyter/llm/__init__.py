"""The only door to models: configuration, the litellm client and its typed errors."""

from .errors import LLMError
from .settings import ModelSettings, resolve_model_settings

__all__ = ["LLMError", "ModelSettings", "resolve_model_settings"]
