"""Redacts secrets from anything that is about to leave for a provider."""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Mapping

REDACTED = "[REDACTED]"

# Shapes of well-known credentials; generic assignments (`api_key = "..."`) are caught below.
_TOKEN_PATTERNS = [
    r"sk-[A-Za-z0-9_\-]{16,}",  # OpenAI, Anthropic (sk-ant-...), many proxies
    r"AKIA[0-9A-Z]{16}",  # AWS access key id
    r"gh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
    r"xox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack
    r"AIza[0-9A-Za-z_\-]{35}",  # Google API keys
    r"hf_[A-Za-z0-9]{30,}",  # Hugging Face
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
]
_TOKEN_RE = re.compile("|".join(f"(?:{p})" for p in _TOKEN_PATTERNS))
_ASSIGNMENT_RE = re.compile(
    r"(?i)\b([A-Za-z0-9_]*(?:api[_-]?key|secret|token|password|passwd)[A-Za-z0-9_]*)"
    r"(\s*[:=]\s*)([\"']?)([^\s\"']{6,})\3"
)
_BEARER_RE = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._\-~+/]{12,}=*")
# postgres://user:password@host/db and the like: the password goes, the rest stays.
_URL_CREDENTIALS_RE = re.compile(r"([a-z][a-z0-9+.\-]*://[^\s:/@]+:)([^\s@/]+)(@)", re.IGNORECASE)
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
    or by shape (a long, high-entropy token under any name)."""
    environ = os.environ if env is None else env
    values = {
        value
        for name, value in environ.items()
        if (_SECRET_ENV_NAME.search(name) and len(value) >= _MIN_ENV_SECRET_LEN)
        or looks_like_token(value)
    }
    # Longest first so a value that contains another is replaced whole.
    return sorted(values, key=len, reverse=True)


def redact(text: str, extra_secrets: list[str] | None = None) -> str:
    for secret in extra_secrets if extra_secrets is not None else secret_env_values():
        text = text.replace(secret, REDACTED)
    text = _TOKEN_RE.sub(REDACTED, text)
    text = _BEARER_RE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _URL_CREDENTIALS_RE.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    return _ASSIGNMENT_RE.sub(
        lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{REDACTED}{m.group(3)}", text
    )
