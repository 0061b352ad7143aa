"""Typed provider failures, each mapped to a protocol error code and a message to act on."""

from __future__ import annotations

from ..protocol import ErrorCode


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
