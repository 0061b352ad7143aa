"""rubberduck_magics' pure parts: option parsing, folding frames into an answer, the display
throttle, and `follow` over a real ChatStream reading NDJSON."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest
from rubberduck_magics.answer import ANSWER_MIME, AnswerState
from rubberduck_magics.client import ChatStream, DuckError, normalise_url
from rubberduck_magics.kernel import braced_names, names_in_code, unbrace
from rubberduck_magics.magic import parse_options
from rubberduck_magics.output import MAX_RATE, PlainOutput, RichOutput, follow


def test_options_lead_and_the_question_stays_verbatim() -> None:
    opts, rest = parse_options("--vars df,model --rows=3 --error what's --this 'quoted'")
    assert opts.vars == ["df", "model"] and opts.rows == 3 and opts.error
    assert rest == "what's --this 'quoted'"
    assert parse_options("--engine /review")[0].engine == "review"
    for bad, says in [
        ("--rows 99 x", "--rows takes a number from 0 to 50"),
        ("--vars 1x", "variable names"),
        ("--cells", "--cells needs a value"),
        ("--nope x", "Unknown option --nope"),
        ("--new=1", "--new takes no value"),
    ]:
        with pytest.raises(DuckError, match=says):
            parse_options(bad)


def test_braces_name_only_kernel_variables() -> None:
    ns = {"df": 1, "model": 2}
    text = "compare {df} with {model}, not {missing} or {{df}} or {x: 1} or f'{df!r}'"
    assert braced_names(text, ns) == ["df", "model"]
    assert unbrace(text, ["df", "model"]).startswith("compare df with model, not {missing}")
    assert "{{df}}" in unbrace(text, ["df"])
    assert names_in_code("total = df['a'].sum() + limit") == ["total", "df", "limit"]
    assert names_in_code("this is not python(") == []


def test_urls_are_checked_and_given_a_slash() -> None:
    assert normalise_url(" http://127.0.0.1:8888/user/a ") == "http://127.0.0.1:8888/user/a/"
    with pytest.raises(DuckError, match="is not a server address"):
        normalise_url("127.0.0.1:8888")


def _state() -> AnswerState:
    return AnswerState("http://127.0.0.1:8888/", "t1", "kernel-1", "Review of In [2]")


def test_frames_fold_into_the_answer_and_its_three_views() -> None:
    state = _state()
    frames = [
        {"type": "route", "engine": "analysis"},
        {"type": "step", "step": "1", "title": "Reading <the> cell", "status": "started"},
        {"type": "chunk", "step": "1", "text": "thinking"},
        {"type": "step", "step": "1", "status": "finished"},
        {"type": "chunk", "text": "Use `sum`.\n\n```python\nsum(x)\n```"},
        {"type": "citations", "citations": [{"n": 1, "path": "a.ipynb", "cell": 2}, "junk"]},
        {"type": "notice", "code": "no_index", "message": "No index."},
        {"type": "done", "finish_reason": "length", "model": "m", "usage": {"total_tokens": 5}},
    ]
    for frame in frames:
        state.apply(frame)
    data = state.to_json()
    assert data["status"] == "done" and data["engine"] == "analysis" and data["model"] == "m"
    assert data["steps"] == [
        {"step": "1", "title": "Reading <the> cell", "status": "finished", "text": "thinking"}
    ]
    assert data["citations"] == [{"n": 1, "path": "a.ipynb", "cell": 2}]
    assert [n["code"] for n in data["notices"]] == ["no_index", "finish_reason"]
    bundle = state.bundle()
    assert set(bundle) == {ANSWER_MIME, "text/markdown", "text/plain"}
    markdown = bundle["text/markdown"]
    assert markdown.startswith("**Review of In \\[2\\]**")
    assert "<summary>✓ Reading &lt;the&gt; cell</summary>" in markdown
    assert "```python\nsum(x)\n```" in markdown and "1. `a.ipynb`, cell 2" in markdown
    assert "[1] a.ipynb, cell 2" in bundle["text/plain"]
    json.dumps(bundle)  # what the kernel publishes must serialise


def test_errors_and_stops_end_the_answer() -> None:
    failed = _state()
    failed.apply(
        {"type": "error", "code": "rate_limited", "message": "Slow down.", "retry_after": 3}
    )
    assert failed.finished and failed.error == {
        "code": "rate_limited",
        "message": "Slow down.",
        "retry_after": 3,
    }
    stopped = _state()
    stopped.apply({"type": "done", "finish_reason": "cancelled"})
    assert stopped.status == "stopped" and "*Stopped.*" in stopped.to_markdown()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rich_output_updates_at_most_max_rate_and_always_shows_the_end() -> None:
    clock = Clock()
    sent: list[tuple[bool, str]] = []
    state = _state()
    output = RichOutput(
        state,
        publish=lambda b, _id, update: sent.append((update, b[ANSWER_MIME]["markdown"])),
        clock=clock,
    )
    output.start()
    for i in range(1000):  # 1,000 chunks in one second
        clock.now = i / 1000
        state.apply({"type": "chunk", "text": "x"})
        output.changed(clock.now)
    assert output.due_in(clock.now) is not None  # the last chunks are held back...
    output.finish()  # ...until the end, which is always published
    updates = [s for s in sent if s[0]]
    assert sent[0] == (False, "")
    assert len(updates) <= MAX_RATE + 1
    assert updates[-1][1] == "x" * 1000


def _stream(lines: list[Any]) -> ChatStream:
    body = b"".join(
        (json.dumps(x) if not isinstance(x, bytes) else x.decode()).encode() + b"\n" for x in lines
    )
    return ChatStream("t1", io.BytesIO(body))


def test_follow_shows_a_stream_to_its_end() -> None:
    state = _state()
    out, err = io.StringIO(), io.StringIO()
    follow(
        _stream([{"type": "chunk", "text": "Hi"}, {"type": "done", "finish_reason": "stop"}]),
        state,
        PlainOutput(state, out=out, err=err),
    )
    assert out.getvalue() == "Hi\n" and state.status == "done"
    assert err.getvalue() == "Review of In [2]\n"


def test_follow_reports_a_stream_cut_short_or_garbled() -> None:
    cut = _state()
    follow(
        _stream([{"type": "chunk", "text": "Hal"}]),
        cut,
        PlainOutput(cut, out=io.StringIO(), err=io.StringIO()),
    )
    assert cut.status == "error" and "closed the answer before it ended" in cut.error["message"]
    garbled = _state()
    err = io.StringIO()
    follow(_stream([b"not json"]), garbled, PlainOutput(garbled, out=io.StringIO(), err=err))
    assert garbled.status == "error" and "not JSON" in err.getvalue()


def test_follow_waits_for_a_slow_server_and_flushes_held_updates() -> None:
    """A held-back update is published when due even if the server goes quiet."""
    read, write = _pipe()
    state = _state()
    published: list[str] = []
    output = RichOutput(
        state, publish=lambda b, _i, _u: published.append(b[ANSWER_MIME]["markdown"])
    )
    done = threading.Event()

    def server() -> None:
        write(json.dumps({"type": "chunk", "text": "a"}))
        write(json.dumps({"type": "chunk", "text": "b"}))  # within 50 ms: held back
        done.wait(0.5)  # quiet; the held update must not wait for the next frame
        write(json.dumps({"type": "done", "finish_reason": "stop"}))
        write(None)

    thread = threading.Thread(target=server)
    thread.start()
    seen_during_quiet: list[str] = []

    def watch() -> None:
        done.wait(0.3)
        seen_during_quiet.extend(published)
        done.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    follow(ChatStream("t1", read), state, output)
    thread.join()
    watcher.join()
    assert "ab" in seen_during_quiet
    assert published[-1] == "ab" and state.status == "done"


def _pipe() -> tuple[Any, Any]:
    import os

    r, w = os.pipe()
    reader = os.fdopen(r, "rb")
    writer = os.fdopen(w, "wb")

    def write(line: str | None) -> None:
        if line is None:
            writer.close()
        else:
            writer.write(line.encode() + b"\n")
            writer.flush()

    return reader, write
