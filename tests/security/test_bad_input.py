"""Bad input an attacker found, through a real server: each gets a precise typed error
(never `internal`, never a 500, never a dropped socket), and the socket keeps working.

Findings (issue 9): deeply nested JSON killed the socket with a RecursionError and gave a
500 on REST; lone surrogates gave `internal` (and `not_found` in `text`); NUL and
5,000-character index paths, search globs `/`, `./`, `[z-a]` and a cell_index of 10^100
gave 500 or `internal`; 2 MB and 10 MB frames dropped the socket. Found while fixing:
a text frame that is not UTF-8 dropped the socket, control characters in ids reached the
logs, and a glob like `*a*a*a*a*a*b` backtracked exponentially (see index/globs.py).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import indexed_config

from rubberduck_jupyter.handlers.chat_ws import MAX_WIRE_MESSAGE_BYTES
from rubberduck_jupyter.protocol import ErrorCode

CODES = {str(code) for code in ErrorCode}
DEEP = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a": ' * 1000 + "1" + "}" * 1000


@pytest.fixture
def project(jp_root_dir: Path) -> Path:
    (jp_root_dir / "src").mkdir()
    (jp_root_dir / "src" / "calendar_utils.py").write_text(
        "def fiscal_quarter(date):\n    return date.month // 3\n"
    )
    (jp_root_dir / "NOTES.md").write_text("# Notes\n\nThe fiscal quarter starts in April.\n")
    return jp_root_dir


@pytest.fixture
def rubberduck_config(project: Path, tmp_path: Path, fake_llm: Any) -> dict[str, Any]:
    # Embeddings from the fake provider: no model loads, searches are fast.
    return indexed_config(fake_llm, tmp_path)


async def _open(jp_ws_fetch: Any) -> Any:
    ws = await jp_ws_fetch("rubberduck", "ws")
    hello = json.loads(await asyncio.wait_for(ws.read_message(), 10))
    assert hello["type"] == "hello"
    return ws


async def _next(ws: Any, timeout: float = 10) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.read_message(), timeout)
    assert raw is not None, f"socket closed: {ws.close_code} {ws.close_reason}"
    frame: dict[str, Any] = json.loads(raw)
    return frame


async def _still_works(ws: Any) -> None:
    """The socket still answers a well-formed frame (a cancel of an unknown turn)."""
    ws.write_message(json.dumps({"type": "cancel", "id": "probe"}))
    frame = await _next(ws)
    assert (frame["type"], frame["code"], frame["id"]) == ("error", "unknown_id", "probe")


def _chat(**fields: Any) -> dict[str, Any]:
    return {"type": "chat", "id": "m1", "conversation_id": "c1", "text": "hi"} | fields


def _resume(**fields: Any) -> dict[str, Any]:
    return {"type": "resume", "id": "r1", "after": 0} | fields


def _raw_chat(**fields: str) -> str:
    """A chat frame as text, the fields' values written as JSON source (escapes kept)."""
    values = {"id": "m1", "conversation_id": "c1", "text": "hi"} | fields
    inner = ", ".join(f'"{k}": "{v}"' for k, v in values.items())
    return '{"type": "chat", ' + inner + "}"


async def _rest(jp_fetch: Any, *parts: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    response = await jp_fetch(*parts, raise_error=False, **kwargs)
    body = json.loads(response.body) if response.body else {}
    return response.code, body


# --- the WebSocket -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code", "frame_id"),
    [
        (DEEP, "bad_json", None),
        (DEEP_OBJECT, "bad_json", None),
        (
            json.dumps(_chat())[:-1] + ', "context": {"extra": ' + DEEP + "}}",
            "bad_json",
            None,
        ),
        (_raw_chat(id="\\ud800"), "bad_json", None),
        (_raw_chat(conversation_id="\\ud800"), "bad_json", "m1"),
        (_raw_chat(text="\\ud800"), "bad_json", "m1"),
        (_raw_chat(text="a\\udfffb"), "bad_json", "m1"),
        (
            '{"type": "chat", "id": "m1", "conversation_id": "c1", "text": "hi", '
            '"context": {"active_cell": "x = 1\\ud800"}}',
            "bad_json",
            "m1",
        ),
        (
            '{"type": "chat", "id": "m1", "conversation_id": "c1", "text": "hi", '
            '"context": {"variables": [{"name": "\\udc00", "type": "int"}]}}',
            "bad_json",
            "m1",
        ),
        ('{"type": "cancel", "id": "\\ud800"}', "bad_json", None),
        ('{"type": "chat", "text": NaN}', "bad_json", None),
        (json.dumps(_chat(context={"cell_index": 10**100})), "bad_frame", "m1"),
        (json.dumps(_chat(context={"cell_index": -(10**100)})), "bad_frame", "m1"),
        (
            json.dumps(
                _chat(context={"mentions": [{"kind": "cell", "cell": 10**100, "source": ""}]})
            ),
            "bad_frame",
            "m1",
        ),
        (
            json.dumps(_chat(context={"mentions": [{"kind": "file", "path": ["a"]}]})),
            "bad_frame",
            "m1",
        ),
        (json.dumps(_chat(v=10**100)), "unsupported_version", "m1"),
        (json.dumps(_chat(id="m1\r\nERROR forged log line")), "bad_frame", None),
        (json.dumps(_chat(conversation_id="c\x00")), "bad_frame", "m1"),
        (json.dumps({"type": "cancel", "id": "\x1b[2J"}), "bad_frame", None),
        ('{"type": "chat", "id": "m1", "text": 1' + "0" * 5000 + "}", "bad_json", None),
        # resume {id, after}: the numbers and ids a client could get wrong, and a turn it
        # does not own (unknown on this server: the same answer as another user's id)
        ('{"type": "resume", "id": "\\ud800", "after": 0}', "bad_json", None),
        ('{"type": "resume", "id": "r1", "after": NaN}', "bad_json", None),
        ('{"type": "resume", "id": "r1", "after": 1' + "0" * 5000 + "}", "bad_json", None),
        (json.dumps({"type": "resume", "id": "r1", "after": 10**100}), "bad_frame", "r1"),
        (json.dumps({"type": "resume", "id": "r1", "after": -(10**100)}), "bad_frame", "r1"),
        (json.dumps({"type": "resume", "id": "r1", "after": [1]}), "bad_frame", "r1"),
        (json.dumps({"type": "resume", "id": "r1\r\nERROR forged", "after": 0}), "bad_frame", None),
        (json.dumps(_resume(v=2)), "unsupported_version", "r1"),
        (json.dumps(_resume(id="theirs", after=3)), "resume_unavailable", "theirs"),
        (json.dumps(_resume(pad="x" * 300_000)), "frame_too_large", None),
    ],
)  # fmt: skip
async def test_bad_frames_get_a_precise_error_and_the_socket_stays(
    jp_ws_fetch: Any, fake_llm: Any, cases: Any, raw: str, code: str, frame_id: str | None
) -> None:
    ws = await _open(jp_ws_fetch)
    ws.write_message(raw)
    frame = await _next(ws)
    ok = (frame["type"], frame["code"], frame["id"]) == ("error", code, frame_id)
    assert cases.check(ok), frame
    assert "Traceback" not in frame["message"]
    await _still_works(ws)
    assert not fake_llm.requests, "a refused frame reached the provider"
    ws.close()


async def test_a_text_frame_that_is_not_utf8_is_bad_json(jp_ws_fetch: Any, cases: Any) -> None:
    # Tornado's client only sends valid text; write the frame as a raw text frame (0x1).
    ws = await _open(jp_ws_fetch)
    await ws.protocol._write_frame(True, 0x1, b'{"type": "cancel", "id": "\xff\xfe"}')
    frame = await _next(ws)
    assert cases.check(frame["code"] == "bad_json" and "UTF-8" in frame["message"]), frame
    ws.write_message(b"\xc3\x28", binary=True)
    frame = await _next(ws)
    assert cases.check(frame["code"] == "bad_json"), frame
    await _still_works(ws)
    ws.close()


async def test_binary_frames_are_read_as_utf8_json(jp_ws_fetch: Any, cases: Any) -> None:
    ws = await _open(jp_ws_fetch)
    ws.write_message(json.dumps({"type": "cancel", "id": "b1"}).encode(), binary=True)
    frame = await _next(ws)
    assert cases.check((frame["code"], frame["id"]) == ("unknown_id", "b1")), frame
    # UTF-16 JSON, which json.loads would guess from bytes, is not the protocol.
    ws.write_message(json.dumps({"type": "cancel", "id": "b2"}).encode("utf-16"), binary=True)
    frame = await _next(ws)
    assert cases.check(frame["code"] == "bad_json"), frame
    ws.close()


@pytest.mark.parametrize(
    "size", [256 * 1024 + 1, 2 * 1024 * 1024, 10 * 1024 * 1024, MAX_WIRE_MESSAGE_BYTES]
)
async def test_oversized_frames_get_frame_too_large_and_the_socket_stays(
    jp_ws_fetch: Any, cases: Any, size: int
) -> None:
    ws = await _open(jp_ws_fetch)
    payload = json.dumps(_chat(text="x"))
    ws.write_message(payload[:-1] + " " * (size - len(payload)) + "}")
    frame = await _next(ws, timeout=30)
    ok = frame["code"] == "frame_too_large" and f"Frame of {size} bytes" in frame["message"]
    assert cases.check(ok), frame
    await _still_works(ws)
    ws.close()


async def test_a_frame_over_the_wire_cap_closes_with_1009(jp_ws_fetch: Any, cases: Any) -> None:
    ws = await _open(jp_ws_fetch)
    ws.write_message("x" * (MAX_WIRE_MESSAGE_BYTES + 1))
    raw = await asyncio.wait_for(ws.read_message(), 30)
    ok = raw is None and (ws.close_code, ws.close_reason) == (1009, "message too big")
    assert cases.check(ok), (raw, ws.close_code, ws.close_reason)


async def test_fragments_adding_up_past_the_limit_get_frame_too_large(
    jp_ws_fetch: Any, cases: Any
) -> None:
    # Three text fragments of 200 KiB (600 KiB > the 256 KiB frame limit): the second and
    # third are discarded unread, the message is refused, and the next one is read normally.
    ws = await _open(jp_ws_fetch)
    piece = b" " * (200 * 1024)
    await ws.protocol._write_frame(False, 0x1, b'{"type": "cancel", "id": "f1"' + piece)
    await ws.protocol._write_frame(False, 0x0, piece)
    await ws.protocol._write_frame(True, 0x0, piece + b"}")
    frame = await _next(ws, timeout=30)
    assert cases.check(frame["code"] == "frame_too_large"), frame
    await ws.protocol._write_frame(False, 0x1, b'{"type": "cancel", ')
    await ws.protocol._write_frame(True, 0x0, b'"id": "f2"}')
    frame = await _next(ws)
    assert cases.check((frame["code"], frame["id"]) == ("unknown_id", "f2")), frame
    ws.close()


async def test_a_bug_in_frame_handling_is_internal_and_the_socket_stays(
    jp_ws_fetch: Any, jp_serverapp: Any, monkeypatch: pytest.MonkeyPatch, cases: Any
) -> None:
    from rubberduck_jupyter.handlers import chat_ws

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug with a secret sk-should-not-leak in its message")

    ws = await _open(jp_ws_fetch)
    monkeypatch.setattr(chat_ws, "parse_client_frame", broken)
    ws.write_message(json.dumps({"type": "cancel", "id": "x"}))
    frame = await _next(ws)
    ok = frame["code"] == "internal" and "sk-should-not-leak" not in frame["message"]
    assert cases.check(ok), frame
    monkeypatch.undo()
    await _still_works(ws)
    ws.close()


async def test_a_refused_chat_with_a_surrogate_in_text_does_not_say_not_found(
    jp_ws_fetch: Any, read_turn: Any, fake_llm: Any, cases: Any
) -> None:
    fake_llm.set_replies(["It works."])
    ws = await _open(jp_ws_fetch)
    ws.write_message(_raw_chat(text="\\ud83d"))
    frame = await _next(ws)
    assert cases.check(frame["code"] == "bad_json" and "surrogate" in frame["message"]), frame
    # The same conversation then works with proper text (the emoji as a surrogate pair).
    ws.write_message(_raw_chat(id="m2", text="\\ud83d\\ude00"))
    frames = await read_turn(ws, "m2")
    assert cases.check(frames[-1]["type"] == "done"), frames[-1]
    ws.close()


# --- REST ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "method"),
    [
        (("rubberduck", "api", "chat"), "POST"),
        (("rubberduck", "api", "index"), "POST"),
        (("rubberduck", "api", "preferences"), "PUT"),
        (("rubberduck", "api", "conversations", "c1"), "PATCH"),
        (("rubberduck", "api", "suggestions", "s1", "apply"), "POST"),
    ],
)
@pytest.mark.parametrize(
    "body",
    [
        DEEP,
        DEEP_OBJECT,
        '{"paths": ["\\ud800"], "title": "\\ud800", "text": "\\ud800"}',
        '{"x": NaN}',
    ],
)
async def test_rest_bodies_that_cannot_be_used_are_400_bad_json(
    jp_fetch: Any, cases: Any, parts: tuple[str, ...], method: str, body: str
) -> None:
    code, answer = await _rest(jp_fetch, *parts, method=method, body=body)
    # Routes that look a resource up first may say 404 for a missing one; never a 500.
    ok = (code, answer.get("code")) == (400, "bad_json") or (
        code == 404 and answer.get("code") == "not_found"
    )
    assert cases.check(ok), (parts, code, answer)


@pytest.mark.parametrize(
    ("paths", "needle"),
    [
        (["\x00"], "NUL"),
        (["a" * 5000], "long"),
        (["src/" + "n" * 300], "255"),
        (["x/" * 2100], "long"),
        (["/etc"], "relative"),
        (["../"], "outside"),
        (["no-such-folder"], "does not exist"),
        ([3], "string"),
    ],
)
async def test_bad_index_paths_are_400_bad_path(
    jp_fetch: Any, cases: Any, paths: list[Any], needle: str
) -> None:
    code, answer = await _rest(
        jp_fetch, "rubberduck", "api", "index", method="POST", body=json.dumps({"paths": paths})
    )
    ok = code == 400 and answer.get("code") == "bad_path" and needle in answer.get("message", "")
    assert cases.check(ok), (paths[0] if paths else None, code, answer)


async def _wait_indexed(jp_fetch: Any) -> None:
    code, _ = await _rest(jp_fetch, "rubberduck", "api", "index", method="POST", body="{}")
    assert code == 202
    for _ in range(300):  # 30 s at most
        _, status = await _rest(jp_fetch, "rubberduck", "api", "index")
        if status["state"] != "indexing":
            assert status["state"] == "idle", status
            return
        await asyncio.sleep(0.1)
    raise AssertionError("indexing did not finish")


async def _search(jp_fetch: Any, **params: str) -> tuple[int, dict[str, Any]]:
    return await _rest(
        jp_fetch, "rubberduck", "api", "index", "search", params={"q": "fiscal quarter", **params}
    )


async def test_search_globs_slash_and_dot_slash_mean_the_whole_root(
    jp_fetch: Any, cases: Any
) -> None:
    await _wait_indexed(jp_fetch)
    code, unfiltered = await _search(jp_fetch, mode="bm25")
    assert code == 200 and unfiltered["hits"], unfiltered
    every = sorted(hit["path"] for hit in unfiltered["hits"])
    assert every == ["NOTES.md", "src/calendar_utils.py"]
    for glob in ("/", "./", ".", "", "//", "./."):
        code, answer = await _search(jp_fetch, mode="bm25", path=glob)
        got = sorted(hit["path"] for hit in answer.get("hits", []))
        assert cases.check(code == 200 and got == every), (glob, code, answer)


@pytest.mark.parametrize(
    ("glob", "needle"),
    [
        ("[z-a]", "reversed range"),
        ("src/[z-a].py", "reversed range"),
        ("[!9-0]*", "reversed range"),
        ("   ", None),  # blank: no filter, like an empty field (200)
        ("x" * 1200, "characters"),
        ("a\x00b", None),  # tornado strips control characters from arguments: a glob "ab"
    ],
)
async def test_bad_search_globs_are_400_bad_query(
    jp_fetch: Any, cases: Any, glob: str, needle: str | None
) -> None:
    code, answer = await _search(jp_fetch, mode="bm25", path=glob)
    if needle is None:
        assert cases.check(code == 200), (code, answer)
        return
    ok = code == 400 and answer.get("code") == "bad_query" and needle in answer["message"]
    assert cases.check(ok), (glob[:20], code, answer)


async def test_a_backtracking_glob_answers_at_once(jp_fetch: Any, project: Path) -> None:
    # A naive glob translation took ~1 s for one 80-character name and doubled every few
    # characters: this name and glob would not finish in a day.
    (project / ("a" * 200 + ".md")).write_text("fiscal quarter notes\n")
    await _wait_indexed(jp_fetch)
    loop = asyncio.get_running_loop()
    started = loop.time()
    code, answer = await _search(jp_fetch, mode="bm25", path="*a*a*a*a*a*a*a*a*a*a*b")
    assert code == 200 and answer["hits"] == [], answer
    assert loop.time() - started < 5.0


@pytest.mark.parametrize(
    "params",
    [
        {"top_k": "9" * 5000},
        {"top_k": "1e3"},
        {"top_k": "-1"},
        {"mode": "m" * 10_000},
        {"q": "x" * 3000},
    ],
)
async def test_bad_search_arguments_are_400_bad_query(
    jp_fetch: Any, cases: Any, params: dict[str, str]
) -> None:
    code, answer = await _search(jp_fetch, **params)
    assert cases.check(code == 400 and answer.get("code") in CODES), (code, answer)
