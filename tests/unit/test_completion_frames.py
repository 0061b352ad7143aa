"""The completion socket's frames (protocol.py): what is accepted, what is refused, why."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rubberduck_jupyter.protocol import (
    CancelRequest,
    CompletionRequest,
    ErrorCode,
    ProtocolError,
    parse_completion_frame,
)


def parse(frame: Any) -> Any:
    raw = frame if isinstance(frame, str) else json.dumps(frame)
    return parse_completion_frame(raw, max_bytes=256 * 1024)


def test_a_full_frame() -> None:
    request = parse(
        {
            "type": "complete",
            "v": 1,
            "id": "c1",
            "path": "a.ipynb",
            "language": "python",
            "prefix": "x = ",
            "suffix": "\n",
            "cells": [{"cell_type": "markdown", "source": "# Title"}],
            "variables": [{"name": "df", "type": "DataFrame", "shape": "(2, 2)"}],
            "multiline": False,
            "max_lines": 3,
        }
    )
    assert isinstance(request, CompletionRequest)
    assert request.cells[0].source == "# Title" and request.variables[0].shape == "(2, 2)"
    assert (request.multiline, request.max_lines) == (False, 3)
    assert parse({"type": "cancel", "id": "c1"}) == CancelRequest("c1")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", ErrorCode.BAD_JSON),
        ('{"type": "complete", "id": "a", "prefix": "\\ud800"}', ErrorCode.BAD_JSON),
        ('{"type": "complete", "id": "a", "prefix": "\\uDFFF"}', ErrorCode.BAD_JSON),
        ({"type": "complete", "id": "a"}, ErrorCode.BAD_FRAME),
        ({"type": "complete", "prefix": "x"}, ErrorCode.BAD_FRAME),
        ({"type": "complete", "id": "a", "prefix": "x", "max_lines": 0}, ErrorCode.BAD_FRAME),
        ({"type": "complete", "id": "a", "prefix": "x", "multiline": 1}, ErrorCode.BAD_FRAME),
        ({"type": "complete", "id": "a", "prefix": "x", "cells": "no"}, ErrorCode.BAD_FRAME),
        (
            {"type": "complete", "id": "a", "prefix": "x", "cells": [{"cell_type": "pic"}]},
            ErrorCode.BAD_FRAME,
        ),
        ({"type": "complete", "id": "a", "prefix": "x" * 100_001}, ErrorCode.FRAME_TOO_LARGE),
        ({"type": "complete", "id": "a", "prefix": "x", "v": 2}, ErrorCode.UNSUPPORTED_VERSION),
        ({"type": "chat", "id": "a"}, ErrorCode.UNKNOWN_TYPE),
    ],
)
def test_refusals(frame: Any, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as info:
        parse(frame)
    assert info.value.code == code


def test_escaped_text_that_is_not_a_surrogate_is_accepted() -> None:
    request = parse(
        '{"type": "complete", "id": "a", "prefix": "s = \\"\\\\ud800\\" \\ud83d\\ude00"}'
    )
    assert request.prefix == 's = "\\ud800" \U0001f600'
