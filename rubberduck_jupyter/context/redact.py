"""Redacts secrets from anything that is about to leave for a provider.

`redact()` replaces, in this order: the exact values of configured keys and of secret
environment variables, then every span that `secret_rules` finds (provider key shapes from
detect-secrets and our own, secret-named assignments, URL passwords, auth headers, high-
entropy tokens). Every rule is linear in the text's length (see secret_rules), so
redaction costs about the same per character for a line or a 100,000-character message:
measured in benchmarks/redact.py.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .secret_rules import (
    Span,
    assignment_spans,
    entropy_spans,
    header_spans,
    is_secret_name,
    shape_spans,
    url_credential_spans,
)

REDACTED = "[REDACTED]"
__all__ = [
    "REDACTED",
    "Redactor",
    "is_secret_name",
    "looks_like_token",
    "redact",
    "restore_redacted",
    "secret_env_values",
]

# An environment value is treated as a secret, whatever its variable's name, when it looks
# like a generated token: long, one "word", letters and digits mixed, high entropy.
_MIN_TOKEN_LEN = 20
_MIN_TOKEN_ENTROPY = 3.5  # bits per character; English words and paths stay well below
_SECRET_ENV_NAME = re.compile(r"(?i)(key|token|secret|password|passwd|credential)")
_MIN_ENV_SECRET_LEN = 8


def looks_like_token(value: str) -> bool:
    if len(value) < _MIN_TOKEN_LEN or any(c.isspace() for c in value):
        return False
    if value.startswith(("/", "~", ".")) or os.pathsep in value:
        return False  # paths and PATH-like lists
    if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return False
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= _MIN_TOKEN_ENTROPY


def secret_env_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables that are secrets: by name (`*KEY*`, `*TOKEN*`...),
    or by shape (a long, high-entropy token under any name).

    For the process environment the scan is kept until the environment changes: it was
    ~180 us of every request (three quarters of redacting a small completion prompt),
    and comparing the environment's raw items costs a few microseconds."""
    global _env_scan
    if env is not None:
        return _secret_values(env)
    key = _environ_key()
    scanned = _env_scan
    if scanned is not None and scanned[0] == key:
        return scanned[1]
    values = _secret_values(os.environ)
    _env_scan = (key, values)
    return values


# (the environment's raw items, their secret values): one tuple, swapped whole, so a
# reader in another thread never sees a key with another key's values.
_env_scan: tuple[tuple[Any, ...], list[str]] | None = None


def _environ_key() -> tuple[Any, ...]:
    # os.environ keeps its raw (bytes on POSIX) items in `_data`; reading them does not
    # decode every value the way os.environ.items() does. Any mapping view will do.
    raw = getattr(os.environ, "_data", os.environ)
    return tuple(raw.items())


def _secret_values(environ: Mapping[str, str]) -> list[str]:
    values = {
        value
        for name, value in environ.items()
        if (_SECRET_ENV_NAME.search(name) and len(value) >= _MIN_ENV_SECRET_LEN)
        or looks_like_token(value)
    }
    # Longest first so a value that contains another is replaced whole.
    return sorted(values, key=len, reverse=True)


def _merged(spans: Iterable[Span]) -> list[Span]:
    ordered = sorted((s for s in spans if s.end > s.start), key=lambda s: (s.start, -s.end))
    merged: list[Span] = []
    for span in ordered:
        if merged and span.start <= merged[-1].end:
            if span.end > merged[-1].end:
                merged[-1] = Span(merged[-1].start, span.end)
            continue
        merged.append(span)
    return merged


def find_secret_spans(text: str) -> list[Span]:
    """Where the rules see secrets in `text`, merged and in order."""
    lowered = text.lower()
    spans: list[Span] = [*shape_spans(text), *url_credential_spans(text)]
    spans.extend(header_spans(text, lowered))
    spans.extend(assignment_spans(text, lowered))
    spans.extend(entropy_spans(text))
    return _merged(spans)


def redact(text: str, extra_secrets: list[str] | None = None) -> str:
    for secret in extra_secrets if extra_secrets is not None else secret_env_values():
        if secret in text:
            text = text.replace(secret, REDACTED)
    spans = find_secret_spans(text)
    if not spans:
        return text
    out: list[str] = []
    position = 0
    for span in spans:
        out.append(text[position : span.start])
        out.append(REDACTED)
        position = span.end
    out.append(text[position:])
    return "".join(out)


class Redactor:
    """Takes secrets out of everything bound for a model: the configured keys (a callable,
    since an admin's config can change while the server runs), the values of secret
    environment variables, and every shape the rules know. The LLM service calls it on
    each request's messages and the API embedder on each text, so no path skips it."""

    def __init__(self, configured_secrets: Callable[[], Iterable[str]] = tuple) -> None:
        self._configured = configured_secrets

    def secrets(self) -> list[str]:
        values = set(secret_env_values()) | {s for s in self._configured() if len(s) >= 8}
        return sorted(values, key=len, reverse=True)

    def text(self, text: str) -> str:
        return redact(text, self.secrets())

    def texts(self, texts: Sequence[str]) -> list[str]:
        secrets = self.secrets()
        return [redact(t, secrets) for t in texts]

    def __call__(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each message with its text redacted and every other key kept as it is: a tool
        result keeps its `tool_call_id`, an assistant turn its `tool_calls` (whose
        arguments are redacted too: a model may quote what a tool showed it)."""
        secrets = self.secrets()
        out = []
        for m in messages:
            content = m.get("content")
            if isinstance(content, str) and content:
                m = {**m, "content": redact(content, secrets)}
            calls = m.get("tool_calls")
            if calls:
                m = {**m, "tool_calls": [_redacted_call(c, secrets) for c in calls]}
            out.append(m)
        return out


def _redacted_call(call: Any, secrets: Sequence[str]) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    arguments = function.get("arguments") if isinstance(function, dict) else None
    if not isinstance(arguments, str) or not arguments:
        return call
    clean = redact(arguments, secrets)
    if clean == arguments:
        return call
    return {**call, "function": {**function, "arguments": clean}}


def restore_redacted(original: str, proposed: str, redactor: Redactor) -> tuple[str, int]:
    """`proposed` (code a model wrote after seeing `original` redacted) with each line that
    still carries a `[REDACTED]` placeholder put back to the original line it came from,
    and how many such lines had no original (the model changed them). Applying a line with
    the placeholder would write "[REDACTED]" over the user's real value."""
    if REDACTED not in proposed:
        return proposed, 0
    secrets = redactor.secrets()
    by_redacted: dict[str, str] = {}
    for line in original.splitlines():
        stripped = line.strip()
        if stripped:
            by_redacted.setdefault(redact(stripped, secrets), stripped)
    out: list[str] = []
    unresolved = 0
    for line in proposed.splitlines(keepends=True):
        if REDACTED not in line:
            out.append(line)
            continue
        body = line.rstrip("\r\n")
        stripped = body.strip()
        source = by_redacted.get(stripped)
        if source is None:
            unresolved += 1
            out.append(line)
            continue
        indent = body[: len(body) - len(body.lstrip())]
        out.append(indent + source + line[len(body) :])
    return "".join(out), unresolved
