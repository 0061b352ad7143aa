"""The agent runs cells with the user's approval: a real server, the fake provider scripting
the model's tool calls, and a test client playing the sidebar over the real WebSocket.

The sidebar here does what the real one does: it answers `approval` frames, applies
suggestions through the real REST apply endpoint (the notebook on disk changes), runs the
approved cell's code in a real IPython kernel (jupyter_client) and sends `run_result`.
Two users (header tokens) so an approval answered by someone else is tried for real.
A `tool` approval (an MCP server's write tool, tests/mcp_fixtures/fixture_server.py over
stdio) is answered by the decision alone: this client runs nothing for it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_server.auth.identity import IdentityProvider, User
from server_fixtures import indexed_config

READ_S = 30.0  # a bound for failing, not a speed expectation
TOKENS = {"alice": "alice-run-token", "bob": "bob-run-token"}


class TwoUsers(IdentityProvider):
    """Jupyter's token login with two users: the base class sets the token-authenticated
    flag, so REST POSTs (apply, reject) pass without an XSRF cookie, as with a real token."""

    async def get_user_token(self, handler: Any) -> User | None:  # type: ignore[override]
        given = self.get_token(handler)
        for name, token in TOKENS.items():
            if given == token:
                return User(username=name)
        return None


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"token {TOKENS[user]}"}


FIXTURE = str(Path(__file__).parents[1] / "mcp_fixtures" / "fixture_server.py")


@pytest.fixture
def mcp_permission() -> str | None:
    """The permission of an MCP server `ops` (its write_note tool); None: no MCP server.
    A test that wants one parametrizes this name."""
    return None


@pytest.fixture
def rubberduck_config(fake_llm: Any, tmp_path: Path, mcp_permission: str | None) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if mcp_permission is not None:
        extra["mcp_servers"] = {
            "ops": {
                "command": [sys.executable, FIXTURE],
                "env": {"FIXTURE_CALLS_FILE": str(tmp_path / "mcp-calls.txt")},
                "permission": mcp_permission,
                "tools": ["write_note"],
                "start_timeout": 60,
            }
        }
    return indexed_config(fake_llm, tmp_path, **extra)


@pytest.fixture
def jp_server_config(rubberduck_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"rubberduck_jupyter": True},
            "identity_provider_class": TwoUsers,
        },
        "RubberDuckApp": rubberduck_config,
    }


@pytest.fixture
def app(jp_serverapp: Any) -> Any:
    return jp_serverapp.web_app.settings["rubberduck_jupyter"]


class Kernel:
    """A real IPython kernel driven from one thread of its own: jupyter_client's blocking
    client runs its own event loop, which must not be the test's (already running)."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._thread = ThreadPoolExecutor(max_workers=1)
        self.manager, self.client = self._thread.submit(self._start).result(timeout=120)

    @staticmethod
    def _start() -> Any:
        from jupyter_client.manager import KernelManager

        manager = KernelManager(kernel_name="python3")
        manager.start_kernel()
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        return manager, client

    async def run(self, code: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, execute, self.client, code)

    def run_now(self, code: str) -> dict[str, Any]:
        return self._thread.submit(execute, self.client, code).result(timeout=READ_S)

    def close(self) -> None:
        def stop() -> None:
            self.client.stop_channels()
            self.manager.shutdown_kernel(now=True)

        self._thread.submit(stop).result(timeout=60)
        self._thread.shutdown()


@pytest.fixture(scope="module")
def kernel() -> Any:
    """One real IPython kernel for the module (starting one takes a second or two)."""
    kernel = Kernel()
    yield kernel
    kernel.close()


def execute(client: Any, code: str) -> dict[str, Any]:
    """Runs `code` and collects what a notebook would show, as the sidebar sends it."""
    msg_id = client.execute(code)
    outputs: list[dict[str, str]] = []
    error = None
    count = None
    while True:
        msg = client.get_iopub_msg(timeout=READ_S)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "execute_input":
            count = content["execution_count"]
        elif kind == "stream":
            outputs.append({"output_type": "stream", "text": content["text"][:4000]})
        elif kind in ("execute_result", "display_data"):
            text = content["data"].get("text/plain", "")[:4000]
            outputs.append({"output_type": kind, "text": text})
        elif kind == "error":
            error = {
                "ename": content["ename"],
                "evalue": content["evalue"],
                "traceback": content["traceback"],
            }
        elif kind == "status" and content["execution_state"] == "idle":
            break
    return {
        "status": "error" if error else "ok",
        "execution_count": count,
        "outputs": outputs[:20],
        "error": error,
    }


CELLS = ["import math", "values = [1, 4, 9]"]


@pytest.fixture
def notebook(jp_root_dir: Path, kernel: Any) -> Path:
    """nb.ipynb with two cells, both already run in the kernel (as the user had)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    path = jp_root_dir / "nb.ipynb"
    nbformat.write(nb, str(path))
    for source in CELLS:
        assert kernel.run_now(source)["status"] == "ok"
    return path


def sources(path: Path) -> list[str]:
    return [cell.source for cell in nbformat.read(str(path), as_version=4).cells]


def call(name: str, content: str = "", **arguments: Any) -> dict[str, Any]:
    reply: dict[str, Any] = {"tool_calls": [{"name": name, "arguments": arguments}]}
    if content:
        reply["content"] = content
    return reply


def model_requests(fake_llm: Any) -> list[dict[str, Any]]:
    return [r for r in fake_llm.requests if "messages" in r]


def tool_messages(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m.get("role") == "tool"]


class Sidebar:
    """Plays the sidebar for one user: answers approvals and suggestions as told."""

    def __init__(self, ws: Any, fetch: Any, user: str, root: Path, kernel: Any) -> None:
        self.ws = ws
        self.fetch = fetch
        self.user = user
        self.root = root
        self.kernel = kernel
        self.on_suggestion: Callable[[dict[str, Any]], str | None] = lambda s: None
        self.on_approval: Callable[[dict[str, Any]], str | None] = lambda f: "allow"
        self.done: set[str] = set()  # suggestions applied or rejected
        self.runs: list[dict[str, Any]] = []  # the approval frames this client ran
        self.asked: list[dict[str, Any]] = []  # the approval frames it was asked

    async def read(self) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.read_message(), READ_S)
        assert raw is not None, "socket closed"
        return json.loads(raw)

    def send(self, **frame: Any) -> None:
        self.ws.write_message(json.dumps(frame))

    def chat(self, msg_id: str, text: str, conv: str = "c-run", **agent: bool) -> None:
        context = {
            "notebook_path": "nb.ipynb",
            "agent": {
                "can_run": agent.get("can_run", True),
                "auto_apply": agent.get("auto_apply", False),
            },
        }
        self.send(type="chat", id=msg_id, conversation_id=conv, text=text, context=context)

    async def suggestion(self, sid: str, action: str) -> None:
        await self.fetch(
            "rubberduck",
            "api",
            "suggestions",
            sid,
            action,
            method="POST",
            body="{}",
            headers=auth(self.user),
        )
        self.done.add(sid)

    async def run(self, frame: dict[str, Any]) -> None:
        for sid in frame["suggestion_ids"]:
            if sid not in self.done:
                await self.suggestion(sid, "apply")
        cells = nbformat.read(str(self.root / frame["path"]), as_version=4).cells
        cell = next(
            (c for c in cells if frame["cell_id"] and c.get("id") == frame["cell_id"]), None
        )
        cell = cell or cells[frame["cell_index"] - 1]
        assert cell.source == frame["source"], "the cell is not what the agent expects"
        self.runs.append(frame)
        result = await self.kernel.run(cell.source)
        self.send(type="run_result", id=frame["id"], approval_id=frame["approval_id"], **result)

    async def turn(self, msg_id: str, text: str, conv: str = "c-run", **agent: bool) -> list[Any]:
        """Sends the message and answers what comes until the turn's done or error."""
        self.chat(msg_id, text, conv, **agent)
        return await self.follow(msg_id)

    async def follow(self, msg_id: str, until: Callable[[dict[str, Any]], bool] | None = None):
        frames = []
        while True:
            frame = await self.read()
            if frame.get("id") != msg_id:
                continue
            frames.append(frame)
            if frame["type"] == "suggestion":
                action = self.on_suggestion(frame["suggestion"])
                if action is not None:
                    await self.suggestion(frame["suggestion"]["id"], action)
            elif frame["type"] == "approval" and frame.get("auto"):
                if frame["kind"] != "tool":  # a tool call is the server's to make
                    await self.run(frame)
            elif frame["type"] == "approval":
                self.asked.append(frame)
                decision = self.on_approval(frame)
                if decision is not None:
                    self.send(
                        type="approve",
                        id=msg_id,
                        approval_id=frame["approval_id"],
                        decision=decision,
                    )
                    if decision != "deny" and frame["kind"] != "tool":
                        await self.run(frame)
            if frame["type"] in ("done", "error") or (until is not None and until(frame)):
                return frames


@pytest.fixture
def sidebar(jp_ws_fetch: Any, jp_fetch: Any, jp_root_dir: Path, kernel: Any) -> Any:
    async def open_as(user: str = "alice") -> Sidebar:
        ws = await jp_ws_fetch("rubberduck", "ws", headers=auth(user))
        client = Sidebar(ws, jp_fetch, user, jp_root_dir, kernel)
        assert (await client.read())["type"] == "hello"
        return client

    return open_as


async def index_project(jp_fetch: Any) -> None:
    # Only the helper module: the search is what is tested, not indexing.
    body = json.dumps({"paths": ["helpers.py"]})
    await jp_fetch("rubberduck", "api", "index", method="POST", body=body, headers=auth("alice"))
    for _ in range(600):
        status = json.loads(
            (await jp_fetch("rubberduck", "api", "index", headers=auth("alice"))).body
        )
        if status["state"] != "indexing":
            return
        await asyncio.sleep(0.1)
    raise AssertionError("indexing did not finish")


BROKEN = "roots = [math.sqrt(v - 5) for v in values]\nprint(roots)"
FIXED = "roots = [math.sqrt(v) for v in values]\nprint(roots)"


async def test_a_scripted_task_reads_searches_inserts_runs_fixes_and_runs_again(
    sidebar: Any, fake_llm: Any, notebook: Path, jp_root_dir: Path, jp_fetch: Any, app: Any
) -> None:
    (jp_root_dir / "helpers.py").write_text(
        'def square_roots(values):\n    """The square root of each value."""\n'
        "    import math\n    return [math.sqrt(v) for v in values]\n"
    )
    await index_project(jp_fetch)
    fake_llm.set_replies(
        [
            call("list_cells"),
            call("search_project", query="square roots of values"),
            call("insert_cell", "I'll add the computation below cell 2.", after=2, source=BROKEN),
            call("run_cell", cell=3),
            call("replace_cell", cell=3, source=FIXED),
            call("run_cell", cell=3),
            "Cell 3 now prints the square roots.",
        ]
    )
    client = await sidebar()
    client.on_suggestion = lambda s: "apply"
    frames = await client.turn("t1", "/agent print the square roots of values below cell 2")
    assert frames[-1]["type"] == "done", frames[-1]

    assert sources(notebook) == [*CELLS, FIXED]
    assert len(client.asked) == 2 and all(f["kind"] == "run" for f in client.asked)
    assert [f["cell_index"] for f in client.asked] == [3, 3]
    closed = [f for f in frames if f["type"] == "approval.closed"]
    assert [f["reason"] for f in closed] == ["answered", "answered"]
    # The model saw the error of the first run and the output of the second.
    requests = model_requests(fake_llm)
    assert "ValueError: math domain error" in tool_messages(requests[4])[-1]
    assert "[1.0, 2.0, 3.0]" in tool_messages(requests[6])[-1]
    assert "helpers.py" in tool_messages(requests[2])[-1]
    # Steps carry their tool call for the sidebar, and where they sit in the answer.
    started = [f for f in frames if f["type"] == "step" and f["status"] == "started"]
    assert [f["tool"]["name"] for f in started] == [
        "list_cells",
        "search_project",
        "insert_cell",
        "run_cell",
        "replace_cell",
        "run_cell",
    ]
    assert started[3]["tool"]["cell_index"] == 3 and started[3]["tool"]["path"] == "nb.ipynb"
    intro = "I'll add the computation below cell 2."
    assert started[2]["tool"]["answer_at"] >= len(intro)
    store = app.conversations
    answer = [m for m in await store.messages("c-run") if m.role == "assistant"][-1]
    assert answer.content.startswith(intro)
    assert [s["answer_at"] for s in answer.meta["steps"]][:2] == [0, 0]
    client.ws.close()


async def test_a_rejected_edit_is_not_applied_and_a_declined_run_is_told(
    sidebar: Any, fake_llm: Any, notebook: Path
) -> None:
    fake_llm.set_replies(
        [
            call("insert_cell", after=2, source=FIXED),
            call("run_cell", cell=1),
            "Understood.",
        ]
    )
    client = await sidebar()
    client.on_suggestion = lambda s: "reject"
    client.on_approval = lambda f: "deny"
    frames = await client.turn("t1", "/agent add the square roots")
    assert frames[-1]["type"] == "done"
    assert sources(notebook) == CELLS
    assert client.runs == []  # nothing ran without approval
    suggestion = next(f["suggestion"] for f in frames if f["type"] == "suggestion")
    requests = model_requests(fake_llm)
    told = json.dumps([r["messages"] for r in requests[1:]])
    assert f"rejected (it is not in the notebook) suggestion {suggestion['id']}" in told
    assert "declined to run cell 1" in tool_messages(requests[2])[-1]


async def test_allow_for_the_conversation_stops_asking_in_the_next_turn(
    sidebar: Any, fake_llm: Any, notebook: Path
) -> None:
    fake_llm.set_replies(
        [call("run_cell", cell=2), "Ran it.", call("run_cell", cell=1), "Ran it again."]
    )
    client = await sidebar()
    client.on_approval = lambda f: "allow_conversation"
    assert (await client.turn("t1", "/agent run cell 2"))[-1]["type"] == "done"
    second = await client.turn("t2", "/agent now run cell 1")
    assert second[-1]["type"] == "done"
    assert len(client.asked) == 1  # asked once, in the first turn
    auto = [f for f in second if f["type"] == "approval"]
    assert len(auto) == 1 and auto[0]["auto"] is True and auto[0]["cell_index"] == 1
    assert [f["cell_index"] for f in client.runs] == [2, 1]
    assert "without error" in tool_messages(model_requests(fake_llm)[3])[-1]


async def test_stop_while_waiting_for_approval_ends_the_turn_and_closes_it(
    sidebar: Any, fake_llm: Any, notebook: Path
) -> None:
    fake_llm.set_replies([call("run_cell", cell=1), "never reached"])
    client = await sidebar()
    client.on_approval = lambda f: None  # the user does not answer: they press Stop
    client.chat("t1", "/agent run cell 1")
    asked = await client.follow("t1", until=lambda f: f["type"] == "approval")
    approval = asked[-1]
    client.send(type="cancel", id="t1")
    rest = await client.follow("t1")
    closed = [f for f in rest if f["type"] == "approval.closed"]
    assert [f["reason"] for f in closed] == ["cancelled"]
    assert rest[-1]["type"] == "done" and rest[-1]["finish_reason"] == "cancelled"
    # Too late: the approval is gone.
    client.send(type="approve", id="t1", approval_id=approval["approval_id"], decision="allow")
    refusal = await client.read()
    while refusal["type"] != "error":  # the stopped step's "finished" may come first
        refusal = await client.read()
    assert refusal["code"] == "unknown_id"
    assert client.runs == []


async def test_another_user_cannot_answer_someone_elses_approval(
    sidebar: Any, fake_llm: Any, notebook: Path
) -> None:
    fake_llm.set_replies([call("run_cell", cell=1), "Fine."])
    alice = await sidebar("alice")
    alice.on_approval = lambda f: None
    alice.chat("t1", "/agent run cell 1")
    approval = (await alice.follow("t1", until=lambda f: f["type"] == "approval"))[-1]
    bob = await sidebar("bob")
    bob.send(type="approve", id="t1", approval_id=approval["approval_id"], decision="allow")
    assert (await bob.read())["code"] == "unknown_id"
    result = {"status": "ok", "execution_count": 1, "outputs": [], "error": None}
    bob.send(type="run_result", id="t1", approval_id=approval["approval_id"], **result)
    assert (await bob.read())["code"] == "unknown_id"
    # Alice's approval is still open: her answer is taken.
    alice.send(type="approve", id="t1", approval_id=approval["approval_id"], decision="deny")
    rest = await alice.follow("t1")
    assert [f["reason"] for f in rest if f["type"] == "approval.closed"] == ["answered"]
    assert rest[-1]["type"] == "done"
    assert "declined" in tool_messages(model_requests(fake_llm)[1])[-1]
    # A result for an approval that was denied is refused too.
    alice.send(type="run_result", id="t1", approval_id=approval["approval_id"], **result)
    assert (await alice.read())["code"] == "unknown_id"


async def test_an_unanswered_run_times_out_and_the_model_is_told(
    sidebar: Any, fake_llm: Any, notebook: Path, app: Any
) -> None:
    agent = app.sessions.engines.get("agent")
    agent.run_timeout_s = 0.3
    fake_llm.set_replies([call("run_cell", cell=1), "The user is away."])
    client = await sidebar()
    client.on_approval = lambda f: None
    frames = await client.turn("t1", "/agent run cell 1")
    assert frames[-1]["type"] == "done"
    assert [f["reason"] for f in frames if f["type"] == "approval.closed"] == ["timeout"]
    assert "did not answer" in tool_messages(model_requests(fake_llm)[1])[-1]


async def test_a_client_that_cannot_run_is_offered_no_run_tools(
    sidebar: Any, fake_llm: Any, notebook: Path
) -> None:
    fake_llm.set_replies([call("run_cell", cell=1), "I cannot run it."])
    client = await sidebar()
    frames = await client.turn("t1", "/agent run cell 1", can_run=False)
    assert frames[-1]["type"] == "done"
    assert not [f for f in frames if f["type"] == "approval"]
    first = model_requests(fake_llm)[0]
    names = {t["function"]["name"] for t in first["tools"]}
    assert "run_cell" not in names and "interrupt_kernel" not in names and "read_cell" in names
    assert "no tool named 'run_cell'" in tool_messages(model_requests(fake_llm)[1])[-1]


async def test_an_approval_stays_open_across_a_dropped_socket_and_a_resume(
    sidebar: Any, fake_llm: Any, notebook: Path
) -> None:
    fake_llm.set_replies([call("run_cell", cell=2), "It ran."])
    first = await sidebar()
    first.on_approval = lambda f: None
    first.chat("t1", "/agent run cell 2")
    asked = await first.follow("t1", until=lambda f: f["type"] == "approval")
    first.ws.close()  # the tab reloads before the user answers
    second = await sidebar()
    second.send(type="resume", id="t1", after=asked[0]["n"] - 1)
    frames = await second.follow("t1")
    replayed = [f for f in frames if f["type"] == "approval"]
    assert [f["approval_id"] for f in replayed] == [asked[-1]["approval_id"]]
    assert frames[-1]["type"] == "done"
    assert [f["cell_index"] for f in second.runs] == [2]
    assert "ran without error" in tool_messages(model_requests(fake_llm)[1])[-1]


async def test_auto_apply_marks_the_agents_suggestions(
    sidebar: Any, fake_llm: Any, notebook: Path
) -> None:
    wider = "values = [1, 4, 9, 16]"
    fake_llm.set_replies([call("replace_cell", cell=2, source=wider), "Done."])
    client = await sidebar()
    client.on_suggestion = lambda s: "apply" if s.get("auto_apply") else None
    frames = await client.turn("t1", "/agent add 16 to the values", auto_apply=True)
    suggestion = next(f["suggestion"] for f in frames if f["type"] == "suggestion")
    assert suggestion["auto_apply"] is True
    assert sources(notebook) == [CELLS[0], wider]


async def test_an_approval_wait_counts_against_the_turns_time_limit(
    sidebar: Any, fake_llm: Any, notebook: Path, app: Any
) -> None:
    agent = app.sessions.engines.get("agent")
    agent.max_seconds = 0.5  # the run timeout stays 120 s: the turn's limit is the bound
    fake_llm.set_replies([call("run_cell", cell=1), "never reached"])
    client = await sidebar()
    client.on_approval = lambda f: None
    frames = await client.turn("t1", "/agent run cell 1")
    assert frames[-1]["type"] == "done"
    assert [f["reason"] for f in frames if f["type"] == "approval.closed"] == ["timeout"]
    notices = [f for f in frames if f["type"] == "notice"]
    assert [n["code"] for n in notices] == ["agent_limit"]
    assert "time limit" in notices[0]["message"]
    assert len(model_requests(fake_llm)) == 1


@pytest.mark.parametrize("mcp_permission", ["write"])
async def test_an_mcp_write_tool_asks_and_a_run_grant_does_not_cover_it(
    sidebar: Any, fake_llm: Any, notebook: Path, tmp_path: Path
) -> None:
    calls = tmp_path / "mcp-calls.txt"
    fake_llm.set_replies(
        [
            call("run_cell", cell=2),
            call("ops__write_note", text="allowed"),
            call("ops__write_note", text="declined"),
            "One note written.",
        ]
    )
    client = await sidebar()
    decisions = iter(["allow_conversation", "allow", "deny"])
    client.on_approval = lambda f: next(decisions)
    frames = await client.turn("t1", "/agent run cell 2 and write notes")
    assert frames[-1]["type"] == "done", frames[-1]
    offered = {t["function"]["name"] for t in model_requests(fake_llm)[0]["tools"]}
    assert "ops__write_note" in offered
    # Runs allowed for the whole conversation, and still each MCP call asked.
    assert [f["kind"] for f in client.asked] == ["run", "tool", "tool"]
    tool = client.asked[1]
    assert tool["title"] == "Call ops: write_note" and tool["path"] is None
    assert tool["tool"] == {"server": "ops", "name": "write_note", "permission": "write"}
    assert json.loads(tool["source"]) == {"text": "allowed"}
    assert [f["cell_index"] for f in client.runs] == [2]  # the sidebar ran only the cell
    # Allowed: called by the server; declined: never reached it, and the model was told.
    assert calls.read_text().splitlines() == ["write_note allowed"]
    results = tool_messages(model_requests(fake_llm)[-1])
    assert results[1] == "written"
    assert "declined the call to ops's write_note" in results[2]
    closed = [f["reason"] for f in frames if f["type"] == "approval.closed"]
    assert closed == ["answered", "answered", "answered"]
    client.ws.close()
