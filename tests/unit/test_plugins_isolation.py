"""Untrusted plugins in real worker subprocesses: handshake, RPC, permissions, limits, restarts.

Each test starts its own worker(s) (~0.1 s each on the 2-core dev machine) from
tests/plugin_fixtures/untrusted/ and stops them; backoffs are shortened so restarts take
milliseconds, not the production half second.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import rubberduck_jupyter
from rubberduck_jupyter.plugins import (
    CommandContext,
    CommandError,
    HookManager,
    PermissionRefused,
    PluginRegistry,
    hookimpl,
    plugin,
)
from rubberduck_jupyter.plugins.hooks import HOOK_NAMES, HookSpecs
from rubberduck_jupyter.plugins.isolation import (
    PluginSupervisor,
    PluginTarget,
    WorkerDied,
    WorkerLimits,
    WorkerUnavailable,
    admit_isolated,
)
from rubberduck_jupyter.plugins.isolation.proxy import _HOOK_FACTORIES

FIXTURES = Path(__file__).resolve().parents[1] / "plugin_fixtures" / "untrusted"
WORKTREE = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(15)


class RecordingServices:
    """The server's side of ctx: answers and remembers every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def say(self, markdown: str) -> None:
        self.calls.append(("say", markdown))

    async def check(self, code: str) -> list[dict[str, Any]]:
        self.calls.append(("check", code))
        return []

    async def test_skeleton(self, source: str) -> str:
        self.calls.append(("test_skeleton", source))
        return ""

    async def ask(self, prompt: str, *, system: str | None, checked: bool) -> str:
        self.calls.append(("ask", (prompt, system, checked)))
        return "the answer is 42"

    async def search(self, query: str, *, top_k: int) -> list[dict[str, Any]]:
        self.calls.append(("search", query))
        return []

    async def read_file(self, path: str) -> str:
        self.calls.append(("read_file", path))
        return ""

    async def suggest(self, code: str, *, title: str, mode: str) -> dict[str, Any] | None:
        self.calls.append(("suggest", code))
        return None


def supervisor(path: Path, **kw: Any) -> PluginSupervisor:
    kw.setdefault("backoff_initial_s", 0.02)
    kw.setdefault("cancel_grace_s", 0.3)
    return PluginSupervisor(PluginTarget.from_path(path), **kw)


def ctx_for(name: str, permissions: frozenset[str] = frozenset(), **kw: Any) -> CommandContext:
    return CommandContext(plugin=name, permissions=permissions, services=RecordingServices(), **kw)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def until(predicate: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def good_plugin() -> AsyncIterator[tuple[PluginRegistry, PluginSupervisor]]:
    """A registry with tests/plugin_fixtures/untrusted/good.py loaded in a worker.

    (An async context manager, not a fixture: this suite's runner has no async fixtures.)
    """
    reg = PluginRegistry(command_timeout_s=1.0, hook_timeout_s=1.0)
    sup = supervisor(FIXTURES / "good.py")
    try:
        rec = await admit_isolated(reg, sup)
        assert rec.state == "loaded", rec.reason
        yield reg, sup
    finally:
        await sup.stop()


@pytest.mark.timeout(10)
def test_the_worktrees_package_is_the_one_tested() -> None:
    # The worker imports the package from the server's own root (process.child_env), so
    # both sides must be this checkout, not another install of rubberduck_jupyter.
    assert Path(rubberduck_jupyter.__file__).resolve().is_relative_to(WORKTREE)


@pytest.mark.timeout(10)
def test_every_hook_has_a_proxy_with_the_hookspecs_argument_names() -> None:
    assert set(_HOOK_FACTORIES) == set(HOOK_NAMES)
    for name, factory in _HOOK_FACTORIES.items():

        async def call(hook: str, kwargs: dict[str, Any]) -> None: ...

        proxy_args = factory(call).__code__.co_varnames[: factory(call).__code__.co_argcount]
        spec_fn = getattr(HookSpecs, name)
        spec_args = spec_fn.__code__.co_varnames[1 : spec_fn.__code__.co_argcount]
        assert proxy_args == spec_args, name


@pytest.mark.timeout(10)
async def test_handshake_of_a_good_plugin() -> None:
    async with good_plugin() as (reg, sup):
        row = reg.list()[0]
        assert row["name"] == "good" and row["state"] == "loaded"
        assert row["source"] == f"{FIXTURES / 'good.py'} (isolated worker)"
        assert row["provides"] == ["generation"] and row["permissions"] == []
        hello = sup.hello
        assert hello is not None
        assert hello["spec"]["description"] == "Test plugin run in an isolation worker"
        assert {c["name"] for c in hello["commands"]} >= {"echo", "asks", "hog", "noop"}
        echo = next(c for c in hello["commands"] if c["name"] == "echo")
        assert echo == {
            "name": "echo",
            "help": "Echo the argument and what ctx carried",
            "args": ["TEXT", "MORE?"],
        }
        assert hello["hooks"] == [
            {"name": "pre_input", "tryfirst": True, "trylast": False},
            {"name": "route_hint", "tryfirst": False, "trylast": False},
        ]
        rec = reg.get("good")
        assert rec is not None and rec.hooks == ("pre_input", "route_hint")
        health = sup.health()
        assert health["state"] == "running" and health["restarts"] == 0
        assert health["pid"] != os.getpid() and alive(health["pid"])
        # The declared args drive the registry's usage check as for in-process plugins.
        with pytest.raises(CommandError, match=r"usage: /echo TEXT \[MORE\]"):
            await reg.run_command("echo", ctx_for("good"), [])


@pytest.mark.timeout(15)
@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        (
            "broken_import.py",
            "import failed: ModuleNotFoundError: No module named 'rubberduck_no_such_module_xyz'",
        ),
        (
            "bad_spec.py",
            "plugin 'bad_spec': permissions: 'netwrk' is not a permission; did you mean "
            "'network'? use one of read_index, read_files, call_model, propose_edits, "
            "write_files, network",
        ),
        ("bad_hook.py", "plugin 'bad_hook': hooks: "),
    ],
)
async def test_a_plugin_that_cannot_load_is_failed_with_its_reason(
    fixture: str, reason: str
) -> None:
    reg = PluginRegistry()
    sup = supervisor(FIXTURES / fixture)
    rec = await admit_isolated(reg, sup)
    assert rec.state == "failed"
    assert rec.reason.startswith(reason), rec.reason
    if fixture == "bad_hook.py":
        assert "'txt'" in rec.reason or "txt" in rec.reason  # pluggy names the argument
    assert sup.health()["state"] == "stopped" and sup.health()["pid"] is None
    assert psutil.Process().children() == []


@pytest.mark.timeout(15)
async def test_a_denied_plugin_never_starts_a_worker() -> None:
    from rubberduck_jupyter.plugins import AccessPolicy

    reg = PluginRegistry(policy=AccessPolicy.of(deny=["good"]))
    sup = supervisor(FIXTURES / "good.py")
    rec = await admit_isolated(reg, sup)
    assert rec.state == "skipped" and "denied" in rec.reason
    assert sup.health()["pid"] is None and sup.hello is None


@pytest.mark.timeout(10)
async def test_a_command_round_trip_carries_args_and_ctx_data() -> None:
    async with good_plugin() as (reg, sup):
        ctx = ctx_for("good", text="/echo hi", user="ada", context={"active_cell": "x = 1"})
        got = await reg.run_command("echo", ctx, ["hi", "there"])
        assert got["text"] == "hi" and got["more"] == "there"
        assert (got["ctx_text"], got["user"], got["cell"], got["has_model"]) == (
            "/echo hi",
            "ada",
            "x = 1",
            False,
        )
        assert got["pid"] == sup.health()["pid"] != os.getpid()
        assert (await reg.run_command("echo", ctx, ["solo"]))["more"] is None
        # The plugin's print() went to stderr (logged), not into the RPC channel.
        await until(lambda: "echo printed this" in sup.health()["stderr_tail"])
        with pytest.raises(CommandError, match=r"/boom raised ValueError: boom from the worker"):
            await reg.run_command("boom", ctx, [])


@pytest.mark.timeout(10)
async def test_the_worker_does_not_inherit_the_servers_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUBBERDUCK_API_KEY", "sk-secret")
    reg = PluginRegistry()
    sup = supervisor(FIXTURES / "good.py")
    try:
        await admit_isolated(reg, sup)
        assert await reg.run_command("secret", ctx_for("good"), []) is None
    finally:
        await sup.stop()


@pytest.mark.timeout(15)
async def test_ctx_ask_is_refused_in_the_server_without_call_model_and_answered_with_it() -> None:
    async with good_plugin() as (reg, _):
        ctx = ctx_for("good")
        got = await reg.run_command("asks", ctx, [])
        # Raised inside the plugin (it caught it) as the very same exception and message.
        assert got == {
            "refused": "PermissionRefused",
            "message": str(PermissionRefused("good", "ask", "call_model")),
        }
        assert ctx.services.calls == []  # type: ignore[attr-defined]

        sup2 = supervisor(FIXTURES / "modelled.py")
        try:
            assert (await admit_isolated(reg, sup2)).state == "loaded"
            ctx2 = ctx_for("modelled", frozenset({"call_model"}))
            assert await reg.run_command("asks2", ctx2, []) == "the answer is 42"
            assert ctx2.services.calls == [("ask", ("what?", "be brief", False))]  # type: ignore[attr-defined]
        finally:
            await sup2.stop()


@pytest.mark.timeout(10)
async def test_a_ctx_wider_than_the_declared_permissions_is_refused() -> None:
    async with good_plugin() as (reg, _):
        ctx = ctx_for("good", frozenset({"call_model"}))
        with pytest.raises(CommandError, match="did not declare"):
            await reg.run_command("asks", ctx, [])
        assert ctx.services.calls == []  # type: ignore[attr-defined]


@pytest.mark.timeout(10)
async def test_an_isolated_hook_keeps_pluggy_order_beside_an_in_process_plugin() -> None:
    async with good_plugin() as (reg, _):

        class Local:
            @hookimpl
            def pre_input(self, text: str) -> str:
                return text + " [local]"

            @hookimpl
            def route_hint(self, text: str) -> str | None:
                return "local-engine"

        spec = plugin(name="local", version="1.0", api=">=1,<2")
        assert reg.register_builtin(spec, Local()).state == "loaded"
        # local registered last would run first (LIFO); good's tryfirst puts it ahead.
        assert await reg.hooks.pre_input("hi", {"cell": 1}) == "hi [good] [local]"
        # route_hint without tryfirst: LIFO, so the in-process plugin answers first.
        assert await reg.hooks.route_hint("route me", {}) == "local-engine"
        reg.disable("local", "test")
        assert await reg.hooks.route_hint("route me", {}) == "isolated-engine"
        assert reg.health()["good"]["calls_by_hook"] == {"pre_input": 1, "route_hint": 1}


@pytest.mark.timeout(15)
async def test_a_plugin_over_its_memory_limit_is_killed_and_restarted() -> None:
    reg = PluginRegistry(command_timeout_s=5.0)
    sup = supervisor(FIXTURES / "good.py", limits=WorkerLimits(memory_mib=256))
    try:
        await admit_isolated(reg, sup)
        first_pid = sup.health()["pid"]
        with pytest.raises(CommandError) as err:
            await reg.run_command("hog", ctx_for("good"), [])
        assert "worker for 'good' was killed: memory limit 256 MiB (RLIMIT_AS)" in str(err.value)
        assert not alive(first_pid)
        await until(lambda: sup.health()["state"] == "running")
        health = sup.health()
        assert health["restarts"] == 1 and health["pid"] != first_pid
        assert health["last_exit_reason"] == (
            "worker for 'good' was killed: memory limit 256 MiB (RLIMIT_AS)"
        )
        got = await reg.run_command("echo", ctx_for("good"), ["again"])
        assert got["text"] == "again" and got["pid"] == health["pid"]
    finally:
        await sup.stop()


@pytest.mark.timeout(15)
async def test_a_plugin_over_its_cpu_limit_is_killed_with_that_reason() -> None:
    reg = PluginRegistry(command_timeout_s=8.0)
    sup = supervisor(FIXTURES / "good.py", limits=WorkerLimits(cpu_s=1))
    try:
        await admit_isolated(reg, sup)
        with pytest.raises(
            CommandError, match=r"was killed: CPU limit 1 s \(RLIMIT_CPU, SIGXCPU\)"
        ):
            await reg.run_command("spin", ctx_for("good"), [])
        await until(lambda: sup.health()["state"] == "running")
    finally:
        await sup.stop()


@pytest.mark.timeout(15)
async def test_a_hanging_async_command_is_cut_and_the_worker_stays_usable() -> None:
    async with good_plugin() as (reg, sup):
        pid = sup.health()["pid"]
        started = time.monotonic()
        with pytest.raises(CommandError, match=r"/nap timed out after 1 s"):
            await reg.run_command("nap", ctx_for("good"), ["30"])
        assert time.monotonic() - started < 2.0
        # The worker cancelled the task (asyncio): same process, still answering.
        assert await reg.run_command("nap", ctx_for("good"), ["0"]) == pid
        assert sup.health()["restarts"] == 0


@pytest.mark.timeout(15)
async def test_a_command_blocking_the_workers_loop_is_cut_and_the_worker_restarted() -> None:
    async with good_plugin() as (reg, sup):
        pid = sup.health()["pid"]
        started = time.monotonic()
        with pytest.raises(CommandError, match=r"/block timed out after 1 s"):
            await reg.run_command("block", ctx_for("good"), [])
        assert time.monotonic() - started < 2.0  # the server's loop was never blocked
        await until(lambda: sup.health()["restarts"] == 1 and sup.health()["state"] == "running")
        assert not alive(pid)
        assert (
            "/block did not stop within 0.3 s of being cancelled"
            in sup.health()["last_exit_reason"]
        )
        assert (await reg.run_command("echo", ctx_for("good"), ["ok"]))["text"] == "ok"


@pytest.mark.timeout(10)
async def test_calls_overlap_in_one_worker() -> None:
    async with good_plugin() as (reg, _):
        started = time.monotonic()
        pids = await asyncio.gather(
            *[reg.run_command("nap", ctx_for("good"), ["0.3"]) for _ in range(5)]
        )
        assert len(set(pids)) == 1
        assert time.monotonic() - started < 1.0  # 5 x 0.3 s in sequence would be 1.5 s


@pytest.mark.timeout(10)
async def test_a_malformed_frame_from_the_worker_is_a_clear_error_not_a_hang() -> None:
    async with good_plugin() as (reg, sup):
        started = time.monotonic()
        with pytest.raises(CommandError) as err:
            await reg.run_command("garble", ctx_for("good"), [])
        assert time.monotonic() - started < 1.0
        message = str(err.value)
        assert "worker for 'good' was killed: it sent a malformed frame" in message
        assert "over the 4194304 byte limit" in message
        assert sup.health()["rpc_errors"] == 1
        await until(lambda: sup.health()["state"] == "running")


@pytest.mark.timeout(10)
async def test_hook_calls_while_restarting_fail_fast_and_count_toward_disabling() -> None:
    reg = PluginRegistry(max_consecutive_failures=2)
    sup = supervisor(FIXTURES / "good.py", backoff_initial_s=5.0)
    try:
        await admit_isolated(reg, sup)
        with pytest.raises(CommandError):
            await reg.run_command("hog", ctx_for("good"), [])  # failure 1; now restarting
        assert sup.health()["state"] == "restarting"
        with pytest.raises(WorkerUnavailable, match="is restarting after: worker for 'good' was"):
            await sup.call_hook("pre_input", {"text": "x", "context": {}})
        started = time.monotonic()
        assert await reg.hooks.pre_input("x", {}) == "x"  # failure 2: disabled
        assert time.monotonic() - started < 0.5
        rec = reg.get("good")
        assert rec is not None and rec.state == "disabled"
        assert "is restarting" in rec.reason
    finally:
        await sup.stop()


@pytest.mark.timeout(15)
async def test_a_restart_whose_handshake_changed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "good.py"
    shutil.copy(FIXTURES / "good.py", path)
    reg = PluginRegistry()
    sup = supervisor(path)
    try:
        await admit_isolated(reg, sup)
        # (a different size, so a .pyc written in the same second is not reused)
        path.write_text(path.read_text().replace('version="1.0"', 'version="1.0.1"'))
        with pytest.raises(CommandError):
            await reg.run_command("hog", ctx_for("good"), [])
        await until(lambda: sup.health()["state"] == "stopped")
        assert sup.health()["reason"] == (
            "restart refused: plugin 'good' changed since it was loaded (version '1.0' -> "
            "'1.0.1'); reload the plugins to admit the new code"
        )
        with pytest.raises(WorkerUnavailable, match="restart refused"):
            await sup.call_hook("pre_input", {"text": "x", "context": {}})
    finally:
        await sup.stop()
    assert psutil.Process().children() == []


@pytest.mark.timeout(10)
async def test_a_handshake_that_never_comes_times_out(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(30)\n")
    reg = PluginRegistry()
    sup = supervisor(tmp_path / "slow.py", handshake_timeout_s=0.5)
    started = time.monotonic()
    rec = await admit_isolated(reg, sup)
    assert time.monotonic() - started < 3.0
    assert rec.state == "failed"
    assert "it sent no handshake within 0.5 s" in rec.reason
    assert psutil.Process().children() == []


@pytest.mark.timeout(10)
async def test_stop_leaves_no_child_no_fd_and_no_task() -> None:
    fds_before = len(os.listdir("/proc/self/fd"))
    tasks_before = len(asyncio.all_tasks())
    reg = PluginRegistry()
    sup = supervisor(FIXTURES / "good.py")
    await admit_isolated(reg, sup)
    pid = sup.health()["pid"]
    assert psutil.Process().children()[0].pid == pid
    pending = asyncio.ensure_future(reg.run_command("nap", ctx_for("good"), ["30"]))
    await asyncio.sleep(0.1)
    await sup.stop()
    with pytest.raises(CommandError, match="worker for 'good' was stopped by the server"):
        await pending
    assert not alive(pid)
    assert psutil.Process().children() == []
    assert sup.health()["state"] == "stopped"
    await asyncio.sleep(0)  # let the transports' close callbacks run
    assert len(os.listdir("/proc/self/fd")) == fds_before
    assert len(asyncio.all_tasks()) == tasks_before
    with pytest.raises(WorkerUnavailable, match="is stopped"):
        await sup.call_command("echo", ["x"], ctx_for("good"))


@pytest.mark.timeout(10)
async def test_in_flight_calls_fail_at_once_when_the_worker_dies() -> None:
    async with good_plugin() as (_, sup):
        pid = sup.health()["pid"]
        pending = asyncio.ensure_future(sup.call_command("nap", ["30"], ctx_for("good")))
        await asyncio.sleep(0.1)
        os.kill(pid, 9)
        started = time.monotonic()
        with pytest.raises(WorkerDied, match=r"worker for 'good' was killed by SIGKILL"):
            await pending
        assert time.monotonic() - started < 1.0


def test_the_proxy_passes_hookmanager_checks_without_a_worker() -> None:
    # The proxy's hooks are real pluggy implementations: registering one in a bare
    # HookManager works (no wrapper, the hookspec's names), so admission cannot refuse it.
    from rubberduck_jupyter.plugins.isolation.proxy import build_proxy

    class NoCaller:
        async def call_command(self, *a: Any) -> None: ...
        async def call_hook(self, *a: Any) -> None: ...

    hello = {
        "spec": {"name": "p", "version": "1", "api": ">=1", "permissions": [], "provides": []},
        "commands": [{"name": "x", "help": "h", "args": ["A", "B?"]}],
        "hooks": [{"name": h, "tryfirst": False, "trylast": True} for h in HOOK_NAMES],
    }
    module = build_proxy(hello, NoCaller())
    assert HookManager().register("p", module) == sorted(HOOK_NAMES)
    assert sys.modules.get(module.__name__) is None  # never put in sys.modules


@pytest.mark.timeout(10)
async def test_a_plugins_own_subprocess_dies_with_its_worker() -> None:
    async with good_plugin() as (reg, sup):
        grandchild = await reg.run_command("spawn", ctx_for("good"), [])
        assert alive(grandchild)
        os.kill(sup.health()["pid"], 9)
        await until(lambda: not alive(grandchild), timeout_s=3.0)
        await until(lambda: sup.health()["state"] == "running")
    assert psutil.Process().children(recursive=True) == []


class SlowSay(RecordingServices):
    async def say(self, markdown: str) -> None:
        await asyncio.sleep(0.2)
        self.calls.append(("say", markdown))


@pytest.mark.timeout(10)
async def test_ctx_calls_in_flight_are_bounded() -> None:
    async with good_plugin() as (reg, _):
        services = SlowSay()
        ctx = CommandContext(plugin="good", permissions=frozenset(), services=services)
        got = await reg.run_command("flood", ctx, [])
        assert got["errors"] >= 100 - 32
        assert "(limit 32); await each ctx call before making the next" in got["first"]
        assert 1 <= len(services.calls) <= 32


def test_backoff_doubles_to_its_cap() -> None:
    from rubberduck_jupyter.plugins.isolation.supervisor import backoff_delay

    assert [backoff_delay(n, 0.5, 30.0) for n in range(8)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        30.0,
        30.0,
    ]
    assert backoff_delay(10_000, 0.5, 30.0) == 30.0


@pytest.mark.timeout(15)
async def test_the_backoff_resets_after_a_stable_run() -> None:
    reg = PluginRegistry()
    sup = supervisor(FIXTURES / "good.py", backoff_initial_s=0.2, stable_after_s=0.5)
    try:
        await admit_isolated(reg, sup)
        for expected_restarts in (1, 2):  # 0.2 s then 0.4 s: the streak grows
            os.kill(sup.health()["pid"], 9)
            await until(lambda n=expected_restarts: sup.health()["restarts"] == n)
        assert sup._streak == 2
        await asyncio.sleep(0.6)  # now it ran longer than stable_after_s
        started = time.monotonic()
        os.kill(sup.health()["pid"], 9)
        await until(lambda: sup.health()["restarts"] == 3)
        assert time.monotonic() - started < 0.4 + 0.3  # back to 0.2 s, not 0.8 s
        assert sup._streak == 1
    finally:
        await sup.stop()


@pytest.mark.timeout(10)
async def test_an_entry_point_plugin_runs_isolated_by_its_module_name() -> None:
    reg = PluginRegistry()
    target = PluginTarget.from_entry_point("good", "good")
    sup = PluginSupervisor(target, env={"PYTHONPATH": str(FIXTURES)})
    try:
        rec = await admit_isolated(reg, sup)
        assert rec.state == "loaded", rec.reason
        assert (rec.kind, rec.source) == (
            "entry_point",
            "entry point good = good (isolated worker)",
        )
        assert (await reg.run_command("echo", ctx_for("good"), ["ep"]))["text"] == "ep"
    finally:
        await sup.stop()


@pytest.mark.timeout(15)
async def test_stop_during_a_restarts_handshake_leaves_no_worker(tmp_path: Path) -> None:
    path = tmp_path / "good.py"
    shutil.copy(FIXTURES / "good.py", path)
    reg = PluginRegistry()
    sup = supervisor(path, handshake_timeout_s=10.0)
    await admit_isolated(reg, sup)
    first = sup.health()["pid"]
    path.write_text("import time\ntime.sleep(30)\n" + path.read_text())  # the import hangs now
    os.kill(first, 9)

    def new_worker() -> bool:
        return any(
            p.pid != first and "isolation.worker" in " ".join(p.cmdline())
            for p in psutil.Process().children()
        )

    await until(new_worker)
    await asyncio.sleep(0.3)  # past the spawn: the new worker is importing (and hangs there)
    assert sup.health()["state"] == "restarting"
    await sup.stop()
    assert psutil.Process().children(recursive=True) == []
    assert sup.health()["state"] == "stopped"


@pytest.mark.timeout(10)
async def test_a_python_that_cannot_start_is_a_failed_record_not_a_crash() -> None:
    reg = PluginRegistry()
    sup = supervisor(FIXTURES / "good.py", python="/nonexistent/python3")
    rec = await admit_isolated(reg, sup)
    assert rec.state == "failed"
    assert "cannot start a worker for 'good' with '/nonexistent/python3'" in rec.reason


@pytest.mark.timeout(10)
async def test_the_open_files_limit_holds_inside_the_worker() -> None:
    async with good_plugin() as (reg, sup):
        got = await reg.run_command("fds", ctx_for("good"), [])
        assert got["error"].startswith("[Errno 24] Too many open files")
        assert 40 <= got["opened"] < 64  # the worker itself holds a few of the 64
        assert sup.health()["state"] == "running"  # an OSError is the plugin's to handle


@pytest.mark.timeout(10)
async def test_a_folder_gives_one_supervisor_per_plugin_like_discovery(tmp_path: Path) -> None:
    from rubberduck_jupyter.plugins.isolation import supervisors_for_folder

    (tmp_path / "_private.py").write_text("")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text(
        "from rubberduck_jupyter.plugins import plugin\n"
        "spec = plugin(name='pkg', version='1', api='>=1')\n"
    )
    shutil.copy(FIXTURES / "noop.py", tmp_path / "noop.py")
    sups = supervisors_for_folder(tmp_path, backoff_initial_s=0.02)
    assert [(s.name, s.target.kind) for s in sups] == [("noop", "file"), ("pkg", "package")]
    reg = PluginRegistry()
    try:
        records = [await admit_isolated(reg, s) for s in sups]
        assert [r.state for r in records] == ["loaded", "loaded"]
        assert records[1].source == f"{tmp_path / 'pkg' / '__init__.py'} (isolated worker)"
    finally:
        for s in sups:
            await s.stop()
