"""A short configured key (a placeholder such as `x` or `sk-1234`) is hidden where it stands
alone, never cut out of ordinary words: error details and prompts stay readable."""

from __future__ import annotations

import pytest

from rubberduck_jupyter.context.redact import Redactor
from rubberduck_jupyter.llm.client import FailureKind, classify
from rubberduck_jupyter.llm.errors import hide_key
from rubberduck_jupyter.llm.openai_stream import _clean


class BadRequestError(Exception):
    status_code = 400


@pytest.mark.parametrize("key", ["x", "ex", "none", "sk-1234"])
def test_short_key_is_not_cut_out_of_words(key: str) -> None:
    text = "litellm.BadRequestError: OpenAIException - nonexistent model; expected sk-12345"
    assert hide_key(text, key) == text


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("x", "key x was refused", "key [redacted] was refused"),
        ("sk-1234", "Bearer sk-1234 is invalid", "Bearer [redacted] is invalid"),
        ("sk-1234", "'sk-1234'", "'[redacted]'"),
        ("sk-1234", "sk-12345 sk-1234", "sk-12345 [redacted]"),
    ],
)
def test_short_key_standing_alone_is_hidden(key: str, text: str, expected: str) -> None:
    assert hide_key(text, key) == expected


def test_long_key_is_hidden_everywhere() -> None:
    key = "sk-live-abcdef123456"
    assert hide_key(f"prefix{key}suffix and {key}", key) == "prefix[redacted]suffix and [redacted]"


def test_provider_error_details_keep_words_with_a_one_letter_key() -> None:
    failure = classify(
        BadRequestError("OpenAIException - Error code: 400 - unexpected"),
        started=False,
        secret="x",
    )
    assert failure.kind is FailureKind.BAD_REQUEST
    assert "OpenAIException" in failure.detail
    assert "unexpected" in failure.detail
    assert "OpenAIException" in _clean("OpenAIException from 127.0.0.1", "x")


def test_prompt_redaction_ignores_short_configured_keys_inside_words() -> None:
    redactor = Redactor(lambda: ["x", "sk-1234"])
    messages = [{"role": "user", "content": "Why does OpenAIException say sk-12345 expired?"}]
    assert redactor(messages)[0]["content"] == messages[0]["content"]
