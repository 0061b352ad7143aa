"""Every RubberDuck REST error is {"code", "message"} with a protocol code, whoever raised it
(a handler, the auth decorators, tornado's 405), and bad bodies and paths are precise 400s."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rubberduck_jupyter.protocol import ErrorCode

CODES = {str(c) for c in ErrorCode}


def _error(response: Any) -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = json.loads(response.body)
    assert set(body) == {"code", "message"}, body
    assert body["code"] in CODES, body
    assert body["message"], body
    return dict(body)


DEEP = "[" * 1000 + "]" * 1000


@pytest.mark.parametrize(
    ("method", "parts", "body", "status", "code"),
    [
        ("GET", ("conversations", "no-such-id"), None, 404, "not_found"),
        ("GET", ("suggestions", "no-such-id"), None, 404, "not_found"),
        ("PUT", ("health",), "{}", 405, "method_not_allowed"),
        ("PATCH", ("conversations", "c"), DEEP, 400, "bad_json"),
        ("PUT", ("preferences",), DEEP, 400, "bad_json"),
        ("PUT", ("preferences",), '{"notes": "\\ud800"}', 400, "bad_json"),
        ("PUT", ("preferences",), '{"notes": NaN}', 400, "bad_json"),
        ("PUT", ("preferences",), "[1]", 400, "bad_frame"),
        ("PUT", ("preferences",), '{"style": "loud"}', 400, "bad_frame"),
        ("POST", ("index",), DEEP, 400, "bad_json"),
        ("POST", ("index",), "not json", 400, "bad_json"),
        ("POST", ("index",), '{"paths": "a"}', 400, "bad_frame"),
        ("POST", ("index",), '{"paths": ["\\u0000"]}', 400, "bad_path"),
        ("POST", ("index",), json.dumps({"paths": ["a" * 5000]}), 400, "bad_path"),
        ("POST", ("index",), json.dumps({"paths": ["x/" * 2100]}), 400, "bad_path"),
        ("POST", ("index",), '{"paths": ["../outside"]}', 400, "bad_path"),
        ("POST", ("index",), '{"paths": ["/etc"]}', 400, "bad_path"),
        ("POST", ("index",), '{"paths": [3]}', 400, "bad_path"),
        ("POST", ("suggestions", "s", "apply"), DEEP, 400, "bad_json"),
        ("GET", ("conversations", "c", "export"), None, 404, "not_found"),
        # Over the frame limit (256 KiB by default): refused before it is parsed.
        ("PUT", ("preferences",), json.dumps({"notes": "n" * 300_000}), 413, "frame_too_large"),
        ("POST", ("index",), json.dumps({"paths": ["a"] * 100_000}), 413, "frame_too_large"),
    ],
)
async def test_rest_errors_have_one_shape(
    jp_fetch: Any, method: str, parts: tuple[str, ...], body: str | None, status: int, code: str
) -> None:
    response = await jp_fetch(
        "rubberduck", "api", *parts, method=method, body=body, raise_error=False
    )
    assert response.code == status, response.body
    assert _error(response)["code"] == code


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "bad_query"),
        ({"q": "x", "top_k": "0"}, "bad_query"),
        ({"q": "x", "top_k": str(10**100)}, "bad_query"),
        ({"q": "x", "mode": "magic"}, "bad_query"),
        ({"q": "x" * 3000}, "bad_query"),
        ({"q": "x", "path": "a" * 2000}, "bad_query"),
    ],
)
async def test_search_refuses_bad_queries(jp_fetch: Any, params: dict[str, str], code: str) -> None:
    response = await jp_fetch(
        "rubberduck", "api", "index", "search", params=params, raise_error=False
    )
    assert response.code == 400
    assert _error(response)["code"] == code


async def test_unauthenticated_and_unauthorized_errors_have_the_shape(jp_fetch: Any) -> None:
    response = await jp_fetch(
        "rubberduck", "api", "conversations", headers={"Authorization": ""}, raise_error=False
    )
    assert response.code == 403
    assert _error(response)["code"] == "forbidden"


async def test_rest_chat_errors_are_frames_with_code_and_message(jp_fetch: Any) -> None:
    response = await jp_fetch(
        "rubberduck", "api", "chat", method="POST", body=DEEP, raise_error=False
    )
    assert response.code == 400
    frame = json.loads(response.body)
    assert frame["type"] == "error"
    assert frame["code"] == "bad_json"
    assert frame["message"]


async def test_index_paths_the_rules_refuse_are_named_not_skipped(
    jp_fetch: Any, jp_root_dir: Any
) -> None:
    import os

    (jp_root_dir / ".env").write_text("TOKEN=x\n")
    (jp_root_dir / "id_rsa").write_text("key\n")
    (jp_root_dir / ".hidden").mkdir()
    (jp_root_dir / ".hidden" / "a.py").write_text("x = 1\n")
    os.mkfifo(jp_root_dir / "pipe.py")
    for path, words in [
        (".env", "an .env file"),
        ("id_rsa", "a key file"),
        (".hidden/a.py", "hidden folder"),
        ("pipe.py", "not a regular file"),
    ]:
        response = await jp_fetch(
            "rubberduck",
            "api",
            "index",
            method="POST",
            body=json.dumps({"paths": [path]}),
            raise_error=False,
        )
        assert response.code == 400, (path, response.body)
        error = _error(response)
        assert error["code"] == "bad_path" and words in error["message"], error


async def test_ids_of_any_encoded_length_get_our_not_found(jp_fetch: Any) -> None:
    from urllib.parse import quote

    for ident in ("é" * 100, "x" * 2000):
        for parts in (("conversations", ident), ("suggestions", ident)):
            response = await jp_fetch(
                "rubberduck", "api", parts[0], quote(parts[1]), raise_error=False
            )
            assert response.code == 404
            assert _error(response)["code"] == "not_found"
