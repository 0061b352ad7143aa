"""The shapes of secrets, as linear-time regular expressions.

Two sources, one table:
- the provider key shapes of Yelp's `detect-secrets` plugins (AWS, GitHub, GitLab, Slack,
  Stripe, Twilio, SendGrid, PyPI, private keys, ...), loaded from the installed package so
  new providers arrive with its releases; the few of its patterns that can backtrack over a
  long input (an unbounded `.+` or a lazy run after a repeatable prefix) or that flag
  things that are not secrets (public IP addresses) are left out, and its keyword and
  entropy plugins are replaced by the linear versions below;
- our own rules for what it does not know or cannot do in linear time: secret-named
  assignments in any syntax (Python, JSON, dicts, `os.environ[...] = ...`, YAML, .env,
  connection strings), passwords in URLs (a `/` in them included), bearer and basic auth
  headers, the newer token prefixes (`github_pat_`, `sk-ant-`, `hf_`, Google, JWT).

Why linear matters: `redact()` runs on every message, cell, error, retrieved chunk and
history turn sent to a model. Python's `re` backtracks, so a pattern like `[a-z]+://` tried
at every position of a 20,000-character word costs n^2 steps (65 s seen). Every rule
here either starts with a literal (the engine jumps between its occurrences) or has only
bounded repetitions, so each starting position costs a bounded number of steps.
`tests/security/test_regex_linear.py` checks every pattern the package compiles, these
included, on adversarial inputs of growing size.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

# detect-secrets plugins whose patterns are not used as they are, and why.
_SKIPPED_PLUGINS = {
    "KeywordDetector": "replaced by the linear secret-assignment rule below",
    "Base64HighEntropyString": "replaced by the linear entropy scan below",
    "HexHighEntropyString": "replaced by the linear entropy scan below",
    "IPPublicDetector": "a public IP address is not a secret; redacting it hurts answers",
    "NpmDetector": "'//.+/:_authToken' backtracks on long inputs; covered by the assignment rule",
    "JwtTokenDetector": "its lazy tail backtracks after repeated 'eyJ'; see the bounded JWT rule",
    "BasicAuthDetector": "refuses '/' in the password; the URL rule below allows it",
    "OpenAIDetector": "'sk-[...]*[...]{20}T3BlbkFJ' backtracks on 'sk-sk-sk-...' (n^2); "
    "our bounded sk- rule covers every OpenAI key shape",
}
# Its keyword-in-context patterns (Cloudant, IBM, SoftLayer: `(?<=\W)...(?:key|pwd)...`)
# cost 20-46 ms each per 700 KB (no literal to jump between) for what the assignment rule
# already finds; their URL-shaped siblings are kept.
_KEYWORD_CONTEXT_PREFIX = "(?:(?<=\\W)|(?<=^))"

# Name parts that make an assignment's value a secret. "key" alone is too common in code
# (dict keys, sort keys); it counts with a qualifier (api_key, secret_key, access_key...).
_SECRET_NAME_PARTS = (
    r"api[_\-]?key|apikey|access[_\-]?key|secret|private[_\-]?key|client[_\-]?secret"
    r"|passwd|password|passphrase|pwd|token|auth[_\-]?key|credentials?|account[_\-]?key"
    r"|signing[_\-]?key|encryption[_\-]?key|session[_\-]?key|master[_\-]?key|api[_\-]?secret"
    r"|hmac[_\-]?key|iam[_\-]?key|api[_\-]?token"
)
SECRET_NAME_RE = re.compile(rf"(?i)(?:{_SECRET_NAME_PARTS})")

# name (the secret part plus a bounded identifier tail), an optional closing quote and
# bracket (`os.environ['AWS_SECRET'] = ...`, `{"password": ...}`), a separator (`=`, `:`,
# `:=`, `=>`, `,` as in setdefault("TOKEN", ...)), then a quoted or bare value.
# Matched against the lower-cased text (same offsets), since a case-insensitive
# alternation tried at every position is ~7x slower in `re`: 58 ms vs 8 ms on 725 KB.
_ASSIGNMENT = re.compile(
    rf"(?:{_SECRET_NAME_PARTS})[a-z0-9_\-.]{{0,40}}"
    r"(?:[\"'`]\s{0,3}\]?)?"
    r"\s{0,8}(?::=|=>|==|=|:|,)\s{0,8}"
    r"(?:[bruf]{0,2}(?P<q>[\"'`])(?P<quoted>[^\"'`\n]{4,512})(?P=q)"
    r"|(?P<bare>[^\s\"'`,;&)}\]<>]{4,512}))"
)
# A bare value that is code, not a secret: a call, an attribute, an index. A plain word
# (`API_KEY: s3cr3tvalue` in YAML or .env) is a value.
_CODE_VALUE = re.compile(
    r"(?<![A-Za-z0-9_])[A-Za-z_][A-Za-z0-9_]{0,80}(?:(?:\.[A-Za-z_][A-Za-z0-9_]{0,80}){1,8}[(\[]?|[(\[])"
)
_CODE_WORDS = frozenset(
    {"none", "null", "true", "false", "nil", "undefined", "required", "optional", "str", "int"}
)

# user:password@host in a URL. Anchored on "://" (a literal, so the engine skips between
# occurrences); the password may hold "/" (seen in generated passwords), bounded.
_URL_CREDENTIALS = re.compile(r"://(?P<user>[^\s:/@?#]{0,256}):(?P<secret>[^\s@]{1,256})@")
_PORT_PATH = re.compile(r"\d{1,5}(?:/|$)")

# Matched against the lower-cased text, like the assignment rule.
_HEADER = re.compile(
    r"\b(?P<scheme>bearer|basic|token)\s{1,4}(?P<secret>[A-Za-z0-9._\-~+/]{12,2048}=*)"
)

_OWN_SHAPES = (
    r"sk-(?:ant-|proj-|svcacct-|or-v1-)?[A-Za-z0-9_\-]{16,256}",  # OpenAI, Anthropic, OpenRouter
    r"github_pat_[A-Za-z0-9_]{22,255}",  # GitHub fine-grained tokens
    r"gh[pousr]_[A-Za-z0-9]{30,255}",  # GitHub classic tokens (any length)
    r"hf_[A-Za-z0-9]{30,64}",  # Hugging Face
    r"AIza[0-9A-Za-z_\-]{35}",  # Google API keys
    r"xox[abprse]-[A-Za-z0-9\-]{10,256}",  # Slack
    r"eyJ[A-Za-z0-9_\-]{8,512}\.eyJ[A-Za-z0-9_\-]{8,8192}\.[A-Za-z0-9_\-]{0,2048}",  # JWT
    r"(?:sk|rk|pk)_(?:live|test)_[0-9a-zA-Z]{16,128}",  # Stripe keys of any length
    r"glpat-[A-Za-z0-9_\-]{20,64}",  # GitLab
    r"npm_[A-Za-z0-9]{36}",  # npm
    r"dop_v1_[a-f0-9]{64}",  # DigitalOcean
    r"-----BEGIN[A-Z ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[\s\S]{0,16384}?-----END[A-Z ]{0,40}-----|[A-Za-z0-9+/=\s:,\-]{0,16384})",
)

# Candidates for the entropy check: runs of base64/hex/URL-safe characters. Greedy runs
# are linear: a run is consumed once from its start.
_TOKEN_RUN = re.compile(r"[A-Za-z0-9+/=_\-]{20,}")
# detect-secrets' defaults: 4.5 bits/char for base64 strings, 3.0 for hex.
BASE64_ENTROPY_LIMIT = 4.5
HEX_ENTROPY_LIMIT = 3.0
_HEX = frozenset("0123456789abcdefABCDEF")
_MAX_TOKEN_RUN = 512  # longer runs are data (base64 images, minified code), not keys


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int


def shannon_entropy(value: str) -> float:
    counts = Counter(value)
    size = len(value)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


def is_secret_name(name: str) -> bool:
    """A variable or key whose name says its value is a secret (`AWS_SECRET`, `db_pwd`)."""
    return SECRET_NAME_RE.search(name) is not None


# detect-secrets patterns that start with a character class or an alternation cost a step
# at every position (12 ms per 700 KB each); these literals must be in the text for them
# to match at all, and `in` finds a literal at memory speed.
_GATES = {
    "Artifactory Credentials": ("AKC", "AP"),
    "Mailchimp Access Key": ("-us",),
    "Twilio API Key": ("AC", "SK"),
    "Cloudant Credentials": ("cloudant",),
    "Slack Token": ("xox", "hooks.slack.com"),
    "SoftLayer Credentials": ("softlayer",),
}


@dataclass(frozen=True, slots=True)
class GatedPattern:
    pattern: re.Pattern[str]
    gates: tuple[str, ...] = ()

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        if self.gates and not any(gate in text for gate in self.gates):
            return iter(())
        return self.pattern.finditer(text)


def literal_gates(pattern: re.Pattern[str]) -> tuple[str, ...]:
    """Literals one of which any match must start with ("AKIA", "ghp_", "sk_"/"rk_"), read
    from the parsed pattern; () when there is none to be sure of. Each pattern then costs a
    substring search (memory speed) on text without its prefix, which is nearly all text:
    ~40 literal-prefixed patterns cost 2-3 ms each per 700 KB when run regardless."""
    if pattern.flags & re.IGNORECASE:
        return ()
    try:
        from re import _constants as c  # type: ignore[attr-defined]
        from re import _parser as parser  # type: ignore[attr-defined]

        items = list(parser.parse(pattern.pattern, pattern.flags))
    except Exception:  # a private module changed: run the pattern ungated
        return ()

    def prefixes(ops: list[tuple[object, object]], depth: int = 0) -> list[str]:
        """Every literal a match of `ops` can start with (at most 16), or [""] if unknown."""
        out = [""]
        for op, arg in ops:
            if op is c.LITERAL:
                out = [p + chr(arg) for p in out]  # type: ignore[arg-type]
                continue
            if op is c.SUBPATTERN and depth < 3:
                inner = prefixes(list(arg[-1]), depth + 1)  # type: ignore[index]
            elif op is c.BRANCH and depth < 3:
                inner = [p for b in arg[1] for p in prefixes(list(b), depth + 1)]  # type: ignore[index]
            elif op is c.IN and all(kind is c.LITERAL for kind, _ in arg):  # type: ignore[union-attr]
                inner = [chr(v) for _, v in arg]  # type: ignore[union-attr]
            else:
                break
            out = [p + q for p in out for q in inner]
            if len(out) > 16:
                return [""]
            if op is not c.IN:
                break  # what follows a group depends on where the group ended
        return out

    found = prefixes(items)
    if found and all(len(p) >= 2 for p in found):
        return tuple(sorted(set(found)))
    return ()


@cache
def provider_patterns() -> tuple[GatedPattern, ...]:
    """Our own shapes plus detect-secrets' provider patterns (imported once, lazily:
    ~80 ms, mostly `requests`, which its plugin base imports)."""
    own = [re.compile(p) for p in _OWN_SHAPES]
    patterns = [GatedPattern(p, literal_gates(p)) for p in own]
    patterns.extend(_detect_secrets_patterns())
    return tuple(patterns)


def _detect_secrets_patterns() -> list[GatedPattern]:
    try:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    except ImportError:  # an install without it still redacts with our own rules
        return []
    out: list[GatedPattern] = []
    for secret_type, plugin in get_mapping_from_secret_type_to_class().items():
        if plugin.__name__ in _SKIPPED_PLUGINS:
            continue
        for pattern in getattr(plugin, "denylist", ()):
            compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)
            if compiled.pattern.startswith(_KEYWORD_CONTEXT_PREFIX):
                continue
            gates = _GATES.get(secret_type) or literal_gates(compiled)
            out.append(GatedPattern(compiled, gates))
    return out


def _trimmed(text: str, start: int, end: int) -> Span:
    # Some detect-secrets patterns take the delimiters around a key into the match.
    while start < end and text[start] in " \t\r\n=:\"'":
        start += 1
    while end > start and text[end - 1] in " \t\r\n\"'":
        end -= 1
    return Span(start, end)


def shape_spans(text: str) -> Iterator[Span]:
    for gated in provider_patterns():
        for match in gated.finditer(text):
            if gated.pattern.groups and match.group(1):
                yield Span(match.start(1), match.end(1))
            else:
                yield _trimmed(text, match.start(), match.end())


def lowered_matches(pattern: re.Pattern[str], text: str, lowered: str) -> Iterator[re.Match[str]]:
    """`pattern` (written in lower case) over `lowered`, or case-insensitively over `text`
    when lower-casing changed the length (a few characters lower-case to two: "İ")."""
    if len(lowered) == len(text):
        return pattern.finditer(lowered)
    return re.finditer(pattern.pattern, text, re.IGNORECASE)


def assignment_spans(text: str, lowered: str) -> Iterator[Span]:
    for found in lowered_matches(_ASSIGNMENT, text, lowered):
        # Values are read from the original text: the match ran on its lower-cased copy.
        match = _OriginalCase(found, text)
        if match.group("quoted") is not None:
            value = match.group("quoted")
            if value.strip() in {"", "...", "***"} or value.startswith("[REDACTED"):
                continue
            yield Span(match.start("quoted"), match.end("quoted"))
            continue
        value = match.group("bare")
        if value.lower() in _CODE_WORDS or value.startswith("[REDACTED"):
            continue
        if _CODE_VALUE.match(value):
            continue  # `token = tokenizer(x)`, `password = os.environ[...]`, `key = cfg.key`
        if value.startswith(("os.", "self.", "env.", "config.", "settings.", "{", "$")):
            continue
        yield Span(match.start("bare"), match.end("bare"))


class _OriginalCase:
    """A match on the lower-cased text, answering groups from the original text."""

    __slots__ = ("_match", "_text")

    def __init__(self, match: re.Match[str], text: str) -> None:
        self._match = match
        self._text = text

    def group(self, name: str) -> str | None:
        if self._match.group(name) is None:
            return None
        return self._text[self._match.start(name) : self._match.end(name)]

    def start(self, name: str) -> int:
        return self._match.start(name)

    def end(self, name: str) -> int:
        return self._match.end(name)


def url_credential_spans(text: str) -> Iterator[Span]:
    for match in _URL_CREDENTIALS.finditer(text):
        secret = match.group("secret")
        if _PORT_PATH.match(secret):
            continue  # https://host:8080/a@b: a port and a path, not a password
        yield Span(match.start("secret"), match.end("secret"))


def header_spans(text: str, lowered: str) -> Iterator[Span]:
    for found in lowered_matches(_HEADER, text, lowered):
        match = _OriginalCase(found, text)
        value = match.group("secret") or ""
        # "Bearer <x>" is always a credential; after "basic"/"token", prose is common
        # ("token authentication"), so the value must look generated.
        if found.group("scheme").lower() == "bearer" or any(c.isdigit() for c in value):
            yield Span(match.start("secret"), match.end("secret"))


def entropy_spans(text: str) -> Iterator[Span]:
    """Generated tokens detect-secrets would flag by entropy: long, mixed, random-looking."""
    for match in _TOKEN_RUN.finditer(text):
        value = match.group()
        if len(value) > _MAX_TOKEN_RUN or value.startswith("[REDACTED"):
            continue
        if value.startswith(("/", "-", "=")) or value.count("/") >= 3:
            continue  # paths and rulers
        has_digit = any(c.isdigit() for c in value)
        has_alpha = any(c.isalpha() for c in value)
        if not (has_digit and has_alpha):
            continue
        if all(c in _HEX for c in value):
            # Hex strings are hashes as often as keys; only long quoted ones count.
            quoted = match.start() > 0 and text[match.start() - 1] in "\"'"
            if quoted and len(value) >= 32 and shannon_entropy(value) >= HEX_ENTROPY_LIMIT:
                yield Span(match.start(), match.end())
            continue
        if shannon_entropy(value) >= BASE64_ENTROPY_LIMIT:
            yield Span(match.start(), match.end())
