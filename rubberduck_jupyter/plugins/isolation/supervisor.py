"""One supervisor per untrusted plugin: start, restart with backoff, stop, health.

    sup = PluginSupervisor(PluginTarget.from_path("/plugins/hello.py"))
    record = await admit_isolated(registry, sup)   # policy first: denied code never runs
    ...
    await sup.stop()

Restart policy. When the worker dies (a limit, a crash, a malformed frame, a call that would
not stop), the calls in flight fail at once with the cause, the state becomes `restarting`,
and a new worker starts after a backoff: 0.5 s, doubling to 30 s. The backoff resets when
the worker that died had run for `stable_after_s` (60 s): a plugin that crashes once an hour
restarts in half a second each time, one that crashes at once stops costing CPU after a
few tries (at 30 s between attempts a crash-looping import costs ~1% of one core).

A restart re-imports the plugin; its handshake (spec, commands, hooks) must equal the one
first loaded, since the registry admitted that one (a name, permissions and commands an admin
saw). A different one is refused (state `stopped`, with the differences); reload the plugins
to admit the new code through the registry.

Calls while the worker is restarting or stopped fail fast with `WorkerUnavailable`, which
the registry's guard counts as a failure like any other: the chat turn never waits on a
restart, and a plugin that stays down through `max_consecutive_failures` calls (3) is
disabled by the registry, which is the same rule in-process plugins live under.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from ..context import CommandContext
from ..discovery import Candidate, folder_candidates
from ..registry import PluginRecord, PluginRegistry, PluginState
from . import rpc
from .process import HandshakeError, PluginTarget, WorkerDied, WorkerLimits, WorkerProcess
from .proxy import build_proxy

log = logging.getLogger(__name__)

# Importing a plugin that pulls in pandas takes ~1 s on the dev machine; 10 s leaves room
# for a cold disk without letting a hung import hold up server start for long.
DEFAULT_HANDSHAKE_TIMEOUT_S = 10.0
# Time a worker gets to exit after stdin closes before SIGKILL; it only has to notice EOF.
DEFAULT_STOP_GRACE_S = 2.0
# After a cancel (the guard's timeout) a worker whose loop is free answers within
# milliseconds; one that stays silent for a second is blocked and is restarted.
DEFAULT_CANCEL_GRACE_S = 1.0
DEFAULT_BACKOFF_INITIAL_S = 0.5
DEFAULT_BACKOFF_MAX_S = 30.0
DEFAULT_STABLE_AFTER_S = 60.0

State = Literal["new", "starting", "running", "restarting", "stopped"]


class WorkerUnavailable(RuntimeError):
    """A call made while the worker is restarting or stopped; the message says which."""


class PluginSupervisor:
    """Owns the worker of one untrusted plugin and the proxy the registry admits."""

    def __init__(
        self,
        target: PluginTarget,
        *,
        limits: WorkerLimits | None = None,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
        stop_grace_s: float = DEFAULT_STOP_GRACE_S,
        cancel_grace_s: float = DEFAULT_CANCEL_GRACE_S,
        backoff_initial_s: float = DEFAULT_BACKOFF_INITIAL_S,
        backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
        stable_after_s: float = DEFAULT_STABLE_AFTER_S,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.target = target
        self.name = target.name
        self.limits = limits or WorkerLimits()
        self.handshake_timeout_s = handshake_timeout_s
        self.stop_grace_s = stop_grace_s
        self.cancel_grace_s = cancel_grace_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stable_after_s = stable_after_s
        self.python = python
        self.env = env
        self.state: State = "new"
        self.restarts = 0
        self.last_exit_reason = ""
        self.reason = ""  # why the supervisor is stopped, when it is not by request
        self.hello: dict[str, Any] | None = None  # the first good handshake
        self._failure: BaseException | None = None  # why there is no proxy
        self._proxy: ModuleType | None = None
        self._proc: WorkerProcess | None = None
        self._live: set[WorkerProcess] = set()  # every worker not yet ended, current or not
        self._last_stderr: list[str] = []  # the tail of the last worker that ended
        self._restart_task: asyncio.Task[None] | None = None
        self._streak = 0  # restarts since the last worker that ran stable_after_s
        self._next_restart_at = 0.0
        self._stopping = False
        self._calls = 0
        self._rpc_errors = 0  # of workers no longer current

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker and read its handshake. Never raises for the plugin's faults:
        a failure is kept and raised by `proxy_module()` (so the registry lists it)."""
        if self.state != "new":
            raise RuntimeError(f"supervisor for {self.name!r} was already started")
        self.state = "starting"
        proc = self._new_process()
        try:
            hello = await self._handshake(proc)
        except HandshakeError as exc:
            self._failure = ImportError(f"{exc} (isolated worker; see its stderr in the log)")
        else:
            if hello.get("ok") is True:
                try:
                    self._proxy = build_proxy(hello, self)
                except Exception as exc:  # PluginSpecError, ProtocolError
                    self._failure = exc
                else:
                    self.hello = hello
                    self._proc = proc
                    self.state = "running"
                    return
            else:
                self._failure = rpc.raise_payload(hello.get("error"))
        self.reason = f"not loaded: {type(self._failure).__name__}: {self._failure}"
        self.state = "stopped"
        await proc.close(self.stop_grace_s)

    def proxy_module(self) -> ModuleType:
        """The module for `PluginRegistry.admit`; raises why the worker could not load it
        (the exception the plugin raised at import, or a PluginSpecError)."""
        if self._proxy is None:
            raise self._failure or RuntimeError(f"supervisor for {self.name!r}: start() first")
        return self._proxy

    @property
    def proxy(self) -> ModuleType | None:
        """The proxy module once a worker has loaded the plugin, else None."""
        return self._proxy

    def candidate(self) -> Candidate:
        """The discovery candidate whose `load()` returns the proxy."""
        return Candidate(
            name=self.name,
            source=self.target.source,
            kind=self.target.source_kind,
            load=self.proxy_module,
        )

    async def stop(self) -> None:
        """Stop the worker (stdin closes, SIGKILL after `stop_grace_s`) and any restart."""
        self._stopping = True
        task, self._restart_task = self._restart_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for proc in list(self._live):
            await proc.close(self.stop_grace_s)
        if self._proc is not None:
            self._absorb(self._proc)
        if self.state != "stopped" or not self.reason:
            self.reason = self.reason or "stopped by the server"
        self.state = "stopped"

    def _new_process(self) -> WorkerProcess:
        proc = WorkerProcess(
            self.target,
            self.limits,
            python=self.python,
            env=self.env,
            cancel_grace_s=self.cancel_grace_s,
            on_exit=self._on_exit,
        )
        self._live.add(proc)
        return proc

    async def _handshake(self, proc: WorkerProcess) -> dict[str, Any]:
        try:
            await proc.spawn()
            return await proc.handshake(self.handshake_timeout_s)
        except OSError as exc:  # the interpreter could not be started at all
            self._live.discard(proc)
            raise HandshakeError(
                f"cannot start a worker for {self.name!r} with {self.python!r}: {exc}; "
                "check the python the supervisor was given"
            ) from None
        except BaseException:  # cancelled by stop(), or no handshake: never leave it running
            proc.kill("the supervisor gave up on its handshake")
            raise

    def _absorb(self, proc: WorkerProcess) -> None:
        """Fold a finished worker's counters into the totals."""
        if proc is self._proc:
            self._proc = None
            self._calls += proc.calls
            self._rpc_errors += proc.rpc_errors
            self._last_stderr = list(proc.stderr_tail)[-5:]

    def _on_exit(self, proc: WorkerProcess) -> None:
        self._live.discard(proc)
        if proc is not self._proc or self._stopping:
            return
        self.last_exit_reason = proc.exit_reason or ""
        log.warning("plugin %r: %s; restarting", self.name, self.last_exit_reason)
        ran_s = time.monotonic() - proc.started_at
        self._absorb(proc)
        if ran_s >= self.stable_after_s:
            self._streak = 0
        self.state = "restarting"
        self._restart_task = asyncio.create_task(self._restart(), name=f"restart-{self.name}")

    async def _restart(self) -> None:
        while not self._stopping:
            delay = backoff_delay(self._streak, self.backoff_initial_s, self.backoff_max_s)
            self._streak += 1
            self._next_restart_at = time.monotonic() + delay
            await asyncio.sleep(delay)
            proc = self._new_process()
            try:
                hello = await self._handshake(proc)
            except HandshakeError as exc:
                self.last_exit_reason = str(exc)
                continue
            if hello.get("ok") is not True:
                problem = rpc.raise_payload(hello.get("error"))
                self.last_exit_reason = (
                    f"restart of {self.name!r} failed: {type(problem).__name__}: {problem}"
                )
                await proc.close(self.stop_grace_s)
                continue
            changed = _differences(self.hello or {}, hello)
            if changed:
                await proc.close(self.stop_grace_s)
                self.reason = (
                    f"restart refused: plugin {self.name!r} changed since it was loaded "
                    f"({'; '.join(changed)}); reload the plugins to admit the new code"
                )
                self.state = "stopped"
                log.warning("plugin %r: %s", self.name, self.reason)
                return
            self._proc = proc
            self.restarts += 1
            self.state = "running"
            log.info("plugin %r: worker restarted (pid %s)", self.name, proc.pid)
            return

    # -- calls (the proxy's Caller) -------------------------------------------------------

    def _current(self) -> WorkerProcess:
        proc = self._proc
        if self.state == "running" and proc is not None and proc.alive:
            return proc
        if self.state == "restarting":
            wait_s = max(0.0, self._next_restart_at - time.monotonic())
            raise WorkerUnavailable(
                f"worker for {self.name!r} is restarting after: {self.last_exit_reason}; "
                f"next attempt in {wait_s:.1f} s"
            )
        raise WorkerUnavailable(
            f"worker for {self.name!r} is {self.state}"
            + (f" ({self.reason})" if self.reason else "")
            + "; restart the server or reload the plugins"
        )

    async def call_command(self, name: str, args: list[str], ctx: CommandContext) -> Any:
        body = {
            "args": args,
            "ctx": {
                "text": ctx.text,
                "context": dict(ctx.context),
                "has_model": ctx.has_model,
                "user": ctx.user,
            },
        }
        return await self._current().call("command", name, body, ctx)

    async def call_hook(self, name: str, kwargs: dict[str, Any]) -> Any:
        return await self._current().call("hook", name, {"kwargs": kwargs})

    # -- health ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        proc = self._proc
        live = proc is not None and proc.alive
        return {
            "name": self.name,
            "state": self.state,
            "pid": proc.pid if live and proc is not None else None,
            "restarts": self.restarts,
            "last_exit_reason": self.last_exit_reason,
            "reason": self.reason,
            "calls": self._calls + (proc.calls if proc is not None else 0),
            "rpc_errors": self._rpc_errors + (proc.rpc_errors if proc is not None else 0),
            "uptime_s": round(time.monotonic() - proc.started_at, 3) if live and proc else 0.0,
            "limits": {
                "memory_mib": self.limits.memory_mib,
                "cpu_s": self.limits.cpu_s,
                "nofile": self.limits.nofile,
            },
            "stderr_tail": list(proc.stderr_tail)[-5:] if proc is not None else self._last_stderr,
        }


def backoff_delay(streak: int, initial_s: float, max_s: float) -> float:
    """Seconds before restart number `streak + 1` since the last stable run: doubling."""
    return float(min(max_s, initial_s * 2 ** min(streak, 32)))


def _differences(first: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    out = []
    for key in ("name", "version", "api", "permissions", "provides", "description"):
        a, b = first.get("spec", {}).get(key), now.get("spec", {}).get(key)
        if a != b:
            out.append(f"{key} {a!r} -> {b!r}")
    for key in ("commands", "hooks"):
        if first.get(key) != now.get(key):
            out.append(f"{key} differ")
    return out


def supervisors_for_folder(folder: str | Path, **options: Any) -> list[PluginSupervisor]:
    """One (unstarted) supervisor per plugin of `folder`, found by the same rules and in the
    same order as `discovery.folder_candidates` (files and package dirs, sorted, no `_`)."""
    out = []
    for cand in folder_candidates(folder):
        path = Path(cand.source)
        target = PluginTarget.from_path(path.parent if path.name == "__init__.py" else path)
        out.append(PluginSupervisor(target, **options))
    return out


async def admit_isolated(registry: PluginRegistry, supervisor: PluginSupervisor) -> PluginRecord:
    """Admit an untrusted plugin through its worker.

    The access policy is checked before the worker starts (denied code never runs, not even
    in a worker); when the registry does not load the plugin (skipped, failed) the worker is
    stopped, so only loaded plugins hold a process.
    """
    if registry.policy.refusal(supervisor.name) is None:
        await supervisor.start()
    record = registry.admit(supervisor.candidate())
    if record.state is not PluginState.LOADED:
        await supervisor.stop()
    return record


__all__ = [
    "PluginSupervisor",
    "WorkerDied",
    "WorkerUnavailable",
    "admit_isolated",
    "backoff_delay",
    "supervisors_for_folder",
]
