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
                "cell_type": "markdown",
                "variables": [{"name": "df", "type": "DataFrame", "summary": "shape 3 x 2"}],
            },
        }
    )
    assert isinstance(frame, ChatRequest)
    assert frame.engine == "problem_solver"
    assert frame.context.cell_index == 3 and frame.context.cell_id == "ab12"
    assert frame.context.cell_type == "markdown"
    assert frame.context.to_json()["cell_type"] == "markdown"
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
        ({"context": {"cell_type": "python"}}, "'context.cell_type' must be one of code"),
        ({"context": {"cell_type": 1}}, "cell_type"),
    ],
)
def test_bad_new_fields_are_refused_precisely(extra: dict[str, object], message: str) -> None:
    body = {"type": "chat", "id": "m1", "conversation_id": "c1", "text": "hi"} | extra
    with pytest.raises(ProtocolError) as caught:
        parse(body)
    assert caught.value.code is ErrorCode.BAD_FRAME
    assert message in caught.value.message
    assert caught.value.frame_id == "m1"


CHAT = {"type": "chat", "id": "m1", "conversation_id": "c1", "text": "hi"}


@pytest.mark.parametrize(
    ("raw", "frame_id"),
    [
        ("[" * 1000 + "]" * 1000, None),
        ('{"type": "chat", "id": "m1", "context": ' + '{"a": ' * 1000 + "1" + "}" * 1001, None),
        ('{"type": "chat", "id": "m1", "conversation_id": "c1", "text": NaN}', None),
        ('{"type": "chat", "id": "m1", "conversation_id": "c1", "text": "\\ud800"}', "m1"),
        ('{"type": "chat", "id": "\\ud800", "conversation_id": "c1", "text": "hi"}', None),
        ('{"type": "chat", "id": "m1", "conversation_id": "\\udfff", "text": "hi"}', "m1"),
        ('{"type": "chat", "id": "m1", "conversation_id": "c", "text": "hi", '
         '"context": {"selection": "a\\ud800b"}}', "m1"),
    ],
)  # fmt: skip
def test_unusable_json_is_bad_json_naming_the_turn_when_it_can(
    raw: str, frame_id: str | None
) -> None:
    # A frame too deep to decode has no id to name; one that decodes (NaN refused while
    # decoding aside) is named by its id when that id is itself clean.
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(raw, max_bytes=1 << 20, max_text_chars=1000)
    assert info.value.code is ErrorCode.BAD_JSON
    assert info.value.frame_id == frame_id


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"context": {"cell_index": 10**100}}, "from 0 to 1000000"),
        ({"context": {"cell_index": 1_000_001}}, "from 0 to 1000000"),
        ({"conversation_id": "c\n1"}, "control character"),
        ({"conversation_id": "c\x00"}, "control character"),
        ({"conversation_id": "c\x9b[31m"}, "control character"),
    ],
)
def test_out_of_range_ints_and_control_characters_are_bad_frames(
    extra: dict[str, object], message: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        parse(CHAT | extra)
    assert info.value.code is ErrorCode.BAD_FRAME
    assert message in info.value.message
    assert info.value.frame_id == "m1"


def test_an_id_with_a_control_character_is_refused_without_echoing_it() -> None:
    with pytest.raises(ProtocolError) as info:
        parse(CHAT | {"id": "m1\r\nFAKE LOG LINE"})
    assert info.value.code is ErrorCode.BAD_FRAME
    assert "control character" in info.value.message
    assert info.value.frame_id is None


def test_the_largest_cell_index_and_printable_unicode_ids_pass() -> None:
    frame = parse(CHAT | {"id": "m-é-日本", "context": {"cell_index": 1_000_000}})
    assert isinstance(frame, ChatRequest)
    assert frame.id == "m-é-日本"
    assert frame.context.cell_index == 1_000_000
