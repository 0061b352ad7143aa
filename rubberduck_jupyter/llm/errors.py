"""Typed provider failures, each mapped to a protocol error code and a message to act on."""

from __future__ import annotations

import re

from ..protocol import ErrorCode


class ModelConfigError(ValueError):
    """A model configuration that cannot work; the message names the entry and the fix."""


class LLMError(Exception):
    """A model call that failed in a way the user should hear about."""

    def __init__(self, code: ErrorCode, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


def no_model_error() -> LLMError:
    return LLMError(
        ErrorCode.NO_MODEL,
        "No model is configured, so RubberDuck cannot answer yet. Set RUBBERDUCK_MODEL "
        "(for example `openai/gpt-4o-mini`, `anthropic/claude-3-5-haiku-latest` or "
        "`ollama/llama3.1`) and the provider's key variable (OPENAI_API_KEY, "
        "ANTHROPIC_API_KEY, ...) before starting JupyterLab, or set "
        "`c.RubberDuckApp.model` in jupyter_server_config.py. For an OpenAI-compatible "
        "server add RUBBERDUCK_API_BASE. Run `jupyter rubberduck doctor` to check.",
    )


# A key this short is a placeholder (`x`, `none`, `EMPTY`, `sk-1234` for a local server), and
# replacing it wherever it occurs would cut words apart ("OpenAIException" has an "x" in it).
SHORT_KEY_CHARS = 8
_TOKEN_CHARS = r"A-Za-z0-9_\-."


def hide_key(text: str, key: str | None) -> str:
    """`text` with the model's key replaced: everywhere when the key is 8 characters or
    more, only where it stands alone (not inside a word or another token) when shorter."""
    if not key or key not in text:
        return text
    if len(key) >= SHORT_KEY_CHARS:
        return text.replace(key, "[redacted]")
    alone = re.compile(rf"(?<![{_TOKEN_CHARS}]){re.escape(key)}(?![{_TOKEN_CHARS}])")
    return alone.sub("[redacted]", text)


class ToolsUnsupported(LLMError):
    """The model cannot be offered tools: litellm's model map says so for a model it knows,
    or the provider refused the request's `tools`. Engines that need tools answer another
    way (the agent falls back to the generation engine)."""

    def __init__(self, model_name: str, detail: str = "") -> None:
        why = f" ({detail})" if detail else ""
        super().__init__(
            ErrorCode.PROVIDER_ERROR,
            f"{model_name} cannot call tools{why}. Choose a model that supports tool "
            "(function) calling for /agent.",
        )
        self.model_name = model_name
        self.detail = detail
