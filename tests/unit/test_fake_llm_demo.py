"""The fake provider's demo mode (binder/): labelled canned answers chosen by what each
request asks, streamed a few words per chunk; deterministic."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rubberduck_jupyter.engines.analysis import REVIEW_PROMPT
from rubberduck_jupyter.engines.generation import CODE_PROMPT
from rubberduck_jupyter.engines.problem_solver import SOLVER_PROMPT
from rubberduck_jupyter.engines.router import CLASSIFY_PROMPT, parse_classification
from rubberduck_jupyter.review.cells import extract_code_blocks
from rubberduck_jupyter.review.static import analyze_python
from rubberduck_jupyter.testing.fake_llm import (
    DEMO_LABEL,
    FakeLLMThread,
    demo_kind,
    demo_reply,
    split_demo_reply,
)

REPO = Path(__file__).resolve().parents[2]

BUGGY = (
    "def average_price(frame):\n"
    "    total = 0\n"
    "    for i in range(len(frame)):\n"
    '        total += frame["price"][i]\n'
    "    return total / len(frame)\n"
)
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/tmp/ipykernel_1/2.py", line 1, in <module>\n'
    "    average_price(df[df.price > 1000])\n"
    '  File "/tmp/ipykernel_1/1.py", line 5, in average_price\n'
    "    return total / len(frame)\n"
    "ZeroDivisionError: division by zero\n"
)


def _ask(question: str, *, system: str | None = None, context: str = "") -> list[Any]:
    user = f"{context}\n\nQuestion:\n{question}" if context else question
    messages: list[Any] = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": user}]


def _python_blocks(reply: str) -> list[str]:
    return [block.code for block in extract_code_blocks(reply)]


def test_a_review_request_gets_a_labelled_review_with_a_python_fix() -> None:
    messages = _ask(
        "Review this cell", system=REVIEW_PROMPT, context=f"Active cell:\n```python\n{BUGGY}```"
    )
    reply = demo_reply(messages)
    assert reply.startswith(DEMO_LABEL)
    assert "**Review**" in reply and "ZeroDivisionError" in reply
    (fix,) = _python_blocks(reply)
    assert "def average_price(frame):" in fix and 'frame["price"].mean()' in fix


def test_a_review_fits_its_fix_to_what_it_found() -> None:
    mutable = "def collect(item, items=[]):\n    items.append(item)\n    return items\n"
    reply = demo_reply(_ask("Review", system=REVIEW_PROMPT, context=mutable))
    assert "mutable default argument" in reply
    (fix,) = _python_blocks(reply)
    assert fix.startswith("def collect(items=None):")
    plain = demo_reply(_ask("Review", system=REVIEW_PROMPT, context="x = 1\n"))
    assert "def checked_mean" in _python_blocks(plain)[0]


def test_a_fix_request_names_the_exception_of_the_traceback() -> None:
    for messages in (
        _ask("Fix it", system=SOLVER_PROMPT, context=f"Last error:\n```\n{TRACEBACK}```"),
        _ask(f"why does this fail?\n{TRACEBACK}"),  # no engine prompt: by its words
    ):
        reply = demo_reply(messages)
        assert reply.startswith(DEMO_LABEL)
        assert "`ZeroDivisionError: division by zero`" in reply
        assert _python_blocks(reply), reply


def test_a_fix_names_other_exceptions_too() -> None:
    error = "Traceback (most recent call last):\n  ...\nKeyError: 'Price'\n"
    reply = demo_reply(_ask("fix", system=SOLVER_PROMPT, context=f"Last error:\n{error}"))
    assert "`KeyError: 'Price'`" in reply and "def get_column" in reply
    odd = "Traceback (most recent call last):\n  ...\nmypkg.errors.QuotaExceededError: over\n"
    reply = demo_reply(_ask("fix", system=SOLVER_PROMPT, context=odd))
    assert "QuotaExceededError" in reply and _python_blocks(reply)


def test_the_exception_is_the_tracebacks_last_line_not_a_raise_in_the_source() -> None:
    error = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 2, in check\n'
        '    raise ValueError("bad input")\n'
        "ValueError: bad input\n"
    )
    source = 'def check(x):\n    raise TypeError("never this one")\n'
    context = f"Active cell:\n```python\n{source}```\n\nLast error:\n```\n{error}```"
    reply = demo_reply(_ask("fix", system=SOLVER_PROMPT, context=context))
    assert "`ValueError: bad input`" in reply and "TypeError" not in reply
    bare = demo_reply(_ask("fix", system=SOLVER_PROMPT, context="Traceback:\nKeyboardInterrupt"))
    assert "`KeyboardInterrupt`" in bare


def test_a_generate_request_gets_a_python_block() -> None:
    for messages in (
        _ask("a summary table", system=CODE_PROMPT),
        _ask("Write a function that summarizes a DataFrame"),
    ):
        reply = demo_reply(messages)
        assert reply.startswith(DEMO_LABEL)
        (code,) = _python_blocks(reply)
        assert "def summarize" in code


def test_an_index_question_is_answered_briefly() -> None:
    reply = demo_reply(_ask("How does the project search work here?"))
    assert reply.startswith(DEMO_LABEL) and "BM25" in reply
    assert len(reply.split()) < 80


def test_another_question_is_quoted_with_the_variables_it_came_with() -> None:
    context = "Kernel variables:\n- df: DataFrame — 4 rows x 3 columns: city, price, qty"
    reply = demo_reply(_ask("Which column of df has the highest mean?", context=context))
    assert reply.startswith(DEMO_LABEL)
    assert "> Which column of df has the highest mean?" in reply
    assert "`df` (DataFrame, 4 rows x 3 columns: city, price, qty)" in reply
    assert "Kernel variables" not in reply  # the context is not quoted back


def test_an_attached_variable_is_named_with_its_shape_and_columns() -> None:
    context = (
        "Attached by the user with @ (each item starts with its label):\n\n"
        "[@df] Kernel variable `df`: DataFrame\nshape: (4, 3)\n"
        "columns: city (object), price (float64), qty (int64)\nsummary: RangeIndex"
    )
    reply = demo_reply(_ask("What is in {df}?", context=context))
    assert "`df` (DataFrame; shape: (4, 3); columns: city (object), price (float64)" in reply


def test_a_coloured_traceback_still_names_its_exception() -> None:
    error = "Traceback:\n\x1b[0;31mKeyError\x1b[0m: 'Price'\n"
    reply = demo_reply(_ask("Explain and fix this error: KeyError", context=error))
    assert "`KeyError: 'Price'`" in reply


def test_routing_calls_get_the_json_the_router_parses() -> None:
    for question, mode in (
        ("please review my loop", "analysis"),
        ("fix this error", "problem_solver"),
        ("write a function to load a csv", "generation"),
        ("what is a DataFrame", "simple"),
    ):
        reply = demo_reply(_ask(question, system=CLASSIFY_PROMPT))
        assert parse_classification(reply) == (mode, "demo model: picked by keywords")


def test_the_complex_engine_steps_are_told_apart() -> None:
    assert demo_kind(_ask("Goal: x\n\nStep 1 of 5, requirements. List ...")) == "plan"
    assert demo_kind(_ask("Goal: x\n\nStep 3 of 5, implementation. Write ...")) == "generate"


def test_canned_code_passes_the_checks_so_no_correction_round_runs() -> None:
    """Generated code is checked (engines/correct.py): a finding would re-prompt the demo
    model, which answers the same again, and show the user a failed correction."""
    replies = [
        demo_reply(_ask("Review", system=REVIEW_PROMPT, context=BUGGY)),
        demo_reply(_ask("Review", system=REVIEW_PROMPT, context="def f(x=[]):\n    return x\n")),
        demo_reply(_ask("Review", system=REVIEW_PROMPT, context="x = 1\n")),
        demo_reply(_ask("Fix", system=SOLVER_PROMPT, context=TRACEBACK)),
        demo_reply(_ask("Write a function", system=CODE_PROMPT)),
        *(
            demo_reply(_ask("fix", system=SOLVER_PROMPT, context=f"\n{name}: boom\n"))
            for name in (
                "KeyError",
                "NameError",
                "TypeError",
                "IndexError",
                "AttributeError",
                "ValueError",
                "OSError",
            )
        ),
    ]
    for reply in replies:
        for code in _python_blocks(reply):
            findings = analyze_python(code, filename="suggestion.py")
            errors = [f for f in findings if f.is_error]
            assert not errors, (code, errors)


def test_replies_are_deterministic_and_split_into_chunks_that_join_back() -> None:
    messages = _ask("Review this", system=REVIEW_PROMPT, context=BUGGY)
    reply = demo_reply(messages)
    assert demo_reply(messages) == reply
    pieces = split_demo_reply(reply)
    assert "".join(pieces) == reply
    assert 5 < len(pieces) < len(reply.split())


@pytest.fixture(scope="module")
def demo() -> Iterator[FakeLLMThread]:
    with FakeLLMThread(demo=True, chunk_delay=0.01) as fake:
        yield fake


def _stream(base_url: str, messages: list[Any]) -> list[str]:
    body = {"model": "rubberduck-demo", "messages": messages, "stream": True}
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=10) as response:
        data = [
            line.removeprefix("data: ")
            for line in response.iter_lines()
            if line.startswith("data: ") and line != "data: [DONE]"
        ]
    return [
        choice["delta"].get("content", "")
        for chunk in map(json.loads, data)
        for choice in chunk["choices"]
    ]


def test_the_server_streams_demo_answers_in_several_chunks(demo: FakeLLMThread) -> None:
    messages = _ask("Which column has the highest mean?")
    started = time.monotonic()
    pieces = [piece for piece in _stream(demo.base_url, messages) if piece]
    assert "".join(pieces) == demo_reply(messages)
    assert len(pieces) >= 5
    assert time.monotonic() - started >= 0.01 * (len(pieces) - 1)
    # A scripted reply still wins over the canned one.
    demo.set_replies(["scripted"])
    assert "".join(_stream(demo.base_url, messages)) == "scripted"


def test_the_cli_demo_flag_serves_labelled_answers() -> None:
    command = [sys.executable, "-m", "rubberduck_jupyter.testing.fake_llm", "--demo"]
    with subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 20)
            assert ready, "the CLI printed nothing"
            base_url = proc.stdout.readline().strip().removeprefix("fake-llm listening on ")
            settings = httpx.get(base_url.removesuffix("/v1") + "/_fake/settings").json()
            assert settings["chunk_delay"] == 0.03
            response = httpx.post(
                f"{base_url}/chat/completions", json={"messages": _ask("hello?")}, timeout=10
            )
            assert response.json()["choices"][0]["message"]["content"].startswith(DEMO_LABEL)
            os.kill(proc.pid, signal.SIGTERM)
            proc.communicate(timeout=10)
            assert proc.returncode == 0
        finally:
            if proc.poll() is None:
                proc.kill()
