"""RubberDuck on a real JupyterHub: two users, each with their own server, then one shared.

Every request goes through configurable-http-proxy's public port. The tests run in file
order: the first ones use the servers before any share, `shared` then has alice share her
server with bob (JupyterHub 5+ sharing), and the rest check what bob can and cannot reach
on alice's server: RubberDuck's API keeps their conversations apart, kernel tokens act for
whoever started the kernel, and the disk (RubberDuck's database included) is alice's, open
to code anyone with access runs there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from typing import Any

import nbformat
import pytest
from hub_harness import (
    TIMINGS,
    USERS,
    Browser,
    Hub,
    TokenClient,
    create_token,
    kernel,
    ndjson,
    run_in_kernel,
)

# Each test bounds its own waits; this covers the module fixtures too (hub start and spawns
# are bounded at 60 s and 90 s in hub_harness).
pytestmark = pytest.mark.timeout(180)

# The first question each user asks on their own server (unique words, so the fake
# provider's request log shows whose prompt it got).
QUESTION = {name: f"What does {name}'s groupby-{uuid.uuid4().hex[:6]} return?" for name in USERS}

# Code a kernel runs: list "my" conversations the way %%duck reaches the server, with the
# server URL and kernel token RubberDuck put in the kernel's environment.
LIST_WITH_KERNEL_TOKEN = r"""
import hashlib, json, os, urllib.request
url = os.environ["RUBBERDUCK_SERVER_URL"].rstrip("/") + "/rubberduck/api/conversations"
token = os.environ["RUBBERDUCK_KERNEL_TOKEN"]
request = urllib.request.Request(url, headers={"X-RubberDuck-Kernel-Token": token})
with urllib.request.urlopen(request, timeout=20) as response:
    listed = json.load(response)["conversations"]
print(json.dumps({
    "ids": [c["id"] for c in listed],
    "users": sorted({c["user"] for c in listed}),
    "token_sha": hashlib.sha256(token.encode()).hexdigest(),
}))
"""

# Code a kernel runs: read the server's RubberDuck database straight from disk.
READ_DATABASE = r"""
import glob, json, os, sqlite3
data = os.path.expanduser("~/.local/share/jupyter/rubberduck")
rows = []
for path in glob.glob(os.path.join(data, "conversations-*.sqlite3")):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows += db.execute("SELECT id, user FROM conversations").fetchall()
print(json.dumps({"rows": rows, "owner": os.environ.get("JUPYTERHUB_USER")}))
"""


def chat_frames(browser: Browser, owner: str, conversation: str, text: str, **ctx: Any) -> Any:
    response = browser.chat(owner, conversation, text, **ctx)
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    return ndjson(response)


def done_frame(frames: list[dict[str, Any]]) -> dict[str, Any]:
    ends = [f for f in frames if f["type"] in ("done", "error")]
    assert len(ends) == 1 and ends[0]["type"] == "done", frames
    return ends[0]


def answer_text(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "chunk" and not f.get("step"))


def test_each_user_logs_in_and_rubberduck_loads_in_their_server(
    hub: Hub, browsers: dict[str, Browser]
) -> None:
    for name, browser in browsers.items():
        model = browser.api("GET", f"/hub/api/users/{name}").json()
        assert model["servers"][""]["ready"] is True
        assert model["servers"][""]["url"] == f"/user/{name}/"
        # The server knows who is asking through the hub's OAuth cookie, not a shared token.
        me = browser.api("GET", f"/user/{name}/api/me")
        assert me.status_code == 200 and me.json()["identity"]["username"] == name

        health = browser.api("GET", f"/user/{name}/rubberduck/api/health")
        assert health.status_code == 200, health.text
        body = health.json()
        assert body["status"] == "ok"
        assert body["subsystems"]["llm"]["model"] == "openai/fake-model"
        assert body["subsystems"]["llm"]["source"] == "$RUBBERDUCK_MODEL"


@pytest.fixture(scope="module")
def first_chats(browsers: dict[str, Browser], fake_llm_server: Any) -> dict[str, Any]:
    """Each user's first chat on their own server: its frames and the prompts the fake
    provider got for it. No scripted replies: the fake echoes the last user message."""
    fake_llm_server.reset()  # module fixtures run before the per-test reset
    fake_llm_server.update_settings(fake_llm_server.initial_settings)
    chats: dict[str, Any] = {}
    for name, browser in browsers.items():
        before = len(fake_llm_server.requests)
        started = time.monotonic()
        frames = chat_frames(browser, name, f"c-{name}", QUESTION[name])
        TIMINGS.setdefault("first chat", time.monotonic() - started)
        chats[name] = {"frames": frames, "prompts": json.dumps(fake_llm_server.requests[before:])}
    return chats


def test_each_user_chats_with_the_provider_and_keeps_their_own_conversations(
    hub: Hub, browsers: dict[str, Browser], first_chats: dict[str, Any]
) -> None:
    for name in browsers:
        frames, prompts = first_chats[name]["frames"], first_chats[name]["prompts"]
        assert frames[0]["type"] == "route"
        done = done_frame(frames)
        assert done["conversation_id"] == f"c-{name}"
        assert done["model"] == "openai/fake-model"
        assert QUESTION[name] in answer_text(frames)
        assert QUESTION[name] in prompts
        assert all(QUESTION[other] not in prompts for other in USERS if other != name)

    for name, browser in browsers.items():
        listed = browser.api("GET", f"/user/{name}/rubberduck/api/conversations").json()
        assert [c["id"] for c in listed["conversations"]] == [f"c-{name}"]
        assert listed["conversations"][0]["user"] == name
        assert listed["conversations"][0]["last_question"] == QUESTION[name]
        # Each user's database is in the Jupyter data dir of their own home.
        data = hub.home(name) / ".local" / "share" / "jupyter" / "rubberduck"
        assert list(data.glob("conversations-*.sqlite3")), f"no database under {data}"


@pytest.fixture(scope="module")
def tokens(browsers: dict[str, Browser], first_chats: dict[str, Any]) -> dict[str, str]:
    """A hub API token per user, made through the hub's REST API before any share."""
    return {
        name: create_token(browser, "tests/hub before sharing")
        for name, browser in browsers.items()
    }


def test_a_users_token_cannot_reach_the_other_users_server(
    hub: Hub, browsers: dict[str, Browser], tokens: dict[str, str]
) -> None:
    for name, other in (("alice", "bob"), ("bob", "alice")):
        client = TokenClient(hub, tokens[name])
        own = client.call("GET", f"/user/{name}/rubberduck/api/conversations")
        assert own.status_code == 200
        assert [c["id"] for c in own.json()["conversations"]] == [f"c-{name}"]

        # The single-user server asks the hub about the token; without access:servers on
        # the other's server it is refused, RubberDuck's API and Jupyter's alike.
        refused = client.call("GET", f"/user/{other}/rubberduck/api/conversations")
        assert refused.status_code == 403
        assert refused.json()["code"] == "forbidden"
        assert f"c-{other}" not in refused.text
        chat = client.call(
            "POST",
            f"/user/{other}/rubberduck/api/chat",
            {"type": "chat", "id": "m-x", "conversation_id": "c-x", "text": "hi"},
        )
        assert chat.status_code == 403
        assert client.call("GET", f"/user/{other}/api/kernels").status_code == 403

    # In the browser, the hub's OAuth step refuses bob before alice's server sees him.
    page = browsers["bob"].page("/user/alice/lab")
    assert page.status_code == 403
    assert "/hub/api/oauth2/authorize" in page.url


@pytest.fixture(scope="module")
def shared(hub: Hub, browsers: dict[str, Browser], tokens: dict[str, str]) -> dict[str, Any]:
    """alice shares her server with bob (with her token); bob opens it in his browser."""
    alice = TokenClient(hub, tokens["alice"])
    response = alice.call("POST", "/hub/api/shares/alice/", {"user": "bob"})
    assert response.status_code == 200, (response.status_code, response.text)
    # A single-user server caches the hub's answer about a token (HubAuth.cache_max_age,
    # 5 min): bob's token refused before the share may stay refused, so he gets a new one.
    return {
        "share": response.json(),
        "alice": TokenClient(hub, create_token(browsers["alice"], "tests/hub shared")),
        "bob": TokenClient(hub, create_token(browsers["bob"], "tests/hub shared")),
        "bob_page": browsers["bob"].open_server("alice"),
    }


def test_bob_reaches_alices_shared_server_as_himself(
    browsers: dict[str, Browser], shared: dict[str, Any]
) -> None:
    assert shared["share"]["scopes"] == ["access:servers!server=alice/"]
    assert shared["share"]["user"] == {"name": "bob"}
    assert shared["bob_page"].url.endswith("/user/alice/lab")
    me = browsers["bob"].api("GET", "/user/alice/api/me")
    assert me.status_code == 200 and me.json()["identity"]["username"] == "bob"
    health = browsers["bob"].api("GET", "/user/alice/rubberduck/api/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_on_alices_server_bob_sees_none_of_her_conversations(
    browsers: dict[str, Browser], shared: dict[str, Any]
) -> None:
    alices = set(browsers["alice"].conversation_ids("alice"))
    assert "c-alice" in alices
    for listing in (
        browsers["bob"].api("GET", "/user/alice/rubberduck/api/conversations").json(),
        shared["bob"].call("GET", "/user/alice/rubberduck/api/conversations").json(),
    ):
        assert not {c["id"] for c in listing["conversations"]} & alices
        assert all(c["user"] == "bob" for c in listing["conversations"])


def test_alices_conversation_is_not_found_for_bob(
    browsers: dict[str, Browser], shared: dict[str, Any]
) -> None:
    alice, bob = browsers["alice"], browsers["bob"]
    path = "/user/alice/rubberduck/api/conversations/c-alice"
    before = alice.api("GET", path).json()
    attempts = [
        bob.api("GET", path),
        bob.api("GET", path + "/export?format=markdown"),
        bob.api("GET", path + "/export?format=ipynb"),
        bob.api("PATCH", path, {"title": "bob was here"}),
        bob.api("DELETE", path),
        shared["bob"].call("GET", path),
        shared["bob"].call("DELETE", path),
    ]
    for response in attempts:
        assert response.status_code == 404, (response.request.method, response.text)
        assert response.json()["code"] == "not_found"
        assert QUESTION["alice"] not in response.text

    # A chat frame naming alice's conversation does not add to it.
    frames = chat_frames(bob, "alice", "c-alice", "Append this to alice's conversation")
    assert [f["type"] for f in frames] == ["error"]
    assert frames[0]["code"] == "not_found"

    after = alice.api("GET", path).json()
    assert after["conversation"]["title"] == before["conversation"]["title"]
    assert len(after["messages"]) == len(before["messages"])
    assert "c-alice" in alice.conversation_ids("alice")


def test_bob_cannot_see_or_apply_alices_suggestion(
    browsers: dict[str, Browser], shared: dict[str, Any], fake_llm_server: Any
) -> None:
    alice, bob = shared["alice"], shared["bob"]
    cell = "prices = {'apple': 1.5}\nprint(prices['appel'])"
    fixed = "prices = {'apple': 1.5}\nprint(prices['apple'])"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("import math"), nbformat.v4.new_code_cell(cell)]
    put = alice.call(
        "PUT",
        "/user/alice/api/contents/fruit.ipynb",
        {"type": "notebook", "format": "json", "content": notebook},
    )
    assert put.status_code in (200, 201), put.text
    error = subprocess.run(
        [sys.executable, "-c", cell], capture_output=True, text=True, timeout=30
    ).stderr
    fix = f"**Fix**\n```python\n{fixed}\n```"
    fake_llm_server.set_replies([fix, fix])
    try:
        frames = chat_frames(
            browsers["alice"],
            "alice",
            "c-alice-fix",
            "/fix",
            notebook_path="fruit.ipynb",
            cell_index=1,
            active_cell=cell,
            error=error,
        )
    finally:
        fake_llm_server.set_replies([])
    suggestion = next(f["suggestion"] for f in frames if f["type"] == "suggestion")
    base = f"/user/alice/rubberduck/api/suggestions/{suggestion['id']}"

    for response in (
        bob.call("GET", base),
        bob.call("POST", base + "/apply", {}),
        bob.call("POST", base + "/reject", {}),
        browsers["bob"].api("POST", base + "/apply", {}),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "not_found"
    assert alice.call("GET", base).json()["status"] == "proposed"

    # The same apply by its owner works: the 404s above were about bob, not the target.
    applied = alice.call("POST", base + "/apply", {})
    assert applied.status_code == 200 and applied.json()["status"] == "applied"
    content = alice.call("GET", "/user/alice/api/contents/fruit.ipynb").json()["content"]
    assert content["cells"][1]["source"] == fixed


def test_bob_chats_on_alices_server_and_each_sees_only_their_own(
    browsers: dict[str, Browser], shared: dict[str, Any]
) -> None:
    alice, bob = browsers["alice"], browsers["bob"]
    question = f"bob's question on alice's server {uuid.uuid4().hex[:6]}"
    frames = chat_frames(bob, "alice", "c-bob-on-alice", question)
    assert done_frame(frames)["conversation_id"] == "c-bob-on-alice"
    assert question in answer_text(frames)

    bobs = bob.api("GET", "/user/alice/rubberduck/api/conversations").json()["conversations"]
    assert "c-bob-on-alice" in [c["id"] for c in bobs]
    assert all(c["user"] == "bob" for c in bobs)
    alices = alice.conversation_ids("alice")
    assert "c-alice" in alices and "c-bob-on-alice" not in alices
    # bob's conversation lives in the database of the server he used, alice's.
    assert "c-bob-on-alice" not in bob.conversation_ids("bob")
    opened = bob.api("GET", "/user/alice/rubberduck/api/conversations/c-bob-on-alice").json()
    assert opened["messages"][0]["content"] == question


def test_kernel_tokens_act_for_the_user_who_started_the_kernel(
    hub: Hub, browsers: dict[str, Browser], shared: dict[str, Any]
) -> None:
    alice, bob = shared["alice"], shared["bob"]
    frames = chat_frames(browsers["bob"], "alice", "c-bob-kernel", "A question before %%duck")
    done_frame(frames)
    seen: dict[str, dict[str, Any]] = {}
    for name, client in (("bob", bob), ("alice", alice)):
        with kernel(client, "alice") as kernel_id:
            out = run_in_kernel(hub, client.token, "alice", kernel_id, LIST_WITH_KERNEL_TOKEN)
        seen[name] = json.loads(out.strip().splitlines()[-1])
        rest = client.call("GET", "/user/alice/rubberduck/api/conversations").json()
        assert set(seen[name]["ids"]) == {c["id"] for c in rest["conversations"]}
        assert seen[name]["users"] == [name]

    assert "c-bob-kernel" in seen["bob"]["ids"]
    assert "c-alice" not in seen["bob"]["ids"]
    assert "c-alice" in seen["alice"]["ids"]
    assert not set(seen["alice"]["ids"]) & {"c-bob-kernel", "c-bob-on-alice"}
    assert seen["alice"]["token_sha"] != seen["bob"]["token_sha"]


def test_a_shared_server_shares_its_disk_rubberducks_database_included(
    hub: Hub, shared: dict[str, Any]
) -> None:
    # Not a RubberDuck boundary but the hub's: code anyone runs on alice's server runs as
    # alice. bob's kernel reads her database file directly. docs/hub.md says so; if this
    # ever fails, that section must change too.
    bob = shared["bob"]
    with kernel(bob, "alice") as kernel_id:
        out = run_in_kernel(hub, bob.token, "alice", kernel_id, READ_DATABASE)
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["owner"] == "alice"
    assert ["c-alice", "alice"] in seen["rows"]
