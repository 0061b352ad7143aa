"""A fake OpenAI-compatible provider on 127.0.0.1 (chat completions and embeddings), for
tests and local dev.

Three ways to run it::

    python -m rubberduck_jupyter.testing.fake_llm --port 9999 [--script replies.json] [--fault drop]
    python -m rubberduck_jupyter.testing.fake_llm --demo --port 9999   # canned, labelled

    server = FakeLLM(port=0)            # from async code
    await server.start(); server.base_url; await server.stop()

    with FakeLLMThread() as fake:       # from sync code: its own event loop in a daemon thread
        fake.set_replies(["Hello!"]); fake.base_url; fake.requests

Replies: each completion takes the next scripted reply, else echoes the last user message
(or, with ``demo=True`` / ``--demo``, gives a labelled canned answer: see `demo_reply`).
A scripted reply may call tools instead of (or after) text, streamed in pieces as OpenAI
does: see `fake_replies`.
Embeddings (``POST /v1/embeddings``, OpenAI's shape): a hashed bag of words per input,
L2-normalised, ``embedding_dim`` wide (64; a request's ``dimensions`` overrides it), so texts
sharing words are near each other. The same faults apply (error codes, drop, stall,
slow_first_byte, malformed).

Faults (``FAULT_MODES``) come, first match wins, from the queue filled by ``add_faults()``
(one per request), from a ``fault-<MODE>`` part of the request's model name, or from the
server-wide ``fault`` setting. Error faults (429, 500, 503, 401, context_window) leave the
reply queue alone; the others send (part of) the next reply.

Text completions (``POST /v1/completions``, OpenAI's legacy shape, what FIM clients send:
``prompt`` and ``suffix``): the next scripted reply's text, else `FAKE_COMPLETION`,
streamed as ``text_completion`` chunks (``choices[0].text``) with the same faults.

HTTP control API: ``POST /_fake/script`` ``{"replies": [...]}``, ``POST /_fake/faults``
``{"faults": [...]}``, ``GET /_fake/requests``, ``POST /_fake/reset``,
``GET``/``POST /_fake/settings`` for the numeric settings, ``embedding_dim`` and the
server-wide fault, and ``GET /_fake/streams``: ``{"open": n, "requests": [...]}``, the
responses whose connection is open right now (a client that cancels makes it drop) and
every request body so far, each with ``_fake.opened_at``/``closed_at`` (time.monotonic(),
comparable between processes on one machine) and ``_fake.open``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import hashlib
import json
import logging
import re
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import tornado.httpserver
import tornado.httputil
import tornado.iostream
import tornado.netutil
import tornado.web
from tornado.http1connection import HTTP1Connection

from .embedding import DEFAULT_DIM, hashed_bag_of_words
from .fake_replies import (
    Reply,
    assistant_message,
    finish_reason,
    parse_replies,
    reply_json,
    reply_text,
    stream_deltas,
)

log = logging.getLogger(__name__)

ERROR_FAULTS = ("429", "500", "503", "401", "context_window")
STREAM_FAULTS = ("slow_first_byte", "stall", "drop", "malformed", "no_done")
FAULT_MODES = ERROR_FAULTS + STREAM_FAULTS

DEFAULT_MODEL = "fake"
# The unscripted answer of /v1/completions: a line that is valid Python after most prefixes.
FAKE_COMPLETION = "pass  # fake completion"
SETTINGS = ("chunk_delay", "slow_first_byte_seconds", "stall_seconds", "retry_after_seconds")

_MODEL_FAULT = re.compile(r"fault-([A-Za-z0-9_]+)")
_PIECE = re.compile(r"\S+\s*|\s+")
# Partial-stream faults stop after this many content pieces, so the client has seen some text
# but (for replies longer than this) not all of it.
_PARTIAL_PIECES = 2
# Tornado's default backlog (128) drops connections when a benchmark opens hundreds at once.
_BACKLOG = 1024

_ERROR_BODIES: dict[str, tuple[int, str, str, str | None]] = {
    "429": (
        429,
        "Rate limit reached for requests (fake-llm fault 429).",
        "rate_limit_error",
        "rate_limit_exceeded",
    ),
    "500": (
        500,
        "The server had an error while processing your request (fake-llm fault 500).",
        "server_error",
        None,
    ),
    "503": (
        503,
        "The engine is currently overloaded, please try again later (fake-llm fault 503).",
        "server_error",
        "service_unavailable",
    ),
    "401": (
        401,
        "Incorrect API key provided (fake-llm fault 401).",
        "invalid_request_error",
        "invalid_api_key",
    ),
    # OpenAI's answer to a prompt longer than the model's window.
    "context_window": (
        400,
        "This model's maximum context length is 8192 tokens. However, your messages "
        "resulted in 9000 tokens (fake-llm fault context_window).",
        "invalid_request_error",
        "context_length_exceeded",
    ),
}


class UnknownFaultError(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown fault {name!r}; valid faults are: {', '.join(FAULT_MODES)}")
        self.name = name


def check_fault(name: str) -> str:
    if name not in FAULT_MODES:
        raise UnknownFaultError(name)
    return name


def authorization_digest(value: str | None) -> str | None:
    """What `requests` records of an Authorization header: a digest a test can compare."""
    return _digest(value)


def _digest(value: str | None) -> str | None:
    if value is None:
        return None
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def split_reply(text: str) -> list[str]:
    """Word-sized pieces that join back to exactly `text`."""
    return _PIECE.findall(text)


def count_tokens(text: str) -> int:
    # Words are close enough to tokens for usage numbers a test can predict.
    return len(text.split())


def message_text(message: object) -> str:
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        # Multi-part content: only the text parts carry words.
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def echo_reply(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return f"Echo: {message_text(message)}"
    return "Echo: "


# -- demo mode: labelled canned answers, for a demo without keys (binder/) ----------------

DEMO_LABEL = "*(demo model: canned answers, no real AI)*"
# Visible streaming that still keeps a demo notebook quick: ~4 words per chunk, 30 ms apart.
DEMO_CHUNK_DELAY = 0.03
DEMO_WORDS_PER_CHUNK = 4
# The longest piece of the user's question a default demo answer quotes.
_DEMO_QUOTE_CHARS = 200

# The engines' system prompts (engines/*.py, context/memory.py) say what a call is for.
_CLASSIFY = "Pick the assistant mode"
_SUMMARY = "You keep the memory of a conversation"
_REVIEWING = "You are reviewing code"
_ARCHITECTURE = "analysing the architecture"
_DEBUGGING = "You are debugging"
_PLAN_CODE = "Before writing code, plan it"
_WRITE_CODE = "Write the code the plan describes"
_STEPS = "Break the user's goal into"
_STEP = "multi-step task"

# A traceback's last line: `ZeroDivisionError: division by zero`, `pkg.mod.QuotaError: ...`
# or a bare `KeyboardInterrupt` (not `raise ValueError(...)` quoted from the source).
_EXCEPTION_LINE = re.compile(
    r"^[ \t]*(?:[A-Za-z_][\w.]*\.)?([A-Z]\w*(?:Error|Exception|Exit|Interrupt))"
    r"(?::[ \t]*(.*))?$",
    re.M,
)
_EXCEPTION_NAME = re.compile(r"\b([A-Z]\w*(?:Error|Exception))\b")
_COMPLEX_STEP = re.compile(r"\bStep \d of 5, (\w+)\.")
_DEF_NAME = re.compile(r"^\s*def\s+([A-Za-z_]\w*)\s*\(", re.M)
_COLUMN = re.compile(r"""\[\s*["']([A-Za-z_]\w*)["']\s*\]""")
_VARIABLE_LINE = re.compile(r"^- ([A-Za-z_]\w*): ([^\n—]+?)(?: — ([^\n]*))?$", re.M)
# A variable attached with {name} or @name (context/mentions.py), with its shape and columns.
_ATTACHED = re.compile(
    r"^\[@[\w:]+\] Kernel variable `([A-Za-z_]\w*)`: ([^\n]+)"
    r"((?:\n(?:shape|columns|dtype): [^\n]*)*)",
    re.M,
)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_REVIEW_WORDS = re.compile(r"^\s*/review\b|\breview\b|\bcritique\b|\bimprove\b", re.I)
_FIX_WORDS = re.compile(
    r"^\s*/fix\b|\btraceback\b|\bexception\b|\berror\b|\bfix\b|\bfails?\b|\bbug\b", re.I
)
_GENERATE_WORDS = re.compile(
    r"^\s*/generate\b|\b(?:write|generate|create|implement)\b.{0,40}"
    r"\b(?:function|code|class|script|cell)\b",
    re.I | re.S,
)
_INDEX_WORDS = re.compile(r"\b(?:index(?:ed|ing)?|search(?:es|ing)?|bm25|embedd\w*)\b", re.I)


def _messages_text(messages: list[Any], role: str) -> str:
    return "\n".join(
        message_text(m) for m in messages if isinstance(m, dict) and m.get("role") == role
    )


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message)
    return ""


def _question_of(user_text: str) -> str:
    """The user's own words: RubberDuck puts the notebook context first, then
    "Question:" (context/prompt.py)."""
    _, sep, question = user_text.rpartition("\nQuestion:\n")
    return (question if sep else user_text).strip()


def _exception_in(text: str) -> tuple[str, str] | None:
    """(exception name, its message) from a traceback's last line, else the first
    exception name anywhere in the text."""
    text = _ANSI.sub("", text)
    found = list(_EXCEPTION_LINE.finditer(text))
    if found:
        return found[-1].group(1), (found[-1].group(2) or "").strip()
    named = _EXCEPTION_NAME.search(text)
    return (named.group(1), "") if named else None


def demo_kind(messages: list[Any]) -> str:
    """What a request asks for, as the demo model tells it: "classify", "summary",
    "review", "architecture", "fix", "plan", "generate", "steps", "step", "index" or
    "answer". The engine's system prompt decides first, then words of the question."""
    system = _messages_text(messages, "system")
    question = _question_of(_last_user_text(messages))
    by_prompt = (
        (_CLASSIFY, "classify"),
        (_SUMMARY, "summary"),
        (_REVIEWING, "review"),
        (_ARCHITECTURE, "architecture"),
        (_DEBUGGING, "fix"),
        (_PLAN_CODE, "plan"),
        (_WRITE_CODE, "generate"),
        (_STEPS, "steps"),
        (_STEP, "step"),
    )
    for marker, kind in by_prompt:
        if marker in system:
            return kind
    # The complex engine's steps (engines/complex.py) say which step they are.
    step = _COMPLEX_STEP.search(question)
    if step:
        return "generate" if step.group(1) in ("implementation", "tests") else "plan"
    return _kind_by_words(question)


def _kind_by_words(question: str) -> str:
    if _REVIEW_WORDS.search(question):
        return "review"
    if _FIX_WORDS.search(question) or _exception_in(question):
        return "fix"
    if _GENERATE_WORDS.search(question):
        return "generate"
    if _INDEX_WORDS.search(question):
        return "index"
    return "answer"


def demo_reply(messages: list[Any]) -> str:
    """A canned answer chosen by what the request asks (see `demo_kind`), starting with
    `DEMO_LABEL`; deterministic. Calls a person never reads (routing, memory summaries)
    get the plain shape the engine parses."""
    kind = demo_kind(messages)
    user_text = _last_user_text(messages)
    question = _question_of(user_text)
    if kind == "classify":
        mode = {
            "review": "analysis",
            "fix": "problem_solver",
            "generate": "generation",
        }.get(_kind_by_words(question), "simple")
        return json.dumps({"mode": mode, "reason": "demo model: picked by keywords"})
    if kind == "summary":
        return "The user is trying RubberDuck's demo model (canned answers, no real AI)."
    body = _DEMO_ANSWERS[kind](question, user_text)
    return f"{DEMO_LABEL}\n\n{body}"


_MUTABLE_DEFAULT = re.compile(r"def\s+\w+\s*\([^)]*=\s*(?:\[\s*\]|\{\s*\}|list\(\)|dict\(\))")


def _demo_review(question: str, user_text: str) -> str:
    code = user_text
    name = _first(_DEF_NAME, code, "average_price")
    column = _first(_COLUMN, code, "price")
    points: list[str] = []
    fixes: list[str] = []
    rows = "range(len(" in code or ".iterrows(" in code
    divides = "/ len(" in code or "/len(" in code
    if rows:
        points.append(
            "- **the loop** walks the rows one by one: slow on a large frame, and "
            "`frame[col][i]` looks rows up by *label*, so it breaks on a filtered frame "
            "whose index is not 0..n-1. Use one vectorised column operation."
        )
    if divides:
        points.append(
            "- **the division** by `len(...)` raises `ZeroDivisionError` on an empty "
            "frame: return NaN (or raise a clear error) when there are no rows."
        )
    if rows or divides:
        fixes.append(
            f"def {name}(frame):\n"
            f'    """Mean of the {column!r} column; NaN for an empty frame."""\n'
            "    if frame.empty:\n"
            '        return float("nan")\n'
            f'    return float(frame["{column}"].mean())\n'
        )
    if _MUTABLE_DEFAULT.search(code):
        points.append(
            "- **a mutable default argument** is created once and shared by every call: "
            "default to `None` and make a new one inside."
        )
        fixes.append(
            f"def {name}(items=None):\n"
            '    """`items` is a new list on each call, not one list shared by all."""\n'
            "    if items is None:\n"
            "        items = []\n"
            "    return items\n"
        )
    if "except:" in code:
        points.append(
            "- **bare `except:`** hides every error, KeyboardInterrupt included: catch "
            "the exception you expect."
        )
    if "== None" in code or "!= None" in code:
        points.append("- **`== None`**: compare with `is None`.")
    if not points:
        points.append(
            "- **names and docstrings**: say what the code returns and for which input; "
            "a real model would read the code line by line."
        )
    points.append(
        "- **a quick test**: check one normal case and one empty case, so the edge case "
        "stays fixed."
    )
    fix = fixes[0] if fixes else _GENERIC_REVIEW_FIX
    return (
        "**Review** (the demo model only spots a few common patterns):\n\n"
        + "\n".join(points)
        + "\n\nAn improved version:\n\n```python\n"
        + fix
        + "```"
    )


_GENERIC_REVIEW_FIX = (
    "def checked_mean(values):\n"
    '    """Mean of `values`; NaN when there are none (the edge case to handle)."""\n'
    "    values = list(values)\n"
    '    return sum(values) / len(values) if values else float("nan")\n'
)


# exception name -> (why it happens, a self-contained fix)
_DEMO_FIXES: dict[str, tuple[str, str]] = {
    "ZeroDivisionError": (
        "a division whose divisor is 0: here, most likely a count or `len(...)` of an "
        "empty selection.",
        "def {name}(frame):\n"
        '    """Mean of the {column!r} column; NaN for an empty frame."""\n'
        "    if frame.empty:\n"
        '        return float("nan")\n'
        '    return float(frame["{column}"].mean())\n',
    ),
    "KeyError": (
        "a key (a dict key or a DataFrame column) that is not there: check its spelling "
        "and case against the keys that exist.",
        "def get_column(frame, name):\n"
        '    """The column `name`, matched without regard to case."""\n'
        "    matches = [c for c in frame.columns if str(c).lower() == name.lower()]\n"
        "    if not matches:\n"
        '        raise KeyError(f"{{name!r}} is not a column; columns: {{list(frame.columns)}}")\n'
        "    return frame[matches[0]]\n",
    ),
    "NameError": (
        "a name used before any cell defined it (or a typo): run the cell that defines it "
        "first, or fix the spelling.",
        "def {name}(frame):\n"
        '    """Defined before it is used: run this cell first."""\n'
        '    return float(frame["{column}"].mean())\n',
    ),
    "TypeError": (
        "an operation given a value of the wrong type (text where a number was expected, "
        "or a wrong number of arguments).",
        "def to_number(value):\n"
        '    """A float from a number or numeric text; NaN otherwise."""\n'
        "    try:\n"
        "        return float(value)\n"
        "    except (TypeError, ValueError):\n"
        '        return float("nan")\n',
    ),
    "IndexError": (
        "a position past the end of a sequence, often an off-by-one or an empty list.",
        "def last_or_none(items):\n"
        '    """The last item, or None when there is none."""\n'
        "    return items[-1] if items else None\n",
    ),
    "AttributeError": (
        "an attribute or method the object does not have: often a None where an object "
        "was expected, or a method of another type.",
        "def safe_strip(text):\n"
        '    """Stripped text; an empty string for None."""\n'
        '    return text.strip() if text is not None else ""\n',
    ),
    "ValueError": (
        "a value of the right type but an unusable content (text that is not a number, "
        "shapes that do not match).",
        "def parse_int(text, default=0):\n"
        '    """An int from text, `default` when the text is not a number."""\n'
        "    try:\n"
        "        return int(text)\n"
        "    except ValueError:\n"
        "        return default\n",
    ),
}
_GENERIC_FIX = (
    "the line named last in the traceback; read the message after the exception name.",
    "def checked(value):\n"
    '    """Fail early, with a message that says what was wrong."""\n'
    "    if value is None:\n"
    '        raise ValueError("value is missing")\n'
    "    return value\n",
)


def _demo_fix(question: str, user_text: str) -> str:
    found = _exception_in(user_text)
    name = _first(_DEF_NAME, user_text, "average_price")
    column = _first(_COLUMN, user_text, "price")
    if found is None:
        return (
            "**Root cause**: I see no traceback in what was sent. Run the failing cell, "
            "then `%duck fix`, so the last exception goes along.\n\n"
            "**Fix**\n\n```python\n" + _GENERIC_FIX[1] + "```"
        )
    exception, message = found
    why, code = _DEMO_FIXES.get(exception, _GENERIC_FIX)
    said = f"`{exception}: {message}`" if message else f"`{exception}`"
    return (
        f"**Root cause**: the cell raised {said}. A **{exception}** means {why}\n\n"
        "**Fix**\n\n```python\n"
        + code.format(name=name, column=column)
        + "```\n\n**Why this works**: the failing case is handled before it can raise."
    )


def _demo_generate(question: str, user_text: str) -> str:
    return (
        "```python\n"
        "import pandas as pd\n\n\n"
        "def summarize(frame: pd.DataFrame) -> pd.DataFrame:\n"
        '    """Count, mean, min and max of every numeric column, one row per column."""\n'
        '    numeric = frame.select_dtypes("number")\n'
        '    return numeric.agg(["count", "mean", "min", "max"]).T\n'
        "```\n\n"
        "Call `summarize(df)`. (The demo model writes this same function whatever you ask.)"
    )


def _demo_plan(question: str, user_text: str) -> str:
    return (
        "1. Read the input and check its columns.\n"
        "2. Write one small function per step, each with a docstring.\n"
        "3. Handle the empty and missing-value cases.\n"
        "4. Test the function on a tiny DataFrame."
    )


def _demo_index(question: str, user_text: str) -> str:
    return (
        "The project index holds your notebooks and files in chunks; `%duck search QUERY` "
        "shows what it finds. Without an embedding model (as on Binder) it matches words "
        "(BM25) rather than meaning, and says so."
    )


def _demo_architecture(question: str, user_text: str) -> str:
    return (
        "**Structure**: a few modules, each with one job.\n\n"
        "- **the largest function**: split it where its comments start new steps.\n"
        "- **tests**: start with the module that the others import."
    )


def _described_variables(user_text: str) -> list[str]:
    """The kernel variables a request describes, each as "`name` (what it is)": attached
    ones ({name}, @name) first, then the summary of the kernel's variables."""
    out: dict[str, str] = {}
    for m in _ATTACHED.finditer(user_text):
        details = [m.group(2).strip(), *m.group(3).strip().splitlines()]
        out.setdefault(m.group(1), "; ".join(details))
    listed = user_text.partition("Kernel variables:\n")[2]
    for m in _VARIABLE_LINE.finditer(listed):
        summary = f", {m.group(3).strip()}" if m.group(3) else ""
        out.setdefault(m.group(1), m.group(2).strip() + summary)
    return [f"`{name}` ({what})" for name, what in out.items()]


def _demo_answer(question: str, user_text: str) -> str:
    if len(question) > _DEMO_QUOTE_CHARS:
        question = question[:_DEMO_QUOTE_CHARS] + "…"
    quoted = "\n".join(f"> {line}" for line in question.splitlines() or [""])
    variables = _described_variables(user_text)
    seen = (
        "It was sent a description of " + ", ".join(variables[:3]) + ", so a real model "
        "could use your names and shapes."
        if variables
        else "A real model would answer it from your notebook and project."
    )
    return f"You asked:\n\n{quoted}\n\n{seen}"


def _first(pattern: re.Pattern[str], text: str, default: str) -> str:
    match = pattern.search(text)
    return match.group(1) if match else default


_DEMO_ANSWERS = {
    "review": _demo_review,
    "architecture": _demo_architecture,
    "fix": _demo_fix,
    "plan": _demo_plan,
    "steps": _demo_plan,
    "step": _demo_answer,
    "generate": _demo_generate,
    "index": _demo_index,
    "answer": _demo_answer,
}


def split_demo_reply(text: str, words: int = DEMO_WORDS_PER_CHUNK) -> list[str]:
    """Pieces of a few words each that join back to exactly `text`."""
    pieces = split_reply(text)
    return ["".join(pieces[i : i + words]) for i in range(0, len(pieces), words)]


def load_script(path: str | Path) -> tuple[list[Reply], list[str]]:
    """Replies and faults from a JSON file: a list of replies, or {"replies": [...],
    "faults": [...]} with both keys optional."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, list):
        data = {"replies": data}
    if not isinstance(data, dict):
        raise ValueError("a script is a JSON list of replies or an object with 'replies'")
    unknown = set(data) - {"replies", "faults"}
    if unknown:
        # A misspelt key would otherwise serve echoes and hide the mistake.
        raise ValueError(f"unknown keys in script: {', '.join(sorted(unknown))}")
    replies = parse_replies(data.get("replies", []))
    faults = _string_list(data.get("faults", []), "faults")
    for fault in faults:
        check_fault(fault)
    return replies, faults


def _string_list(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"'{what}' must be a list of strings")
    return list(value)


def _error_body(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class FakeLLM:
    """The fake provider, run on the current asyncio loop.

    The script, fault queue and request log sit behind a lock held only for list updates, so
    other threads (see FakeLLMThread) may call the control methods while streams run.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        replies: Iterable[Reply] = (),
        fault: str | None = None,
        chunk_delay: float = 0.0,
        slow_first_byte_seconds: float = 5.0,
        stall_seconds: float = 30.0,
        retry_after_seconds: float = 1.0,
        embedding_dim: int = DEFAULT_DIM,
        demo: bool = False,
    ) -> None:
        """`demo`: unscripted completions get `demo_reply`'s labelled canned answers
        instead of echoes, streamed a few words per chunk (`split_demo_reply`)."""
        self.host = host
        self.demo = demo
        self.embedding_dim = embedding_dim
        self.port = port
        self.chunk_delay = chunk_delay
        self.slow_first_byte_seconds = slow_first_byte_seconds
        self.stall_seconds = stall_seconds
        self.retry_after_seconds = retry_after_seconds
        self._fault: str | None = None
        self.fault = fault
        self._lock = threading.Lock()
        self._replies: deque[Reply] = deque(parse_replies(list(replies)))
        self._faults: deque[str] = deque()
        self._requests: list[dict[str, Any]] = []
        self._models: dict[str, None] = {DEFAULT_MODEL: None}
        self._server: tornado.httpserver.HTTPServer | None = None
        self._active: set[_CompletionsHandler] = set()
        self._stopping = False

    # -- settings and control -------------------------------------------------------------

    @property
    def fault(self) -> str | None:
        """A fault applied to every request that the queue and model name leave unfaulted."""
        return self._fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        self._fault = check_fault(value) if value else None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake LLM is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def set_replies(self, replies: Iterable[Reply | dict[str, Any]]) -> None:
        """Strings, `ToolReply`s, or their script form ({"content", "tool_calls"})."""
        parsed = parse_replies(list(replies))
        with self._lock:
            self._replies = deque(parsed)

    def add_faults(self, faults: Iterable[str]) -> None:
        # Validate all first so a typo does not leave half the faults queued.
        faults = [check_fault(fault) for fault in faults]
        with self._lock:
            self._faults.extend(faults)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Completion and embedding request bodies in arrival order, each with a "_fake" entry
        holding the path, the fault applied, and whether an Authorization header came and the
        first 16 hex digits of its SHA-256 (see `authorization_digest`; never its value)."""
        with self._lock:
            return copy.deepcopy(self._requests)

    @property
    def models(self) -> list[str]:
        with self._lock:
            return list(self._models)

    @property
    def pending_replies(self) -> list[str | dict[str, Any]]:
        with self._lock:
            return [reply_json(reply) for reply in self._replies]

    @property
    def active_streams(self) -> int:
        """Completions whose connection is still open: shows whether a client hung up."""
        return len(self._active)

    @property
    def pending_faults(self) -> list[str]:
        with self._lock:
            return list(self._faults)

    def reset(self) -> None:
        """Forget the script, queued faults, requests and models seen; settings stay."""
        with self._lock:
            self._replies.clear()
            self._faults.clear()
            self._requests.clear()
            self._models = {DEFAULT_MODEL: None}

    def settings(self) -> dict[str, Any]:
        values: dict[str, Any] = {name: getattr(self, name) for name in SETTINGS}
        values["fault"] = self.fault
        values["embedding_dim"] = self.embedding_dim
        return values

    def update_settings(self, values: dict[str, Any]) -> None:
        unknown = set(values) - {*SETTINGS, "fault", "embedding_dim"}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        for name in SETTINGS:
            if name in values:
                value = values[name]
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"{name} must be a number >= 0")
        if "embedding_dim" in values:
            dim = values["embedding_dim"]
            if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= 8192:
                raise ValueError("embedding_dim must be an integer 1..8192")
        if "fault" in values:
            fault = values["fault"]
            if fault is not None and not isinstance(fault, str):
                raise ValueError("fault must be a string or null")
            self.fault = fault
        for name in SETTINGS:
            if name in values:
                setattr(self, name, float(values[name]))
        if "embedding_dim" in values:
            self.embedding_dim = int(values["embedding_dim"])

    # -- what the handlers use ------------------------------------------------------------

    def _take_fault(self, model: str) -> str | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
        match = _MODEL_FAULT.search(model)
        if match:
            return check_fault(match.group(1))
        return self._fault

    def _take_reply(self, messages: list[Any]) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        return demo_reply(messages) if self.demo else echo_reply(messages)

    def _record(self, body: dict[str, Any], model: str | None) -> None:
        with self._lock:
            self._requests.append(body)
            if model:
                self._models[model] = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the fake LLM is already running")
        sockets = tornado.netutil.bind_sockets(self.port, address=self.host, backlog=_BACKLOG)
        self.port = int(sockets[0].getsockname()[1])
        self._stopping = False
        self._server = tornado.httpserver.HTTPServer(self._application())
        self._server.add_sockets(sockets)

    async def stop(self) -> None:
        server = self._server
        if server is None:
            return
        self._stopping = True
        server.stop()
        active = list(self._active)
        for handler in active:
            handler.wake()
        await server.close_all_connections()
        # Let woken handlers unwind so no task is left pending when the loop closes.
        tasks = [handler.task for handler in active if handler.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        self._server = None

    async def __aenter__(self) -> FakeLLM:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _application(self) -> tornado.web.Application:
        args = {"fake": self}
        return tornado.web.Application(
            [
                (r"/(?:v1/)?chat/completions", _CompletionsHandler, args),
                (r"/(?:v1/)?embeddings", _EmbeddingsHandler, args),
                (r"/(?:v1/)?completions", _TextCompletionsHandler, args),
                (r"/_fake/streams", _StreamsHandler, args),
                (r"/(?:v1/)?models", _ModelsHandler, args),
                (r"/_fake/script", _ScriptHandler, args),
                (r"/_fake/faults", _FaultsHandler, args),
                (r"/_fake/requests", _RequestsHandler, args),
                (r"/_fake/reset", _ResetHandler, args),
                (r"/_fake/settings", _SettingsHandler, args),
            ],
            default_handler_class=_NotFoundHandler,
            default_handler_args=args,
            log_function=_log_request,
        )


def _log_request(handler: tornado.web.RequestHandler) -> None:
    # Tornado's default logs 4xx/5xx as warnings; here those are the point, not news.
    request = handler.request
    log.debug(
        "%d %s %s %.1fms",
        handler.get_status(),
        request.method,
        request.uri,
        1000 * request.request_time(),
    )


class _BaseHandler(tornado.web.RequestHandler):
    fake: FakeLLM

    def initialize(self, fake: FakeLLM) -> None:
        self.fake = fake

    def send_json(self, data: object, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        # Tornado's write() refuses lists, which GET /_fake/requests returns.
        self.finish(json.dumps(data))

    def send_error_json(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
    ) -> None:
        self.send_json(_error_body(message, type_, code), status)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        message = tornado.httputil.responses.get(status_code, "Unknown error")
        self.finish(json.dumps(_error_body(message, "invalid_request_error", None)))

    def json_body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except ValueError:
            return None


class _NotFoundHandler(_BaseHandler):
    def prepare(self) -> None:
        raise tornado.web.HTTPError(404)


class _ModelsHandler(_BaseHandler):
    def get(self) -> None:
        data = [
            {"id": model, "object": "model", "created": 0, "owned_by": "fake-llm"}
            for model in self.fake.models
        ]
        self.send_json({"object": "list", "data": data})


class _ScriptHandler(_BaseHandler):
    def get(self) -> None:
        self.send_json({"replies": self.fake.pending_replies})

    def post(self) -> None:
        body = self.json_body()
        replies = body.get("replies") if isinstance(body, dict) else body
        try:
            self.fake.set_replies(parse_replies(replies))
        except ValueError as exc:
            self.send_error_json(400, str(exc))
            return
        self.send_json({"replies": self.fake.pending_replies})


class _FaultsHandler(_BaseHandler):
    def get(self) -> None:
        self.send_json({"faults": self.fake.pending_faults, "valid": list(FAULT_MODES)})

    def post(self) -> None:
        body = self.json_body()
        faults = body.get("faults") if isinstance(body, dict) else body
        try:
            self.fake.add_faults(_string_list(faults, "faults"))
        except ValueError as exc:
            self.send_error_json(400, str(exc), code="unknown_fault")
            return
        self.send_json({"faults": self.fake.pending_faults})


class _RequestsHandler(_BaseHandler):
    def get(self) -> None:
        self.send_json(self.fake.requests)


class _ResetHandler(_BaseHandler):
    def post(self) -> None:
        self.fake.reset()
        self.send_json({"ok": True})


class _SettingsHandler(_BaseHandler):
    def get(self) -> None:
        self.send_json(self.fake.settings())

    def post(self) -> None:
        body = self.json_body()
        if not isinstance(body, dict):
            self.send_error_json(400, "settings must be a JSON object")
            return
        try:
            self.fake.update_settings(body)
        except ValueError as exc:
            self.send_error_json(400, str(exc))
            return
        self.send_json(self.fake.settings())


class _CompletionsHandler(_BaseHandler):
    task: asyncio.Task[Any] | None = None

    def initialize(self, fake: FakeLLM) -> None:
        super().initialize(fake)
        # Set when the client hangs up or the server stops: cuts every sleep short.
        self._gone = asyncio.Event()
        self._events_sent = 0

    def on_connection_close(self) -> None:
        self._gone.set()
        self._mark_closed()

    def wake(self) -> None:
        self._gone.set()

    async def post(self) -> None:
        self.task = asyncio.current_task()
        self.fake._active.add(self)
        self._opened_at = time.monotonic()
        try:
            await self._complete()
        except tornado.iostream.StreamClosedError:
            pass  # The client left, or a fault cut the stream: no one is left to answer.
        finally:
            self.fake._active.discard(self)
            self._mark_closed()

    def _mark_closed(self) -> None:
        """When the response ended: the client hung up (its on_connection_close) or the
        handler finished, whichever came first."""
        record = getattr(self, "_record_body", None)
        if record is None:
            return
        with self.fake._lock:
            info = record["_fake"]
            if info.get("open"):
                info["open"] = False
                info["closed_at"] = time.monotonic()

    def _admit(
        self, body: dict[str, Any], model: str | None, error: tuple[int, str, str | None] | None
    ) -> tuple[bool, str | None]:
        """Takes the request's fault (when the body is valid), records the request, and
        answers what ends it here: a shutdown, a bad body, an error fault. Returns whether
        it was answered, and the fault for the caller to play out otherwise."""
        fake = self.fake
        fault: str | None = None
        if error is None:
            try:
                fault = fake._take_fault(model or DEFAULT_MODEL)
            except UnknownFaultError as exc:
                error = (400, str(exc), "unknown_fault")
        body["_fake"] = {
            "path": self.request.path,
            "authorization_present": "Authorization" in self.request.headers,
            # Which credential came, without keeping it: tests compare digests.
            "authorization_sha256": _digest(self.request.headers.get("Authorization")),
            "fault": fault,
            "open": True,
            "opened_at": getattr(self, "_opened_at", time.monotonic()),
            "closed_at": None,
        }
        self._record_body = body
        fake._record(body, model)
        if fake._stopping:
            self._abort()
        elif error is not None:
            self.send_error_json(error[0], error[1], code=error[2])
        elif fault in _ERROR_BODIES:
            self._send_fault_error(fault)
        else:
            return False, fault
        return True, fault

    async def _complete(self) -> None:
        fake = self.fake
        body = self.json_body()
        error: tuple[int, str, str | None] | None = None
        model: str | None = None
        messages: list[Any] = []
        if not isinstance(body, dict):
            body = {"_raw": self.request.body.decode("utf-8", "replace")}
            error = (400, "the request body must be a JSON object", None)
        else:
            model = body["model"] if isinstance(body.get("model"), str) else DEFAULT_MODEL
            if not isinstance(body.get("messages"), list):
                error = (400, "'messages' must be a list", None)
            else:
                messages = body["messages"]
        answered, fault = self._admit(body, model, error)
        if answered:
            return

        model = model or DEFAULT_MODEL
        reply = fake._take_reply(messages)
        prompt_tokens = sum(count_tokens(message_text(m)) for m in messages)
        if fault == "slow_first_byte" and not await self._pause(fake.slow_first_byte_seconds):
            return
        if body.get("stream"):
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            await self._stream(model, reply, fault, include_usage, prompt_tokens)
        else:
            await self._respond(model, reply, fault, prompt_tokens)

    def _send_fault_error(self, fault: str) -> None:
        status, message, type_, code = _ERROR_BODIES[fault]
        if fault == "429":
            self.set_header("Retry-After", f"{self.fake.retry_after_seconds:g}")
        self.send_error_json(status, message, type_, code)

    async def _pause(self, seconds: float) -> bool:
        """Sleeps, unless the client leaves or the server stops first; True if still wanted."""
        if seconds > 0 and not self._gone.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), seconds)
        return not self._gone.is_set()

    def _abort(self) -> None:
        # Closing the socket under an unfinished chunked body is what a crashed upstream
        # looks like to the client; the connection's own bookkeeping copes with a closed stream.
        connection = cast(HTTP1Connection, self.request.connection)
        connection.stream.close()

    async def _emit(self, data: str) -> None:
        if self._events_sent and not await self._pause(self.fake.chunk_delay):
            raise tornado.iostream.StreamClosedError()
        self._events_sent += 1
        self.write(f"data: {data}\n\n")
        await self.flush()

    async def _stream(
        self, model: str, reply: Reply, fault: str | None, include_usage: bool, prompt_tokens: int
    ) -> None:
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        completion_id = f"chatcmpl-fake{uuid.uuid4().hex[:24]}"
        created = int(time.time())

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
            return json.dumps(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": choices,
                    **extra,
                },
                separators=(",", ":"),  # OpenAI's own chunks are compact
            )

        def choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

        deltas = stream_deltas(reply, split_demo_reply if self.fake.demo else split_reply)
        # Leave some of the reply unsent when there is more than one piece.
        partial = max(1, min(_PARTIAL_PIECES, len(deltas) - 1))
        if fault in ("stall", "drop"):
            deltas = deltas[:partial]

        opening = {"role": "assistant", "content": "" if isinstance(reply, str) else None}
        await self._emit(chunk([choice(opening)]))
        for index, delta in enumerate(deltas):
            await self._emit(chunk([choice(delta)]))
            if fault == "malformed" and index + 1 == partial:
                await self._emit("{not json")
        if fault == "malformed" and not deltas:
            await self._emit("{not json")

        if await self._cut_short(fault):
            return
        if fault == "no_done":
            return  # The body ends cleanly, but with no finish_reason and no [DONE].
        await self._emit(chunk([choice({}, finish_reason(reply))]))
        if include_usage:
            usage = self._usage(prompt_tokens, reply_text(reply))
            await self._emit(chunk([], usage=usage))
        await self._emit("[DONE]")

    async def _cut_short(self, fault: str | None) -> bool:
        """A provider dying mid-answer: hang up at once (drop) or after going silent (stall)."""
        if fault == "stall":
            await self._pause(self.fake.stall_seconds)
        if fault in ("stall", "drop"):
            self._abort()
            return True
        return False

    async def _respond(
        self, model: str, reply: Reply, fault: str | None, prompt_tokens: int
    ) -> None:
        if await self._cut_short(fault):
            return
        if fault == "malformed":
            self.set_header("Content-Type", "application/json")
            self.finish("{not json")
            return
        self.send_json(
            {
                "id": f"chatcmpl-fake{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": assistant_message(reply),
                        "logprobs": None,
                        "finish_reason": None if fault == "no_done" else finish_reason(reply),
                    }
                ],
                "usage": self._usage(prompt_tokens, reply_text(reply)),
            }
        )

    @staticmethod
    def _usage(prompt_tokens: int, reply: str) -> dict[str, int]:
        completion_tokens = count_tokens(reply)
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }


class _TextCompletionsHandler(_CompletionsHandler):
    """POST /v1/completions: `prompt` (+ `suffix`), the chat endpoint's script and faults."""

    async def _complete(self) -> None:
        fake = self.fake
        body = self.json_body()
        error: tuple[int, str, str | None] | None = None
        model: str | None = None
        prompt = ""
        if not isinstance(body, dict):
            body = {"_raw": self.request.body.decode("utf-8", "replace")}
            error = (400, "the request body must be a JSON object", None)
        else:
            model = body["model"] if isinstance(body.get("model"), str) else DEFAULT_MODEL
            raw = body.get("prompt")
            if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], str):
                raw = raw[0]
            if not isinstance(raw, str):
                error = (400, "'prompt' must be a string", None)
            elif body.get("suffix") is not None and not isinstance(body["suffix"], str):
                error = (400, "'suffix' must be a string", None)
            else:
                prompt = raw
        answered, fault = self._admit(body, model, error)
        if answered:
            return
        model = model or DEFAULT_MODEL
        with fake._lock:
            scripted = fake._replies.popleft() if fake._replies else None
        reply = reply_text(scripted) if scripted is not None else FAKE_COMPLETION
        prompt_tokens = count_tokens(prompt) + count_tokens(body.get("suffix") or "")
        if fault == "slow_first_byte" and not await self._pause(fake.slow_first_byte_seconds):
            return
        completion_id = f"cmpl-fake{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if not body.get("stream"):
            if await self._cut_short(fault):
                return
            self.send_json(
                {
                    "id": completion_id,
                    "object": "text_completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {"index": 0, "text": reply, "logprobs": None, "finish_reason": "stop"}
                    ],
                    "usage": self._usage(prompt_tokens, reply),
                }
            )
            return
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")

        def chunk(text: str, finish: str | None = None, **extra: Any) -> str:
            choices = [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]
            return json.dumps(
                {
                    "id": completion_id,
                    "object": "text_completion",
                    "created": created,
                    "model": model,
                    "choices": [] if extra else choices,
                    **extra,
                },
                separators=(",", ":"),
            )

        pieces = split_reply(reply)
        partial = max(1, min(_PARTIAL_PIECES, len(pieces) - 1))
        if fault in ("stall", "drop"):
            pieces = pieces[:partial]
        for index, piece in enumerate(pieces):
            await self._emit(chunk(piece))
            if fault == "malformed" and index + 1 == partial:
                await self._emit("{not json")
        if await self._cut_short(fault):
            return
        if fault == "no_done":
            return
        await self._emit(chunk("", "stop"))
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            await self._emit(chunk("", usage=self._usage(prompt_tokens, reply)))
        await self._emit("[DONE]")


class _StreamsHandler(_BaseHandler):
    def get(self) -> None:
        self.send_json({"open": self.fake.active_streams, "requests": self.fake.requests})


class _EmbeddingsHandler(_CompletionsHandler):
    """POST /v1/embeddings: deterministic vectors, the completions' faults."""

    async def _complete(self) -> None:
        fake = self.fake
        body = self.json_body()
        error: tuple[int, str, str | None] | None = None
        model = DEFAULT_MODEL
        texts: list[str] = []
        if not isinstance(body, dict):
            body = {"_raw": self.request.body.decode("utf-8", "replace")}
            error = (400, "the request body must be a JSON object", None)
        else:
            model = body["model"] if isinstance(body.get("model"), str) else DEFAULT_MODEL
            raw = body.get("input")
            texts = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
            dimensions = body.get("dimensions", fake.embedding_dim)
            if not texts or not all(isinstance(t, str) and t for t in texts):
                error = (400, "'input' must be a non-empty string or list of them", None)
            elif isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
                error = (400, "'dimensions' must be a positive integer", None)
        answered, fault = self._admit(body, model, error)
        if answered:
            return
        if fault == "slow_first_byte" and not await self._pause(fake.slow_first_byte_seconds):
            return
        if await self._cut_short(fault):
            return
        if fault == "malformed":
            self.set_header("Content-Type", "application/json")
            self.finish("{not json")
            return
        dim = int(body.get("dimensions", fake.embedding_dim))
        tokens = sum(count_tokens(text) for text in texts)
        self.send_json(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": hashed_bag_of_words(t, dim)}
                    for i, t in enumerate(texts)
                ],
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


T = TypeVar("T")


class _Forward(Generic[T]):
    """An attribute of FakeLLMThread that reads and writes the wrapped FakeLLM's."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: FakeLLMThread | None, objtype: type | None = None) -> T:
        if obj is None:
            return cast(T, self)
        return cast(T, getattr(obj.fake, self.name))

    def __set__(self, obj: FakeLLMThread, value: T) -> None:
        # A plain attribute store: the loop thread reads it fresh at each use.
        setattr(obj.fake, self.name, value)


class FakeLLMThread:
    """FakeLLM on its own event loop in a daemon thread, for code that is not async.

    The control methods and settings are safe to use from any thread while it runs.
    """

    chunk_delay: _Forward[float] = _Forward()
    slow_first_byte_seconds: _Forward[float] = _Forward()
    stall_seconds: _Forward[float] = _Forward()
    retry_after_seconds: _Forward[float] = _Forward()
    embedding_dim: _Forward[int] = _Forward()
    fault: _Forward[str | None] = _Forward()

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self.fake = FakeLLM(host, port, **options)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def host(self) -> str:
        return self.fake.host

    @property
    def port(self) -> int:
        return self.fake.port

    @property
    def base_url(self) -> str:
        return self.fake.base_url

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.fake.requests

    @property
    def models(self) -> list[str]:
        return self.fake.models

    @property
    def pending_replies(self) -> list[str | dict[str, Any]]:
        return self.fake.pending_replies

    @property
    def pending_faults(self) -> list[str]:
        return self.fake.pending_faults

    @property
    def active_streams(self) -> int:
        return self.fake.active_streams

    def set_replies(self, replies: Iterable[Reply | dict[str, Any]]) -> None:
        self.fake.set_replies(replies)

    def add_faults(self, faults: Iterable[str]) -> None:
        self.fake.add_faults(faults)

    def reset(self) -> None:
        self.fake.reset()

    def settings(self) -> dict[str, Any]:
        return self.fake.settings()

    def update_settings(self, values: dict[str, Any]) -> None:
        self.fake.update_settings(values)

    def start(self, timeout: float = 30.0) -> FakeLLMThread:
        if self._thread is not None:
            raise RuntimeError("the fake LLM thread is already running")
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="fake-llm", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the fake LLM did not start in time")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout)
        self._thread = None

    def __enter__(self) -> FakeLLMThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            await self.fake.start()
        except BaseException as exc:
            self._error = exc
            return
        finally:
            self._ready.set()
        await self._stop_event.wait()
        await self.fake.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rubberduck_jupyter.testing.fake_llm",
        description="A fake OpenAI-compatible chat-completions server for tests and dev.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (0)")
    parser.add_argument(
        "--script",
        metavar="FILE.json",
        help='replies to give in order: a JSON list, or {"replies": [...], "faults": [...]}',
    )
    parser.add_argument("--fault", choices=FAULT_MODES, help="a fault applied to every request")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="labelled canned answers chosen by what each request asks, instead of echoes "
        "(a demo without keys: binder/)",
    )
    parser.add_argument(
        "--chunk-delay",
        type=float,
        default=None,
        help=f"seconds between chunks (0; {DEMO_CHUNK_DELAY:g} with --demo)",
    )
    parser.add_argument("--slow-first-byte-seconds", type=float, default=5.0)
    parser.add_argument("--stall-seconds", type=float, default=30.0)
    parser.add_argument("--retry-after-seconds", type=float, default=1.0)
    parser.add_argument("--embedding-dim", type=int, default=DEFAULT_DIM)
    return parser


async def _serve(fake: FakeLLM) -> None:
    await fake.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"fake-llm listening on {fake.base_url}", flush=True)
    await stop.wait()
    await fake.stop()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    replies: list[str] = []
    faults: list[str] = []
    if args.script:
        try:
            replies, faults = load_script(args.script)
        except (OSError, ValueError) as exc:
            parser.error(f"--script {args.script}: {exc}")
    fake = FakeLLM(
        args.host,
        args.port,
        replies=replies,
        fault=args.fault,
        chunk_delay=(
            args.chunk_delay
            if args.chunk_delay is not None
            else DEMO_CHUNK_DELAY
            if args.demo
            else 0.0
        ),
        slow_first_byte_seconds=args.slow_first_byte_seconds,
        stall_seconds=args.stall_seconds,
        retry_after_seconds=args.retry_after_seconds,
        embedding_dim=args.embedding_dim,
        demo=args.demo,
    )
    fake.add_faults(faults)
    asyncio.run(_serve(fake))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
