"""Kernel tokens: each acts for the user whose request started the kernel, reaches only that
user's data and only the scoped endpoints, and passes Jupyter's Host and Origin checks.

Real kernels are started through /api/kernels and /api/sessions of a real server whose
identity provider has two users (tests/security/two_users.py); each kernel reports its own
environment.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest
from two_users import TwoUsers, auth

from rubberduck_jupyter.handlers.base import KERNEL_SCOPE

HEADER = "X-RubberDuck-Kernel-Token"


@pytest.fixture
def jp_server_config(rubberduck_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"rubberduck_jupyter": True},
            "identity_provider_class": TwoUsers,
        },
        "RubberDuckApp": rubberduck_config,
    }


async def _kernel_environ(jp_serverapp: Any, kernel_id: str, timeout: float = 60) -> dict[str, str]:
    """The RUBBERDUCK_* variables the kernel process itself sees."""
    client = jp_serverapp.kernel_manager.get_kernel(kernel_id).client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=timeout)
        code = (
            "import os, json; print(json.dumps({k: v for k, v in os.environ.items() "
            "if k.startswith('RUBBERDUCK_')}))"
        )
        msg_id = client.execute(code)
        out = ""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            msg = await asyncio.wait_for(client.get_iopub_msg(), timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out += msg["content"]["text"]
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        return dict(json.loads(out))
    finally:
        client.stop_channels()


async def _chat(jp_fetch: Any, headers: dict[str, str], conversation_id: str) -> Any:
    body = json.dumps(
        {"type": "chat", "id": "m1", "conversation_id": conversation_id, "text": "hi"}
    )
    return await jp_fetch(
        "rubberduck", "api", "chat", method="POST", body=body, headers=headers, raise_error=False
    )


@pytest.mark.kernel
async def test_each_users_kernel_gets_a_token_for_that_user_only(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    app = jp_serverapp.web_app.settings["rubberduck_jupyter"]
    # Alice through the kernels API (no env passed: os.environ is copied), Bob through the
    # sessions API (which passes its own env), as JupyterLab does.
    response = await jp_fetch(
        "api", "kernels", method="POST", body=json.dumps({"name": "python3"}), headers=auth("alice")
    )
    alice_kernel = json.loads(response.body)["id"]
    session = {"path": "b.ipynb", "type": "notebook", "name": "b", "kernel": {"name": "python3"}}
    response = await jp_fetch(
        "api", "sessions", method="POST", body=json.dumps(session), headers=auth("bob")
    )
    bob_session = json.loads(response.body)
    bob_kernel = bob_session["kernel"]["id"]
    try:
        alice_env, bob_env = await asyncio.gather(
            _kernel_environ(jp_serverapp, alice_kernel), _kernel_environ(jp_serverapp, bob_kernel)
        )
        # Renaming the notebook refreshes the kernel's env (for its next restart) from
        # os.environ; a token the server process inherited must not replace Bob's.
        os.environ["RUBBERDUCK_KERNEL_TOKEN"] = "inherited-from-a-parent"
        try:
            await jp_fetch(
                "api",
                "sessions",
                bob_session["id"],
                method="PATCH",
                body=json.dumps({"path": "renamed.ipynb", "name": "renamed"}),
                headers=auth("bob"),
            )
        finally:
            del os.environ["RUBBERDUCK_KERNEL_TOKEN"]
        launch_env = jp_serverapp.kernel_manager.get_kernel(bob_kernel)._launch_args["env"]
        assert launch_env["JPY_SESSION_NAME"].endswith("renamed")  # update_env ran
        assert launch_env["RUBBERDUCK_KERNEL_TOKEN"] == bob_env["RUBBERDUCK_KERNEL_TOKEN"]
    finally:
        for kernel_id in (alice_kernel, bob_kernel):
            await jp_serverapp.kernel_manager.shutdown_kernel(kernel_id, now=True)

    alice_token = alice_env["RUBBERDUCK_KERNEL_TOKEN"]
    bob_token = bob_env["RUBBERDUCK_KERNEL_TOKEN"]
    assert alice_token != bob_token
    assert app.kernel_tokens.user_for(alice_token) == "alice"
    assert app.kernel_tokens.user_for(bob_token) == "bob"
    assert alice_env["RUBBERDUCK_SERVER_URL"] == jp_serverapp.connection_url
    # Nothing server-wide for every kernel to inherit.
    assert "RUBBERDUCK_KERNEL_TOKEN" not in os.environ

    fake_llm.set_replies(["Alice's answer."])
    response = await _chat(jp_fetch, {"Authorization": "", HEADER: alice_token}, "conv-alice")
    assert response.code == 200, response.body
    as_alice = {"Authorization": "", HEADER: alice_token}
    as_bob = {"Authorization": "", HEADER: bob_token}
    response = await jp_fetch(
        "rubberduck", "api", "conversations", "conv-alice", headers=as_alice, raise_error=False
    )
    assert response.code == 200
    # Bob's kernel cannot see or continue Alice's conversation.
    response = await jp_fetch(
        "rubberduck", "api", "conversations", "conv-alice", headers=as_bob, raise_error=False
    )
    assert response.code == 404
    assert json.loads(response.body)["code"] == "not_found"
    listed = await jp_fetch("rubberduck", "api", "conversations", headers=as_bob)
    assert json.loads(listed.body)["conversations"] == []
    # Alice herself, signed in, sees what her kernel wrote: the same user.
    listed = await jp_fetch("rubberduck", "api", "conversations", headers=auth("alice"))
    assert [c["id"] for c in json.loads(listed.body)["conversations"]] == ["conv-alice"]


async def test_a_kernel_started_outside_a_request_gets_no_token_with_several_users(
    jp_serverapp: Any,
) -> None:
    app = jp_serverapp.web_app.settings["rubberduck_jupyter"]
    os.environ["RUBBERDUCK_KERNEL_TOKEN"] = "inherited-from-a-parent"
    try:
        env = app.kernel_env(None)
    finally:
        del os.environ["RUBBERDUCK_KERNEL_TOKEN"]
    assert "RUBBERDUCK_KERNEL_TOKEN" not in env
    assert env["RUBBERDUCK_SERVER_URL"] == jp_serverapp.connection_url


async def test_kernel_token_scope_is_the_documented_allowlist(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any, cases: Any
) -> None:
    app = jp_serverapp.web_app.settings["rubberduck_jupyter"]
    token = {"Authorization": "", HEADER: app.kernel_tokens.token_for("alice")}
    assert (await _chat(jp_fetch, token, "conv-scope")).code == 200
    store = app.conversations
    suggestions = await store.suggestions("conv-scope")
    assert suggestions == []  # no suggestion exists: reject reaches its 404, past the scope

    reached = [
        ("GET", ("health",), None),
        ("GET", ("plugins",), None),
        ("GET", ("models",), None),
        ("GET", ("usage",), None),
        ("GET", ("engines",), None),
        ("GET", ("conversations",), None),
        ("GET", ("conversations", "conv-scope"), None),
        ("GET", ("conversations", "conv-scope", "export"), None),
        ("GET", ("index",), None),
        ("GET", ("suggestions", "nope"), None),
        ("POST", ("suggestions", "nope", "reject"), "{}"),
        ("POST", ("suggestions", "nope", "apply"), "{}"),
    ]
    refused = [
        ("POST", ("index",), '{"paths": []}'),
        ("DELETE", ("index",), None),
        ("GET", ("preferences",), None),
        ("PUT", ("preferences",), '{"style": "concise"}'),
        ("PATCH", ("conversations", "conv-scope"), '{"title": "renamed"}'),
        ("DELETE", ("conversations", "conv-scope"), None),
    ]
    tried = correct = 0
    for method, parts, body in reached + refused:
        response = await jp_fetch(
            "rubberduck", "api", *parts, method=method, body=body, headers=token, raise_error=False
        )
        expect_refused = (method, parts, body) in refused
        if expect_refused:
            ok = response.code == 403 and json.loads(response.body)["code"] == "forbidden"
        else:
            ok = response.code < 500 and response.code not in (401, 403)
        tried += 1
        correct += ok
        assert ok, (method, parts, response.code, response.body)
    cases.add(tried, correct)
    # The conversation the refused DELETE aimed at is still there.
    assert (await store.get_conversation("conv-scope")) is not None
    assert ("rubberduck:index", "write") not in KERNEL_SCOPE
    assert ("rubberduck:preferences", "write") not in KERNEL_SCOPE


async def test_kernel_token_requests_get_the_host_and_origin_checks(
    jp_fetch: Any, jp_serverapp: Any, jp_http_port: int, fake_llm: Any
) -> None:
    app = jp_serverapp.web_app.settings["rubberduck_jupyter"]
    token = app.kernel_tokens.token_for("alice")
    base = {"Authorization": "", HEADER: token}
    response = await jp_fetch(
        "rubberduck", "api", "health", headers={**base, "Host": "evil.example"}, raise_error=False
    )
    assert response.code == 403
    assert json.loads(response.body)["code"] == "forbidden"
    # A kernel sends no Origin; a page on another origin never holds a kernel token.
    response = await jp_fetch(
        "rubberduck",
        "api",
        "health",
        headers={**base, "Origin": "http://evil.example"},
        raise_error=False,
    )
    assert response.code == 403
    host = f"127.0.0.1:{jp_http_port}"
    response = await jp_fetch(
        "rubberduck",
        "api",
        "health",
        headers={**base, "Host": host, "Origin": f"http://{host}"},
        raise_error=False,
    )
    assert response.code == 200
    # No XSRF token on a POST, as for Jupyter's own header token.
    response = await _chat(jp_fetch, base, "conv-xsrf")
    assert response.code == 200
