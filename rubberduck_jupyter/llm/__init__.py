"""The only door to models: configuration, limits, breakers, failover and the litellm call."""

from .config import ModelConfigError, ModelEntry, ModelsConfig, build_models_config
from .errors import LLMError

__all__ = ["LLMError", "ModelConfigError", "ModelEntry", "ModelsConfig", "build_models_config"]
