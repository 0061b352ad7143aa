"""Conversations, preferences and suggestions over REST, on a server with two users.

A small identity provider maps `Authorization: token <name>-token` to a Jupyter user, as
JupyterHub's does for its users, so each policy is exercised through real requests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
import tornado.httpclient
from jupyter_server.auth.identity import IdentityProvider, User


class TwoUsers(IdentityProvider):
    async def get_user(self, handler: Any) -> User | None:  # type: ignore[override]
        auth = handler.request.headers.get("Authorization", "")
        name = auth.removeprefix("token ").removesuffix("-token")
        return User(username=name) if name in ("alice", "bob") else None


@pytest.fixture
def jp_server_config(rubberduck_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"rubberduck_jupyter": True},
            "identity_provider_class": TwoUsers,
            "disable_check_xsrf": True,
        },
        "RubberDuckApp": rubberduck_config,
    }


def _as(user: str) -> dict[str, str]:
    return {"Authorization": f"token {user}-token"}


class Api:
    def __init__(self, jp_fetch: Any) -> None:
        self.jp_fetch = jp_fetch

    async def chat(
        self, user: str, conversation: str, text: str, **context: Any
    ) -> list[dict[str, Any]]:
        body = {
            "type": "chat",
            "id": f"t-{text[:8]}",
            "conversation_id": conversation,
            "text": text,
            "context": context,
        }
        response = await self.jp_fetch(
            "rubberduck", "api", "chat", method="POST", body=json.dumps(body), headers=_as(user)
        )
        return [json.loads(line) for line in response.body.decode().splitlines()]

    async def call(self, user: str, method: str, *path: str, body: Any = None, **kw: Any) -> Any:
        try:
            response = await self.jp_fetch(
                "rubberduck",
                "api",
                *path,
                method=method,
                headers=_as(user),
                body=None if body is None else json.dumps(body),
                allow_nonstandard_methods=True,
                **kw,
            )
        except tornado.httpclient.HTTPClientError as exc:
            return exc.code, None
        text = response.body.decode()
        return response.code, (json.loads(text) if text and text[0] in "[{" else text)


@pytest.fixture
def api(jp_fetch: Any) -> Api:
    return Api(jp_fetch)


async def test_each_user_reaches_only_their_own_conversations(api: Api, fake_llm: Any) -> None:
    fake_llm.set_replies(["Use merge."])
    frames = await api.chat("alice", "c-alice", "How do I join frames?")
    assert frames[-1]["type"] == "done"
    assert frames[-1]["conversation_id"] == "c-alice"

    code, listed = await api.call("alice", "GET", "conversations")
    assert code == 200
    assert [(c["id"], c["title"], c["n_messages"]) for c in listed["conversations"]] == [
        ("c-alice", "How do I join frames?", 2)
    ]
    assert (await api.call("bob", "GET", "conversations"))[1] == {"conversations": []}
    for method, path, body in [
        ("GET", ("conversations", "c-alice"), None),
        ("PATCH", ("conversations", "c-alice"), {"title": "mine now"}),
        ("DELETE", ("conversations", "c-alice"), None),
        ("GET", ("conversations", "c-alice", "export"), None),
    ]:
        assert (await api.call("bob", method, *path, body=body))[0] == 404, (method, path)
    refused = await api.chat("bob", "c-alice", "let me read it")
    assert refused[-1]["code"] == "not_found"
    _, opened = await api.call("alice", "GET", "conversations", "c-alice")
    assert [m["content"] for m in opened["messages"]] == ["How do I join frames?", "Use merge."]
    assert opened["messages"][1]["engine"] == "simple"
    assert opened["messages"][1]["meta"]["route"]["reason"]


async def test_rename_delete_and_export(api: Api, fake_llm: Any) -> None:
    fake_llm.set_replies(["Try this:\n\n```python\ndf.pivot_table(index='month')\n```"])
    await api.chat("alice", "c1", "pivot by month?")
    code, renamed = await api.call(
        "alice", "PATCH", "conversations", "c1", body={"title": "  Pivots  "}
    )
    assert code == 200 and renamed["conversation"]["title"] == "Pivots"
    assert (await api.call("alice", "PATCH", "conversations", "c1", body={"title": ""}))[0] == 400
    assert (await api.call("alice", "PATCH", "conversations", "c1", body=["x"]))[0] == 400

    code, markdown = await api.call("alice", "GET", "conversations", "c1", "export")
    assert code == 200
    assert markdown.startswith("# Pivots")
    assert "pivot by month?" in markdown and "df.pivot_table(index='month')" in markdown
    code, notebook = await api.call(
        "alice", "GET", "conversations", "c1", "export", params={"format": "ipynb"}
    )
    nb = nbformat.reads(json.dumps(notebook), as_version=4)
    nbformat.validate(nb)
    assert [c.cell_type for c in nb.cells].count("code") == 1
    assert (
        next(c for c in nb.cells if c.cell_type == "code").source == "df.pivot_table(index='month')"
    )
    bad = await api.call("alice", "GET", "conversations", "c1", "export", params={"format": "pdf"})
    assert bad[0] == 400

    assert (await api.call("alice", "DELETE", "conversations", "c1"))[0] == 204
    assert (await api.call("alice", "GET", "conversations", "c1"))[0] == 404
    assert (await api.call("alice", "GET", "conversations"))[1] == {"conversations": []}


async def test_preferences_are_per_user_and_validated(api: Api) -> None:
    code, prefs = await api.call(
        "alice", "PUT", "preferences", body={"style": "concise", "prefer": ["polars"]}
    )
    assert code == 200 and prefs["style"] == "concise" and prefs["prefer"] == ["polars"]
    assert (await api.call("alice", "PUT", "preferences", body={"style": "loud"}))[0] == 400
    assert (await api.call("alice", "PUT", "preferences", body={"colour": "red"}))[0] == 400
    assert (await api.call("alice", "GET", "preferences"))[1]["style"] == "concise"
    assert (await api.call("bob", "GET", "preferences"))[1]["style"] == "balanced"


def _notebook(path: Path, sources: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, str(path))


async def test_apply_suggestion_writes_the_cell_and_refuses_a_changed_one(
    api: Api, fake_llm: Any, jp_root_dir: Path
) -> None:
    cell = "prices = {'apple': 1.5}\nprint(prices['appel'])"
    _notebook(jp_root_dir / "fruit.ipynb", ["import math", cell])
    error = subprocess.run(  # noqa: ASYNC221 (a short child, run once, for a real traceback)
        [sys.executable, "-c", cell], capture_output=True, text=True, timeout=30
    ).stderr
    fix = "**Fix**\n```python\nprices = {'apple': 1.5}\nprint(prices['apple'])\n```"
    fake_llm.set_replies([fix, fix])
    context = {"notebook_path": "fruit.ipynb", "cell_index": 1, "active_cell": cell, "error": error}
    frames = await api.chat("alice", "c-fix", "/fix", **context)
    suggestion = next(f["suggestion"] for f in frames if f["type"] == "suggestion")

    assert (await api.call("bob", "POST", "suggestions", suggestion["id"], "apply", body={}))[
        0
    ] == 404
    assert (await api.call("bob", "GET", "suggestions", suggestion["id"]))[0] == 404
    code, applied = await api.call(
        "alice", "POST", "suggestions", suggestion["id"], "apply", body={}
    )
    assert code == 200 and applied["status"] == "applied"
    on_disk = nbformat.read(str(jp_root_dir / "fruit.ipynb"), as_version=4)
    assert on_disk.cells[1].source == "prices = {'apple': 1.5}\nprint(prices['apple'])"
    assert on_disk.cells[0].source == "import math"
    again = await api.call("alice", "POST", "suggestions", suggestion["id"], "apply", body={})
    assert again[0] == 400

    # A second suggestion for the original cell: the cell has changed since, so it is refused.
    frames = await api.chat("alice", "c-fix", "/fix again", **context)
    stale = next(f["suggestion"] for f in frames if f["type"] == "suggestion")
    code, _ = await api.call("alice", "POST", "suggestions", stale["id"], "apply", body={})
    assert code == 409
    assert nbformat.read(str(jp_root_dir / "fruit.ipynb"), as_version=4).cells[1].source == (
        "prices = {'apple': 1.5}\nprint(prices['apple'])"
    )
    code, rejected = await api.call("alice", "POST", "suggestions", stale["id"], "reject", body={})
    assert code == 200 and rejected["status"] == "rejected"

    # An applied one is rejected only as "reverted" (the client put it back: Undo), and
    # never by another user; the server's record follows, the file is not touched.
    sid = suggestion["id"]
    assert (await api.call("alice", "POST", "suggestions", sid, "reject", body={}))[0] == 400
    revert = {"reverted": True}
    assert (await api.call("bob", "POST", "suggestions", sid, "reject", body=revert))[0] == 404
    code, reverted = await api.call("alice", "POST", "suggestions", sid, "reject", body=revert)
    assert code == 200 and reverted["status"] == "rejected"
    assert (await api.call("alice", "POST", "suggestions", sid, "reject", body=revert))[0] == 400


async def test_client_applied_suggestion_is_checked_against_its_base(
    api: Api, fake_llm: Any
) -> None:
    fake_llm.set_replies(["```python\nx = 2\n```"])
    frames = await api.chat(
        "alice", "c-open", "/fix", active_cell="x = 1", error="NameError: name 'y' is not defined"
    )
    suggestion = next(f["suggestion"] for f in frames if f["type"] == "suggestion")
    wrong = await api.call(
        "alice",
        "POST",
        "suggestions",
        suggestion["id"],
        "apply",
        body={"client_target_hash": "0" * 32},
    )
    assert wrong[0] == 409
    code, ok = await api.call(
        "alice",
        "POST",
        "suggestions",
        suggestion["id"],
        "apply",
        body={"client_target_hash": suggestion["base_hash"]},
    )
    assert code == 200 and ok["status"] == "applied"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", ("conversations",)),
        ("GET", ("conversations", "c1")),
        ("DELETE", ("conversations", "c1")),
        ("GET", ("preferences",)),
        ("PUT", ("preferences",)),
        ("GET", ("engines",)),
        ("POST", ("suggestions", "s1", "apply")),
    ],
)
async def test_unauthenticated_requests_are_refused(
    jp_fetch: Any, method: str, path: tuple[str, ...]
) -> None:
    with pytest.raises(tornado.httpclient.HTTPClientError) as caught:
        await jp_fetch(
            "rubberduck",
            "api",
            *path,
            method=method,
            headers={"Authorization": ""},
            body="{}" if method in ("POST", "PUT") else None,
            allow_nonstandard_methods=True,
        )
    assert caught.value.code == 403


async def test_engines_endpoint_lists_commands(api: Api) -> None:
    code, data = await api.call("alice", "GET", "engines")
    assert code == 200
    commands = {c for e in data["engines"] for c in e["commands"]}
    assert {"/review", "/fix", "/generate", "/plan", "/think", "/help", "/prefs"} <= commands
