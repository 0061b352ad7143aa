from __future__ import annotations

import json

import pytest

from rubberduck_jupyter.protocol import (
    CancelRequest,
    ChatRequest,
    ErrorCode,
    ProtocolError,
    parse_client_frame,
)

LIMITS = {"max_bytes": 4096, "max_text_chars": 1000}


def parse(obj: object) -> object:
    return parse_client_frame(json.dumps(obj), **LIMITS)


def test_chat_frame_parses_with_context() -> None:
    frame = parse(
        {
            "type": "chat",
            "id": "m1",
            "conversation_id": "c1",
            "text": "why?",
            "context": {"notebook_path": "a.ipynb", "active_cell": "x = 1", "unknown": 3},
        }
    )
    assert isinstance(frame, ChatRequest)
    assert frame.context.notebook_path == "a.ipynb"
    assert frame.context.active_cell == "x = 1"
    assert frame.context.selection is None


def test_cancel_frame_parses() -> None:
    assert parse({"type": "cancel", "id": "m1"}) == CancelRequest(id="m1")


@pytest.mark.parametrize(
    ("obj", "code", "frame_id"),
    [
        ({"type": "chat", "id": "m1", "conversation_id": "c", "text": "  "}, "bad_frame", "m1"),
        ({"type": "chat", "id": "m1", "text": "hi"}, "bad_frame", "m1"),
        ({"type": "chat", "id": "", "conversation_id": "c", "text": "hi"}, "bad_frame", None),
        (
            {"type": "chat", "id": "i" * 200, "conversation_id": "c", "text": "hi"},
            "bad_frame",
            None,
        ),
        (
            {"type": "chat", "id": "m1", "conversation_id": "c", "text": "x" * 1001},
            "frame_too_large",
            "m1",
        ),
        (
            {
                "type": "chat",
                "id": "m1",
                "conversation_id": "c",
                "text": "hi",
                "context": {"error": 1},
            },
            "bad_frame",
            "m1",
        ),
        ({"id": "m1"}, "bad_frame", "m1"),
        ({"type": "nope", "id": "m1"}, "unknown_type", "m1"),
        ({"type": "cancel", "id": "m1", "v": 2}, "unsupported_version", "m1"),
    ],
)
def test_bad_frames_name_the_problem(obj: object, code: str, frame_id: str | None) -> None:
    with pytest.raises(ProtocolError) as info:
        parse(obj)
    assert info.value.code == ErrorCode(code)
    assert info.value.frame_id == frame_id
    assert info.value.message


def test_oversized_frame_is_refused_before_parsing() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_frame("{" + " " * 5000, **LIMITS)
    assert info.value.code is ErrorCode.FRAME_TOO_LARGE


def test_invalid_utf8_is_bad_json() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(b"\xff\xfe{}", **LIMITS)
    assert info.value.code is ErrorCode.BAD_JSON


def test_chat_frame_takes_engine_cell_and_variables() -> None:
    frame = parse(
        {
            "type": "chat",
            "id": "m1",
            "conversation_id": "c1",
            "text": "fix it",
            "engine": "problem_solver",
            "context": {
                "cell_index": 3,
                "cell_id": "ab12",
                "variables": [{"name": "df", "type": "DataFrame", "summary": "shape 3 x 2"}],
            },
        }
    )
    assert isinstance(frame, ChatRequest)
    assert frame.engine == "problem_solver"
    assert frame.context.cell_index == 3 and frame.context.cell_id == "ab12"
    assert frame.context.variables[0].name == "df"
    assert frame.context.to_json()["variables"][0]["summary"] == "shape 3 x 2"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"engine": 3}, "'engine' must be an engine name"),
        ({"context": {"cell_index": -1}}, "cell_index"),
        ({"context": {"cell_index": True}}, "cell_index"),
        ({"context": {"cell_index": "2"}}, "cell_index"),
        ({"context": {"variables": "df"}}, "variables"),
        ({"context": {"variables": [{"name": 1}]}}, "variables"),
        ({"context": {"variables": [{"name": "x", "summary": "y" * 3000}]}}, "variables"),
        ({"context": {"variables": [{"name": f"v{i}"} for i in range(201)]}}, "at most 200"),
        ({"context": {"cell_id": 5}}, "cell_id"),
    ],
)
def test_bad_new_fields_are_refused_precisely(extra: dict[str, object], message: str) -> None:
    body = {"type": "chat", "id": "m1", "conversation_id": "c1", "text": "hi"} | extra
    with pytest.raises(ProtocolError) as caught:
        parse(body)
    assert caught.value.code is ErrorCode.BAD_FRAME
    assert message in caught.value.message
    assert caught.value.frame_id == "m1"
