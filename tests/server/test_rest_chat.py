"""POST /rubberduck/api/chat: the streamed NDJSON door used by %%duck."""

from __future__ import annotations

import json
from typing import Any

import pytest
import tornado.httpclient


def _body(text: str = "hello") -> str:
    return json.dumps({"type": "chat", "id": "r1", "conversation_id": "c1", "text": text})


async def test_rest_chat_streams_ndjson_frames(jp_fetch: Any, fake_llm: Any) -> None:
    fake_llm.set_replies(["A short streamed answer."])
    response = await jp_fetch("rubberduck", "api", "chat", method="POST", body=_body())
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    frames = [json.loads(line) for line in response.body.decode().splitlines()]
    assert [f["type"] for f in frames][-1] == "done"
    text = "".join(f["text"] for f in frames if f["type"] == "chunk")
    assert text == "A short streamed answer."


async def test_rest_chat_accepts_the_kernel_token(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    app = jp_serverapp.web_app.settings["rubberduck_jupyter"]
    token = app.kernel_tokens.token_for(app.kernel_username)
    response = await jp_fetch(
        "rubberduck",
        "api",
        "chat",
        method="POST",
        body=_body(),
        headers={"Authorization": "", "X-RubberDuck-Kernel-Token": token},
    )
    frames = [json.loads(line) for line in response.body.decode().splitlines()]
    assert frames[-1]["type"] == "done"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("not json", "bad_json"),
        (json.dumps({"type": "cancel", "id": "x"}), "bad_frame"),
        (json.dumps({"type": "chat", "id": "x", "conversation_id": "c", "text": ""}), "bad_frame"),
    ],
)
async def test_rest_chat_rejects_bad_bodies(jp_fetch: Any, body: str, code: str) -> None:
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("rubberduck", "api", "chat", method="POST", body=body)
    assert info.value.code == 400
    assert json.loads(info.value.response.body)["code"] == code
