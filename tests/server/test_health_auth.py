"""Health endpoint and every way a request can be refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
import tornado.httpclient
import tornado.websocket


async def test_health_reports_each_subsystem_without_secrets(jp_fetch: Any) -> None:
    response = await jp_fetch("rubberduck", "api", "health")
    body = json.loads(response.body)
    assert body["status"] == "ok"
    assert body["protocol_version"] == 1
    assert set(body["subsystems"]) == {
        "llm",
        "sessions",
        "index",
        "event_loop",
        "supervisor",
        "queues",
        "process",
        "plugins",
    }
    plugins = body["subsystems"]["plugins"]
    assert plugins["disabled"] == [] and plugins["plugins"]["simple"]["state"] == "loaded"
    assert body["subsystems"]["index"] == {
        "state": "idle",
        "error": None,
        "open": False,
        "embedder": "minilm",
        "embedder_error": None,
        "watch": {"state": "waiting for an index"},
    }
    llm = body["subsystems"]["llm"]
    assert llm["model"] == "openai/fake-model"
    assert llm["state"] == "idle"
    assert llm["breakers"] == {}
    assert llm["rate_limits"]["queued"] == 0
    assert "sk-test-key" not in response.body.decode()


async def test_health_refuses_unauthenticated_requests(jp_fetch: Any) -> None:
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("rubberduck", "api", "health", headers={"Authorization": ""})
    assert info.value.code == 403


async def test_chat_post_refuses_unauthenticated_requests(jp_fetch: Any) -> None:
    body = json.dumps({"type": "chat", "id": "m1", "conversation_id": "c", "text": "hi"})
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch(
            "rubberduck", "api", "chat", method="POST", body=body, headers={"Authorization": ""}
        )
    assert info.value.code == 403


async def test_websocket_refuses_unauthenticated_requests(jp_ws_fetch: Any) -> None:
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_ws_fetch("rubberduck", "ws", headers={"Authorization": ""})
    assert info.value.code == 403


async def _login_cookie(jp_fetch: Any) -> str:
    # A token-authenticated request makes the server set its login cookie.
    response = await jp_fetch("api", "status")
    cookies = response.headers.get_list("Set-Cookie")
    login = [c.split(";", 1)[0] for c in cookies if c.startswith("username-")]
    assert login, f"no login cookie in {cookies}"
    return login[0]


async def test_websocket_refuses_cross_origin_cookie_requests(
    jp_fetch: Any, jp_ws_fetch: Any, jp_http_port: int
) -> None:
    cookie = await _login_cookie(jp_fetch)
    # The login cookie is named after the host it was set for, so keep that host.
    host = f"127.0.0.1:{jp_http_port}"
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_ws_fetch(
            "rubberduck",
            "ws",
            headers={
                "Authorization": "",
                "Host": host,
                "Cookie": cookie,
                "Origin": "http://evil.example",
            },
        )
    assert info.value.code == 403
    # The same cookie from the server's own origin is accepted: the origin made the difference.
    ws = await jp_ws_fetch(
        "rubberduck",
        "ws",
        headers={"Authorization": "", "Host": host, "Cookie": cookie, "Origin": f"http://{host}"},
    )
    hello = json.loads(await ws.read_message())
    assert hello["type"] == "hello"
    ws.close()


async def test_chat_post_refuses_cross_origin_cookie_requests(jp_fetch: Any) -> None:
    cookie = await _login_cookie(jp_fetch)
    body = json.dumps({"type": "chat", "id": "m1", "conversation_id": "c", "text": "hi"})
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch(
            "rubberduck",
            "api",
            "chat",
            method="POST",
            body=body,
            headers={"Authorization": "", "Cookie": cookie, "Origin": "http://evil.example"},
        )
    assert info.value.code in (403, 404)


async def test_kernel_token_reaches_rubberduck_only(jp_fetch: Any, jp_serverapp: Any) -> None:
    app = jp_serverapp.web_app.settings["rubberduck_jupyter"]
    token = app.kernel_tokens.token_for(app.kernel_username)
    scoped = {"Authorization": "", "X-RubberDuck-Kernel-Token": token}
    response = await jp_fetch("rubberduck", "api", "health", headers=scoped)
    assert json.loads(response.body)["status"] == "ok"
    # The same token opens nothing else in Jupyter.
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("api", "contents", headers=scoped)
    assert info.value.code == 403
    wrong = {"Authorization": "", "X-RubberDuck-Kernel-Token": "not-the-token"}
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("rubberduck", "api", "health", headers=wrong)
    assert info.value.code == 403
    assert json.loads(info.value.response.body) == {
        "code": "forbidden",
        "message": "Invalid RubberDuck kernel token.",
    }


async def test_no_server_wide_kernel_token_in_the_environment(jp_serverapp: Any) -> None:
    import os

    app = jp_serverapp.web_app.settings["rubberduck_jupyter"]
    # Every kernel inherits os.environ: a token there would act for the owner in anyone's.
    assert "RUBBERDUCK_KERNEL_TOKEN" not in os.environ
    env = app.kernel_env(None)  # a single-user server: a kernel outside a request is the owner's
    assert env["RUBBERDUCK_SERVER_URL"] == jp_serverapp.connection_url
    assert app.kernel_tokens.user_for(env["RUBBERDUCK_KERNEL_TOKEN"]) == app.kernel_username
    assert jp_serverapp.identity_provider.token not in env["RUBBERDUCK_KERNEL_TOKEN"]
