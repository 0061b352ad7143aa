"""One worker process, seen from the server: spawn, handshake, calls, ctx, and how it ended.

`WorkerProcess` is one incarnation; the supervisor (supervisor.py) makes a new one after a
death. Each incarnation owns its pending calls, so a death fails exactly the calls that were
in flight on it, at once, with the reason (`worker for 'x' was killed: memory limit 512 MiB
(RLIMIT_AS)`), instead of leaving them to the guard's timeout.

Three things make a worker die on purpose (the reason is recorded before the SIGKILL):

- a malformed frame (too large, truncated, not JSON, unknown type): after one, the stream's
  framing cannot be trusted, so the worker is killed and restarted, never read further;
- a call that does not stop within `cancel_grace_s` (1 s) of being cancelled (the guard's
  timeout cancels our side; the worker is told; a worker whose loop is blocked by a
  `time.sleep` or a busy loop cannot answer, so it is restarted);
- `close()`, the graceful stop: stdin closes (the worker exits on EOF), then SIGKILL after
  `grace_s`.

The worker runs in its own session (process group), and kills go to the group, so
subprocesses a plugin started die with it (unless it moved them to a session of their own).

The child gets a minimal environment (PATH, HOME, locale, the venv, PYTHONPATH), not the
server's: provider API keys in the server's environment are not the plugin's to read.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..context import CommandContext, call_method
from . import rpc
from .rpc import CPU_HARD_GRACE_S, EXIT_MEMORY, EXIT_PROTOCOL

log = logging.getLogger(__name__)

WORKER_MODULE = "rubberduck_jupyter.plugins.isolation.worker"
# The directory that holds the rubberduck_jupyter package the server runs, put first on the
# worker's PYTHONPATH so both sides always run the same RPC code.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])
# Environment variables the worker inherits (everything else, API keys included, is dropped).
_ENV_KEEP = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "TZ",
    "VIRTUAL_ENV",
    "SYSTEMROOT",
)
# stderr: keep the last lines for exit reasons and health; log at most this many lines per
# minute per worker so a plugin printing in a loop cannot flood the server log.
STDERR_TAIL_LINES = 50
STDERR_LOG_PER_MINUTE = 60
_STDERR_LINE_CHARS = 1000
# How long the end of a worker may take at each step (exit after EOF, stderr drained, pipes
# closed); a worker that exits normally takes a few milliseconds.
EXIT_WAIT_S = 1.0
# ctx calls a worker may have in flight at once; each is a task in the server, so a plugin
# looping on ctx.say without awaiting must not create them without bound. A command uses 1.
MAX_CTX_IN_FLIGHT = 32


class WorkerDied(RuntimeError):
    """A call was in flight (or made) when its worker ended; the message says why."""


class HandshakeError(RuntimeError):
    """The worker never said hello (hung import, crash); the message says what happened."""


@dataclass(frozen=True)
class WorkerLimits:
    """Resource limits set in the worker before the plugin is imported (worker.py)."""

    # An idle worker needs 32 MiB of address space (VmPeak, measured); 512 MiB leaves a
    # plugin room for a pandas DataFrame of a few million cells and stops a runaway loop
    # long before it pushes a laptop into swap.
    memory_mib: int = 512
    # CPU seconds for the worker's whole life (RLIMIT_CPU is cumulative, not per call): a
    # plugin spending 30 s of CPU is a bug or a miner; it is restarted with a fresh budget.
    cpu_s: int = 30
    # Open files: the worker needs ~10 (pipes, /dev/null, imports); 64 stops an fd leak
    # loop well before the user's own limit (1024 by default) is at risk.
    nofile: int = 64


@dataclass(frozen=True)
class PluginTarget:
    """Where the worker finds the plugin: a file, a package directory, or an entry point."""

    name: str
    kind: Literal["file", "package", "module"]
    value: str

    @classmethod
    def from_path(cls, path: str | Path) -> PluginTarget:
        """A folder plugin: `x.py` or a package directory `x/` (with `__init__.py`)."""
        p = Path(path).expanduser().resolve()
        if p.is_dir():
            return cls(name=p.name, kind="package", value=str(p))
        return cls(name=p.stem, kind="file", value=str(p))

    @classmethod
    def from_entry_point(cls, name: str, value: str) -> PluginTarget:
        """An entry point `name = "pkg.mod"` (or `"pkg.mod:attr"`)."""
        return cls(name=name, kind="module", value=value)

    @property
    def source_kind(self) -> Literal["folder", "entry_point"]:
        return "entry_point" if self.kind == "module" else "folder"

    @property
    def source(self) -> str:
        shown = str(Path(self.value) / "__init__.py") if self.kind == "package" else self.value
        if self.kind == "module":
            shown = f"entry point {self.name} = {self.value}"
        return f"{shown} (isolated worker)"

    def argv(self) -> list[str]:
        return ["--name", self.name, f"--{self.kind}", self.value]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The worker's environment: a few safe variables, our package root first on
    PYTHONPATH, then `extra` (its PYTHONPATH is appended, never replaces our root)."""
    extra = dict(extra or {})
    env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
    paths = [_PACKAGE_ROOT]
    for value in (extra.pop("PYTHONPATH", ""), os.environ.get("PYTHONPATH", "")):
        paths += [p for p in value.split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"  # a plugin's prints reach the log when printed
    env.update(extra)
    return env


def describe_exit(name: str, returncode: int, limits: WorkerLimits, last_stderr: str) -> str:
    """Why a worker ended, from its return code, in words that say what to do."""
    who = f"worker for {name!r}"
    if returncode == EXIT_MEMORY:
        return f"{who} was killed: memory limit {limits.memory_mib} MiB (RLIMIT_AS)"
    if returncode == -signal.SIGXCPU:
        return (
            f"{who} was killed: CPU limit {limits.cpu_s} s (RLIMIT_CPU, SIGXCPU); the budget "
            "is for the worker's whole life, a restart gets a fresh one"
        )
    if returncode == -signal.SIGKILL:
        return (
            f"{who} was killed by SIGKILL from outside the server: the CPU hard limit "
            f"{limits.cpu_s + CPU_HARD_GRACE_S} s (RLIMIT_CPU), the system's OOM killer, or a "
            "user; see the system log"
        )
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode).name
        except ValueError:
            sig = f"signal {-returncode}"
        return f"{who} was killed by {sig}"
    tail = f" (last stderr: {last_stderr})" if last_stderr else ""
    if returncode == EXIT_PROTOCOL:
        return f"{who} exited: it could not read a frame from the server{tail}"
    return f"{who} exited with code {returncode}{tail}"


class WorkerProcess:
    """One incarnation of a plugin's worker."""

    def __init__(
        self,
        target: PluginTarget,
        limits: WorkerLimits,
        *,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        cancel_grace_s: float = 1.0,
        on_exit: Callable[[WorkerProcess], None] | None = None,
    ) -> None:
        self.target = target
        self.limits = limits
        self.python = python
        self.env = env
        self.cancel_grace_s = cancel_grace_s
        self.on_exit = on_exit
        self.proc: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self.exit_reason: str | None = None  # set once the process has ended
        self.returncode: int | None = None
        self.calls = 0
        self.rpc_errors = 0
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._kill_reason: str | None = None
        self._stop_requested = False
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ctx: dict[int, CommandContext] = {}
        self._ctx_tasks: dict[int, set[asyncio.Task[None]]] = {}
        self._cancel_timers: dict[int, asyncio.TimerHandle] = {}
        self._hello: asyncio.Future[dict[str, Any]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stray: set[asyncio.Task[None]] = set()  # ctx calls of no running command
        self._ended = asyncio.Event()
        self._log_window = (0.0, 0)  # (window start, lines logged in it)
        self._suppressed = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.exit_reason is None

    # -- lifecycle ----------------------------------------------------------------------

    async def spawn(self) -> None:
        limits = self.limits
        self.proc = await asyncio.create_subprocess_exec(
            self.python,
            "-m",
            WORKER_MODULE,
            *self.target.argv(),
            "--memory-mib",
            str(limits.memory_mib),
            "--cpu-s",
            str(limits.cpu_s),
            "--nofile",
            str(limits.nofile),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_env(self.env),
            start_new_session=True,
        )
        self.started_at = time.monotonic()
        self._hello = asyncio.get_running_loop().create_future()
        self._tasks = [
            asyncio.create_task(self._read_stdout(), name=f"rpc-read-{self.target.name}"),
            asyncio.create_task(self._read_stderr(), name=f"rpc-stderr-{self.target.name}"),
        ]

    async def handshake(self, timeout_s: float) -> dict[str, Any]:
        """The worker's hello message; `HandshakeError` if it dies or stays silent."""
        assert self._hello is not None, "spawn() first"
        try:
            return await asyncio.wait_for(asyncio.shield(self._hello), timeout_s)
        except TimeoutError:
            self.kill(
                f"it sent no handshake within {timeout_s:g} s (does importing the plugin hang "
                "or do heavy work at import time?)"
            )
            await self.wait()
            raise HandshakeError(self.exit_reason or "no handshake") from None
        except WorkerDied as exc:
            raise HandshakeError(str(exc)) from None

    def kill(self, reason: str) -> None:
        """SIGKILL the worker's process group, remembering why (the first reason wins)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        if self._kill_reason is None:
            self._kill_reason = reason
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    async def wait(self) -> None:
        await self._ended.wait()

    async def close(self, grace_s: float) -> None:
        """Graceful stop: close stdin (the worker exits on EOF), SIGKILL after `grace_s`."""
        if self.proc is None:
            return
        if self.exit_reason is None and self.proc.stdin is not None:
            self._stop_requested = True
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self._ended.wait(), grace_s)
            except TimeoutError:
                self.kill(f"it did not exit within {grace_s:g} s of being asked to stop")
        await self._ended.wait()

    # -- calls --------------------------------------------------------------------------

    async def call(
        self, op: str, name: str, body: dict[str, Any], ctx: CommandContext | None = None
    ) -> Any:
        """One call; its result, the plugin's exception, or `WorkerDied`."""
        if self.exit_reason is not None:
            raise WorkerDied(self.exit_reason)
        assert self.proc is not None and self.proc.stdin is not None
        self._next_id += 1
        call_id = self._next_id
        self.calls += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        label = f"/{name}" if op == "command" else name
        self._pending[call_id] = future
        if ctx is not None:
            self._ctx[call_id] = ctx
        try:
            self.proc.stdin.write(
                rpc.encode({"t": "call", "id": call_id, "op": op, "name": name, **body})
            )
            with contextlib.suppress(ConnectionError):  # a dead worker fails `future`
                await self.proc.stdin.drain()
            return await future
        except asyncio.CancelledError:
            self._cancel(call_id, label)
            raise
        finally:
            self._pending.pop(call_id, None)
            self._ctx.pop(call_id, None)
            for task in self._ctx_tasks.pop(call_id, set()):
                task.cancel()

    def _cancel(self, call_id: int, label: str) -> None:
        if self.exit_reason is not None or self.proc is None or self.proc.stdin is None:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            self.proc.stdin.write(rpc.encode({"t": "cancel", "id": call_id}))
        reason = (
            f"{label} did not stop within {self.cancel_grace_s:g} s of being cancelled (its "
            "code blocks the worker's event loop: time.sleep, a busy loop, blocking I/O; "
            "make it async or move the work to a thread)"
        )
        self._cancel_timers[call_id] = asyncio.get_running_loop().call_later(
            self.cancel_grace_s, self.kill, reason
        )

    def _send(self, message: dict[str, Any]) -> None:
        if self.exit_reason is None and self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self.proc.stdin.write(rpc.encode(message))

    # -- reading ------------------------------------------------------------------------

    async def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            while True:
                message = await rpc.read_frame(self.proc.stdout, rpc.FROM_WORKER)
                if message is None:
                    break
                self._on_message(message)
        except rpc.ProtocolError as exc:
            self.rpc_errors += 1
            log.warning("plugin %r worker: %s", self.target.name, exc)
            self.kill(f"it sent a malformed frame ({exc}); it is restarted")
        except Exception as exc:  # a bug in our dispatch: never leave calls hanging
            log.exception("plugin %r worker: reader failed", self.target.name)
            self.kill(f"the server could not read its frames ({type(exc).__name__}: {exc})")
        await self._finish()

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["t"]
        if kind == "hello":
            if self._hello is None or self._hello.done():
                raise rpc.ProtocolError("a second hello frame")
            self._hello.set_result(message)
            return
        if self._hello is None or not self._hello.done():
            raise rpc.ProtocolError(f"a {kind} frame before the hello")
        if kind == "result":
            call_id = message.get("id")
            timer = self._cancel_timers.pop(call_id, None)  # type: ignore[arg-type]
            if timer is not None:
                timer.cancel()
            future = self._pending.get(call_id)  # type: ignore[arg-type]
            if future is None or future.done():
                return  # a call we gave up on (cancelled); its late answer is dropped
            if message.get("ok") is True:
                future.set_result(message.get("value"))
            else:
                future.set_exception(rpc.raise_payload(message.get("error")))
        else:  # ctx
            call_id = message.get("call")
            in_flight = len(self._stray) + sum(len(t) for t in self._ctx_tasks.values())
            if in_flight >= MAX_CTX_IN_FLIGHT:
                error = RuntimeError(
                    f"{in_flight} ctx calls are already in flight (limit {MAX_CTX_IN_FLIGHT}); "
                    "await each ctx call before making the next"
                )
                self._send(
                    {
                        "t": "ctx_result",
                        "id": message.get("id"),
                        "ok": False,
                        "error": rpc.error_payload(error),
                    }
                )
                return
            task = asyncio.create_task(self._serve_ctx(message))
            if isinstance(call_id, int) and call_id in self._ctx:
                tasks = self._ctx_tasks.setdefault(call_id, set())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            else:
                self._stray.add(task)
                task.add_done_callback(self._stray.discard)

    async def _serve_ctx(self, message: dict[str, Any]) -> None:
        """Answer a ctx call with `call_method` on the command's real CommandContext."""
        ctx_id = message.get("id")
        try:
            ctx = self._ctx.get(message.get("call"))  # type: ignore[arg-type]
            method, args, kwargs = message.get("method"), message.get("args"), message.get("kwargs")
            if ctx is None:
                raise RuntimeError(
                    f"ctx.{method}() was called after its command ended; ctx is only usable "
                    "while its command runs"
                )
            if not isinstance(method, str) or not isinstance(args, list):
                raise TypeError("a ctx call needs a method name and a list of args")
            if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
                raise TypeError("a ctx call's kwargs must be an object of names")
            value = call_method(ctx, method, args, kwargs)
            if inspect.isawaitable(value):
                value = await value
            reply: dict[str, Any] = {"t": "ctx_result", "id": ctx_id, "ok": True, "value": value}
        except asyncio.CancelledError:
            return  # the command ended; nobody waits for this answer
        except Exception as exc:
            reply = {"t": "ctx_result", "id": ctx_id, "ok": False, "error": rpc.error_payload(exc)}
        try:
            self._send(reply)
        except (TypeError, ValueError, rpc.ProtocolError) as exc:
            error = rpc.error_payload(TypeError(f"ctx result cannot be sent: {exc}"))
            self._send({"t": "ctx_result", "id": ctx_id, "ok": False, "error": error})

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        partial = b""
        while True:
            chunk = await self.proc.stderr.read(65536)
            if not chunk:
                break
            lines = (partial + chunk).split(b"\n")
            partial = lines.pop()[-_STDERR_LINE_CHARS * 4 :]
            for raw in lines:
                self._stderr_line(raw.decode(errors="replace")[:_STDERR_LINE_CHARS])
        if partial:
            self._stderr_line(partial.decode(errors="replace")[:_STDERR_LINE_CHARS])

    def _stderr_line(self, line: str) -> None:
        line = line.rstrip()
        if not line:
            return
        self.stderr_tail.append(line)
        now = time.monotonic()
        start, count = self._log_window
        if now - start > 60:
            if self._suppressed:
                log.info(
                    "plugin %r: %d stderr lines not logged", self.target.name, self._suppressed
                )
            start, count, self._suppressed = now, 0, 0
        if count < STDERR_LOG_PER_MINUTE:
            log.info("plugin %r: %s", self.target.name, line)
            count += 1
        else:
            self._suppressed += 1
        self._log_window = (start, count)

    async def _finish(self) -> None:
        """The RPC stream ended: make sure the process is gone, then fail what was pending."""
        proc = self.proc
        assert proc is not None
        # `proc.returncode` is set when the process exits; `proc.wait()` (Python 3.11) also
        # waits for every pipe to close, which a plugin's own subprocess can hold open.
        if not await _poll(lambda: proc.returncode is not None, EXIT_WAIT_S):
            self.kill("it closed its RPC channel but kept running")
            await _poll(lambda: proc.returncode is not None, EXIT_WAIT_S)
        # Whatever the plugin started in the worker's process group goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        stderr_task = self._tasks[1]
        with contextlib.suppress(TimeoutError):  # a grandchild may hold stderr open
            await asyncio.wait_for(asyncio.shield(stderr_task), EXIT_WAIT_S)
        stderr_task.cancel()
        try:
            await asyncio.wait_for(proc.wait(), EXIT_WAIT_S)
        except TimeoutError:  # a pipe held by a process outside the group: drop our ends
            transport = getattr(proc, "_transport", None)
            if transport is not None:
                transport.close()
        self.returncode = self.proc.returncode
        assert self.returncode is not None
        who = f"worker for {self.target.name!r}"
        if self._kill_reason is not None:
            self.exit_reason = f"{who} was killed: {self._kill_reason}"
        elif self._stop_requested and self.returncode == 0:
            self.exit_reason = f"{who} was stopped by the server"
        else:
            last = self.stderr_tail[-1] if self.stderr_tail else ""
            self.exit_reason = describe_exit(self.target.name, self.returncode, self.limits, last)
        for timer in self._cancel_timers.values():
            timer.cancel()
        self._cancel_timers.clear()
        for future in [*self._pending.values(), self._hello]:
            if future is not None and not future.done():
                future.set_exception(WorkerDied(self.exit_reason))
                future.exception()  # retrieved: nobody may be waiting any more
        for tasks in self._ctx_tasks.values():
            for task in tasks:
                task.cancel()
        self._ended.set()
        if self.on_exit is not None:
            self.on_exit(self)


async def _poll(done: Callable[[], bool], timeout_s: float) -> bool:
    """Wait until `done()` (checked every 10 ms) or `timeout_s`; whether it became true."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True
