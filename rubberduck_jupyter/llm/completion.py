"""What one inline-completion call sends a model (LLMService.stream_completion).

Two shapes: fill-in-the-middle (`fim`: `prompt` before the cursor and `suffix` after it,
sent to a `/completions` endpoint that takes OpenAI's `suffix`), or chat `messages` for
models trained only to chat. The completion package (rubberduck_jupyter/completion/)
decides which and builds the text; this layer only sends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CompletionPrompt:
    fim: bool
    prompt: str = ""
    suffix: str = ""
    messages: tuple[dict[str, Any], ...] = ()
    max_tokens: int = 128
    stop: tuple[str, ...] = ()
