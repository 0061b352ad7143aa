"""The auth matrix: every route RubberDuck registers x every method its handler implements x
every kind of credential, on a real server, with and without
`ServerApp.allow_unauthenticated_access`, and with one user or two.

Routes come from the running app's router, so a new route is covered the day it is added
(and fails here until it has sample data below, if it needs any). Expected outcomes:

- allowed: a 2xx, or a 4xx that is not 401/403/404 (the request got past auth and was
  judged on its content: a bad path, a busy index, an already applied suggestion);
- refused: 401/403 (a foreign origin may also get Jupyter's 404 from its origin check), and
  the owner's data unchanged;
- another user: 404 on the owner's conversations and suggestions by id, allowed elsewhere
  (their own data), and the owner's data unchanged either way.

A second test fails on any handler method without the auth decorators.
"""

from __future__ import annotations

import ast
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
import tornado.websocket
from jupyter_server.auth.utils import HTTP_METHOD_TO_AUTH_ACTION
from tornado import web
from tornado.routing import PathMatches, Rule
from two_users import TOKENS, TwoUsers

import rubberduck_jupyter.handlers as handlers_pkg
from rubberduck_jupyter.domain.models import (
    CodeSuggestion,
    Conversation,
    Message,
    SuggestionTarget,
)
from rubberduck_jupyter.handlers.base import KERNEL_SCOPE
from tests.server_fixtures import indexed_config

CONVERSATION = "conv-owner"
SUGGESTION = "sugg-owner"
TARGET = "target.py"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# Sample bodies and query arguments per (route suffix, method); anything else gets "{}".
BODIES: dict[tuple[str, str], str] = {
    ("/rubberduck/api/chat", "POST"): json.dumps(
        {"type": "chat", "id": "m-matrix", "conversation_id": CONVERSATION, "text": "hello"}
    ),
    ("/rubberduck/api/chat/cancel", "POST"): json.dumps({"id": "m-not-running"}),
    # A path that does not exist: judged (400 bad_path) without starting an indexing pass.
    ("/rubberduck/api/index", "POST"): json.dumps({"paths": ["no-such-folder"]}),
    ("/rubberduck/api/conversations/{id}", "PATCH"): json.dumps({"title": "renamed"}),
    ("/rubberduck/api/preferences", "PUT"): json.dumps({"style": "concise"}),
}
PARAMS: dict[str, dict[str, str]] = {"/rubberduck/api/index/search": {"q": "hello"}}


@dataclass(frozen=True)
class Route:
    template: str  # the path with ids filled in, below the base URL
    suffix: str  # the route as written in BODIES: "/rubberduck/api/conversations/{id}"
    handler: type[web.RequestHandler]
    has_id: bool

    @property
    def is_websocket(self) -> bool:
        return issubclass(self.handler, tornado.websocket.WebSocketHandler)


def _walk(rules: list[Rule]) -> list[tuple[str, type[web.RequestHandler]]]:
    found = []
    for rule in rules:
        target = rule.target
        if hasattr(target, "rules"):
            found += _walk(target.rules)
        elif (
            isinstance(rule.matcher, PathMatches)
            and isinstance(target, type)
            and target.__module__.startswith("rubberduck_jupyter.")
        ):
            found.append((rule.matcher.regex.pattern, target))
    return found


def _fill(pattern: str, base_url: str) -> list[tuple[str, str, bool]]:
    """Concrete paths for a route regex: each group becomes the owner's sample id, or each
    alternative of an alternation group such as (apply|reject)."""
    path = pattern.rstrip("$")
    assert path.startswith(base_url), (path, base_url)
    path = "/" + path[len(base_url) :].lstrip("/")
    groups = re.findall(r"\(([^()]*)\)", path)
    if not groups:
        return [(path, path, False)]
    variants = [(path, path, False)]
    for group in groups:
        literal = re.fullmatch(r"[a-z|]+", group)
        options = group.split("|") if literal else [None]
        out = []
        for concrete, suffix, has_id in variants:
            for option in options:
                if option is None:
                    sample = SUGGESTION if "/suggestions/" in concrete else CONVERSATION
                    out.append(
                        (
                            concrete.replace(f"({group})", sample, 1),
                            suffix.replace(f"({group})", "{id}", 1),
                            True,
                        )
                    )
                else:
                    out.append(
                        (
                            concrete.replace(f"({group})", option, 1),
                            suffix.replace(f"({group})", option, 1),
                            has_id,
                        )
                    )
        variants = out
    return variants


def routes_of(serverapp: Any) -> list[Route]:
    web_app = serverapp.web_app
    base_url = web_app.settings["base_url"]
    rules = _walk(web_app.default_router.rules + web_app.wildcard_router.rules)
    assert rules, "no RubberDuck route found in the running app"
    routes = []
    for pattern, handler in rules:
        for concrete, suffix, has_id in _fill(pattern, base_url):
            routes.append(Route(concrete, suffix, handler, has_id))
    # The extension's own list and the router agree: nothing registered behind its back.
    listed = {p for p, *_ in serverapp.web_app.settings["rubberduck_jupyter"].handlers}
    assert len(listed) == len(rules), (listed, rules)
    return routes


def methods_of(handler: type[web.RequestHandler]) -> list[str]:
    if issubclass(handler, tornado.websocket.WebSocketHandler):
        return ["GET"]
    return [
        m
        for m in HTTP_METHODS
        if getattr(handler, m.lower()) is not getattr(web.RequestHandler, m.lower())
    ]


# --- the servers ----------------------------------------------------------------------

MATRIX = {
    "one-user": {},
    "one-user-no-unauthenticated": {"allow_unauthenticated_access": False},
    "two-users": {"identity_provider_class": TwoUsers},
    "two-users-no-unauthenticated": {
        "identity_provider_class": TwoUsers,
        "allow_unauthenticated_access": False,
    },
}


@pytest.fixture(params=sorted(MATRIX))
def matrix(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def jp_server_config(fake_llm: Any, tmp_path: Any, matrix: str) -> dict[str, Any]:
    # The fake provider's embeddings: an allowed search must not wait for torch and MiniLM
    # to load (~4 s alone, past the request timeout on a loaded 2-core machine).
    return {
        "ServerApp": {"jpserver_extensions": {"rubberduck_jupyter": True}, **MATRIX[matrix]},
        "RubberDuckApp": {**indexed_config(fake_llm, tmp_path), "index_watch": False},
    }


class Owner:
    """The owner's data, rebuilt before each cell, and a fingerprint to see it unchanged."""

    def __init__(self, app: Any, name: str, root: Path) -> None:
        self.app, self.name, self.root = app, name, root

    async def reset(self) -> None:
        store = self.app.conversations
        await store.delete_conversation(CONVERSATION)
        await store.create_conversation(
            Conversation(CONVERSATION, self.name, self.app.project.id, title="owner's")
        )
        question = Message("msg-owner-q", CONVERSATION, 0, "user", "question", "t-owner")
        await store.add_message(question)
        (self.root / TARGET).write_text("x = 1\n")
        await store.add_suggestion(
            CodeSuggestion(
                SUGGESTION,
                self.name,
                CONVERSATION,
                question.id,
                SuggestionTarget(TARGET),
                "x = 1\n",
                "x = 2\n",
            )
        )
        await store.set_preferences(self.name, {"style": "balanced"})

    async def fingerprint(self) -> Any:
        store = self.app.conversations
        conversation = await store.get_conversation(CONVERSATION)
        suggestion = await store.get_suggestion(SUGGESTION)
        return (
            conversation and conversation.title,
            len(await store.messages(CONVERSATION)),
            suggestion and str(suggestion.status),
            json.dumps(await store.preferences(self.name), sort_keys=True),
            (self.root / TARGET).read_text(),
        )


@dataclass
class Cell:
    route: Route
    method: str
    credential: str
    expect: str  # "allowed", "refused", "not_found"


async def _request(
    jp_fetch: Any, jp_ws_fetch: Any, cell: Cell, headers: dict[str, str], params: dict[str, str]
) -> tuple[int, bytes]:
    parts = cell.route.template.strip("/").split("/")
    params = {**PARAMS.get(cell.route.suffix, {}), **params}
    if cell.route.is_websocket:
        try:
            ws = await jp_ws_fetch(*parts, headers=headers, params=params)
        except tornado.httpclient.HTTPClientError as exc:
            return exc.code, b""
        hello = await ws.read_message()
        ws.close()
        return (101 if hello and json.loads(hello)["type"] == "hello" else 599), b""
    body = (
        BODIES.get((cell.route.suffix, cell.method), "{}")
        if cell.method in STATE_CHANGING - {"DELETE"}
        else None
    )
    response = await jp_fetch(
        *parts,
        method=cell.method,
        body=body,
        headers=headers,
        params=params,
        raise_error=False,
        request_timeout=20,
    )
    return response.code, response.body


def _judge(cell: Cell, status: int, body: bytes, before: Any, after: Any) -> bool:
    if cell.expect == "allowed":
        return status < 500 and status not in (401, 403, 404)
    if cell.expect == "not_found":
        return status == 404 and json.loads(body)["code"] == "not_found" and before == after
    if cell.expect == "refused_or_hidden":  # Jupyter answers a foreign origin 403 or 404
        return status in (401, 403, 404) and before == after
    return status in (401, 403) and before == after


async def _login_cookie(jp_fetch: Any, auth: dict[str, str], host: str) -> str:
    response = await jp_fetch("api", "status", headers={**auth, "Host": host})
    cookies = [c.split(";", 1)[0] for c in response.headers.get_list("Set-Cookie")]
    login = [c for c in cookies if c.startswith("username-")]
    assert login, f"no login cookie in {cookies}"
    return login[0]


async def test_auth_matrix(
    jp_fetch: Any,
    jp_ws_fetch: Any,
    jp_serverapp: Any,
    jp_root_dir: Path,
    jp_http_port: int,
    fake_llm: Any,
    matrix: str,
    cases: Any,
) -> None:
    started = time.monotonic()
    app = jp_serverapp.web_app.settings["rubberduck_jupyter"]
    two_users = matrix.startswith("two-users")
    owner_name = "alice" if two_users else app.kernel_username
    owner_token = TOKENS["alice"] if two_users else jp_serverapp.identity_provider.token
    owner = Owner(app, owner_name, jp_root_dir)
    await owner.reset()

    host = f"127.0.0.1:{jp_http_port}"
    nobody = {"Authorization": ""}
    cookie = await _login_cookie(jp_fetch, {"Authorization": f"token {owner_token}"}, host)
    xsrf = "ab" * 16  # a double-submit pair, as same-origin JavaScript would send it
    same_origin = {
        "Authorization": "",
        "Host": host,
        "Origin": f"http://{host}",
        "Cookie": f"{cookie}; _xsrf={xsrf}",
        "X-XSRFToken": xsrf,
    }
    kernel = {
        "Authorization": "",
        "X-RubberDuck-Kernel-Token": app.kernel_tokens.token_for(owner_name),
    }
    credentials: dict[str, tuple[dict[str, str], dict[str, str]]] = {
        "none": (nobody, {}),
        "token header": ({"Authorization": f"token {owner_token}"}, {}),
        "token in URL": (nobody, {"token": owner_token}),
        "cookie, same origin": (same_origin, {}),
        "cookie, foreign origin": ({**same_origin, "Origin": "http://evil.example"}, {}),
        "cookie without XSRF": (
            {**same_origin, "Cookie": cookie, "X-XSRFToken": ""},
            {},
        ),
        "kernel token": (kernel, {}),
    }
    if two_users:
        credentials["another user"] = ({"Authorization": f"token {TOKENS['bob']}"}, {})

    cells: list[Cell] = []
    for route in routes_of(jp_serverapp):
        for method in methods_of(route.handler):
            action = "execute" if route.is_websocket else HTTP_METHOD_TO_AUTH_ACTION[method]
            for credential in credentials:
                if credential == "cookie without XSRF" and method not in STATE_CHANGING:
                    continue  # Jupyter checks XSRF on state-changing methods only
                if credential == "none":
                    expect = "refused"
                elif credential == "cookie, foreign origin":
                    expect = "refused_or_hidden"
                elif credential == "cookie without XSRF":
                    expect = "refused"
                elif credential == "kernel token":
                    resource = getattr(route.handler, "auth_resource", "")
                    in_scope = (resource, action) in KERNEL_SCOPE and not route.is_websocket
                    expect = "allowed" if in_scope else "refused"
                elif credential == "another user" and route.has_id:
                    expect = "not_found"
                else:
                    expect = "allowed"
                cells.append(Cell(route, method, credential, expect))

    wrong = []
    for cell in cells:
        await owner.reset()
        before = await owner.fingerprint()
        headers, params = credentials[cell.credential]
        status, body = await _request(jp_fetch, jp_ws_fetch, cell, dict(headers), dict(params))
        after = await owner.fingerprint()
        if not _judge(cell, status, body, before, after):
            wrong.append(
                f"{cell.method} {cell.route.suffix} with {cell.credential}: expected "
                f"{cell.expect}, got {status} {body[:200]!r}; data {before} -> {after}"
            )
        # Their own data: nothing of the owner's in what another user reads (a chat naming
        # the owner's conversation gets its refusal frame, which echoes the id it was sent).
        leaked = b"owner's" in body or (cell.method == "GET" and CONVERSATION.encode() in body)
        if cell.credential == "another user" and not cell.route.has_id and leaked:
            wrong.append(f"{cell.method} {cell.route.suffix}: another user saw owner data")
    cases.add(len(cells), len(cells) - len(wrong))
    assert not wrong, "\n".join(wrong)
    # Every kind of route and credential was tried, not a few of them.
    assert {c.credential for c in cells} == set(credentials)
    assert len({c.route.suffix for c in cells}) >= 15
    assert time.monotonic() - started < 30


# --- the decorators ---------------------------------------------------------------------

_HTTP = {m.lower() for m in HTTP_METHODS} | {"head", "options"}


def _decorator_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = set()
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        names.add(ast.unparse(target))
    return names


def undecorated(source: str, filename: str) -> list[str]:
    """Handler methods of `source` missing @web.authenticated + @authorized, or, on a
    WebSocket `get`, @ws_authenticated plus an explicit authorizer check."""
    missing = []
    for cls in ast.walk(ast.parse(source, filename)):
        if not isinstance(cls, ast.ClassDef):
            continue
        for node in cls.body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if node.name not in _HTTP:
                continue
            names = _decorator_names(node)
            if "ws_authenticated" in names:
                ok = "authorizer.is_authorized" in ast.unparse(node)
            else:
                ok = {"web.authenticated", "authorized"} <= names
            if not ok:
                missing.append(f"{filename}: {cls.name}.{node.name} has only {sorted(names)}")
    return missing


def test_every_handler_method_has_the_auth_decorators(cases: Any) -> None:
    folder = Path(handlers_pkg.__file__).parent
    files = sorted(folder.glob("*.py"))
    missing = []
    methods = 0
    for path in files:
        source = path.read_text()
        missing += undecorated(source, path.name)
        methods += sum(
            1
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in _HTTP
        )
    cases.add(methods, methods - len(missing))
    assert not missing, "\n".join(missing)
    assert methods >= 18  # the checker saw the handlers, not an empty folder


def test_the_decorator_check_catches_a_bare_method() -> None:
    bare = (
        "class H:\n"
        "    @web.authenticated\n"
        "    async def get(self): ...\n"
        "    async def post(self): ...\n"
        "    @ws_authenticated\n"
        "    async def delete(self): ...\n"
    )
    assert undecorated(bare, "h.py") == [
        "h.py: H.get has only ['web.authenticated']",
        "h.py: H.post has only []",
        "h.py: H.delete has only ['ws_authenticated']",
    ]
