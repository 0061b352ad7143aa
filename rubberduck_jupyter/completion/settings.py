"""Which model completes code, whether it is sent fill-in-the-middle, and the bounds.

`completion_model` names a configured model_name (one of `models`, with its key and
endpoint) or, failing that, a litellm model string sent with the one-model shortcut's
`api_base`/`api_key` (`RUBBERDUCK_API_BASE`/`RUBBERDUCK_API_KEY`). None or "" turns
completions off; the status endpoint then says how to turn them on.

FIM ("fill in the middle": the text before and after the cursor, sent to a `/completions`
endpoint as `prompt` and `suffix`) is what code models are trained for and needs no chat
wrapping, so it is faster and better where it exists. `completion_fim = "auto"` uses it for
models whose name says they are FIM-trained code models (`FIM_MODEL_HINTS`); "true" and
"false" decide for every model. A server that ignores `suffix` still answers FIM requests,
but worse: set "false" for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..llm.config import ModelEntry, ModelsConfig

NO_MODEL_REASON = (
    "No completion model is configured: set c.RubberDuckApp.completion_model (a small, fast "
    "code model, e.g. 'openai/qwen2.5-coder:1.5b' on Ollama or 'codestral/codestral-latest')"
)

# Lower-case substrings of model names trained with FIM tokens whose servers take `suffix`
# on their completion endpoint (Codestral, DeepSeek Coder, StarCoder 2, Qwen2.5/3-Coder,
# CodeGemma, CodeLlama, Stable Code, Granite Code); anything else gets the chat prompt.
FIM_MODEL_HINTS = (
    "codestral",
    "deepseek-coder",
    "starcoder",
    "qwen2.5-coder",
    "qwen3-coder",
    "qwen-coder",
    "codegemma",
    "codellama",
    "code-llama",
    "stable-code",
    "granite-code",
    "-fim",
    "fim-",
)
FIM_CHOICES = ("auto", "true", "false")


@dataclass(frozen=True)
class CompletionSettings:
    entry: ModelEntry | None
    fim: bool = False
    requests_per_minute: int = 120
    max_tokens: int = 128
    context_chars: int = 6_000
    use_index: bool = True

    @property
    def enabled(self) -> bool:
        return self.entry is not None

    def status(self) -> dict[str, object]:
        """GET /rubberduck/api/complete/status: never a key or an endpoint's credentials."""
        return {
            "enabled": self.enabled,
            "model": self.entry.name if self.entry else None,
            "fim": self.fim if self.entry else False,
            "reason": None if self.entry else NO_MODEL_REASON,
        }


def is_fim_model(entry: ModelEntry, choice: str) -> bool:
    choice = choice.strip().lower()
    if choice not in FIM_CHOICES:
        raise ValueError(f"completion_fim must be one of {', '.join(FIM_CHOICES)}, not {choice!r}")
    if choice != "auto":
        return choice == "true"
    names = f"{entry.name} {entry.model}".lower()
    return any(hint in names for hint in FIM_MODEL_HINTS)


def completion_entry(
    name: str | None,
    config: ModelsConfig,
    *,
    api_base: str = "",
    api_key: str = "",
    env: Mapping[str, str] | None = None,
) -> ModelEntry | None:
    """The entry completions run on: a configured model_name, else a litellm model string
    sent with the shortcut's endpoint and key (`env` for RUBBERDUCK_API_BASE/_API_KEY)."""
    name = (name or "").strip()
    if not name:
        return None
    known = config.entries.get(name)
    if known is not None:
        return known
    env = env or {}
    base = api_base or env.get("RUBBERDUCK_API_BASE") or None
    key = api_key or env.get("RUBBERDUCK_API_KEY") or None
    model = name if "/" in name or not base else f"openai/{name}"
    return ModelEntry(
        name=name,
        model=model,
        api_base=base,
        api_key=key,
        api_key_source="c.RubberDuckApp.api_key" if key else None,
    )
