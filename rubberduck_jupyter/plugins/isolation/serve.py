"""The worker's side of the RPC: load one plugin, send the handshake, serve calls.

Runs inside the worker process (worker.py sets the limits first). Every call is a task, so a
command waiting on `ctx.ask` does not hold up a hook. The plugin's `ctx` is `WorkerContext`:
the same data and method names as `CommandContext`, each method an RPC call to the server,
where `call_method` on the real context checks the permission. A refusal comes back as the
same `PermissionRefused` (same message), raised here inside the plugin's code.

Writes to the RPC fd are blocking `os.write` loops on the loop thread: a frame is written
whole before the next one starts, so frames from concurrent tasks never interleave, and
the server reads continuously, so the pipe (64 KiB) does not stay full.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import inspect
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..context import METHOD_PERMISSIONS, ContextView
from ..discovery import _import_path, _private_name
from ..hooks import HookManager
from ..spec import PluginSpec, PluginSpecError, commands_of, validate_command, validate_spec
from . import rpc
from .rpc import EXIT_MEMORY, EXIT_PROTOCOL

# The worker's RPC output fd, for tests that play a hostile plugin writing raw bytes to it
# (the plugin shares the process, so this hides nothing from it).
RPC_OUT_FD: int | None = None


def load_plugin(args: argparse.Namespace) -> object:
    """Import the plugin the way the in-process loader does (same private module names)."""
    if args.module:
        return importlib.metadata.EntryPoint(
            name=args.name, value=args.module, group="rubberduck.plugins"
        ).load()
    if args.package:
        pkg = Path(args.package).resolve()
        return _import_path(_private_name(pkg.parent, pkg.name), pkg / "__init__.py", pkg)
    path = Path(args.file).resolve()
    return _import_path(_private_name(path.parent, path.stem), path, None)


def describe(name: str, module: object) -> tuple[dict[str, Any], dict[str, Any]]:
    """(handshake, hook name -> pluggy HookImpl) for a loaded module, or raise
    PluginSpecError like the registry would."""
    spec = getattr(module, "spec", None)
    if not isinstance(spec, PluginSpec):
        raise PluginSpecError(
            name,
            "spec",
            "the module has no `spec = plugin(name=..., version=..., api=...)`; add one",
        )
    validate_spec(spec)
    commands = commands_of(module)
    for cmd in commands:
        validate_command(spec.name, cmd)
    # The registry's own hook checks (unknown hook, wrong argument names, wrappers), run on
    # a scratch manager: the server's proxy takes every argument, so it cannot check them.
    manager = HookManager()
    manager.register(spec.name, module)
    hooks = []
    impls: dict[str, Any] = {}
    for caller in manager.pm.get_hookcallers(module) or []:
        for impl in caller.get_hookimpls():
            impls[caller.name] = impl
            hooks.append({"name": caller.name, "tryfirst": impl.tryfirst, "trylast": impl.trylast})
    described = {
        "spec": {
            "name": spec.name,
            "version": spec.version,
            "api": spec.api,
            "permissions": sorted(spec.permissions),
            "provides": sorted(spec.provides),
            "description": spec.description,
        },
        "commands": [{"name": c.name, "help": c.help, "args": list(c.args)} for c in commands],
        "hooks": sorted(hooks, key=lambda h: h["name"]),
    }
    return described, impls


def _memory_kib() -> dict[str, int]:
    """VmPeak / VmRSS of this process from /proc (Linux); {} elsewhere."""
    out: dict[str, Any] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmPeak", "VmSize", "VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


class WorkerContext(ContextView):
    """The plugin's `ctx` in the worker: CommandContext's data and methods, over the RPC."""

    def __init__(self, worker: Worker, call_id: int, plugin: str, data: Mapping[str, Any]) -> None:
        self._worker = worker
        self._call = call_id
        self.plugin = plugin
        self.permissions = frozenset(worker.permissions)
        self.text = str(data.get("text", ""))
        context = data.get("context")
        self.context = context if isinstance(context, dict) else {}
        self.has_model = bool(data.get("has_model", False))
        self.user = str(data.get("user", ""))

    async def _rpc(self, method: str, *args: Any, **kwargs: Any) -> Any:
        assert method in METHOD_PERMISSIONS
        return await self._worker.ctx_call(self._call, method, list(args), kwargs)

    async def say(self, markdown: str) -> None:
        await self._rpc("say", markdown)

    async def check(self, code: str) -> list[dict[str, Any]]:
        return await self._rpc("check", code)  # type: ignore[no-any-return]

    async def test_skeleton(self, source: str) -> str:
        return await self._rpc("test_skeleton", source)  # type: ignore[no-any-return]

    async def ask(self, prompt: str, *, system: str | None = None, checked: bool = False) -> str:
        return await self._rpc("ask", prompt, system=system, checked=checked)  # type: ignore[no-any-return]

    async def search(self, query: str, *, top_k: int = 5) -> list[dict[str, Any]]:
        return await self._rpc("search", query, top_k=top_k)  # type: ignore[no-any-return]

    async def read_file(self, path: str) -> str:
        return await self._rpc("read_file", path)  # type: ignore[no-any-return]

    async def suggest(
        self, code: str, *, title: str = "", mode: str = "replace"
    ) -> dict[str, Any] | None:
        return await self._rpc("suggest", code, title=title, mode=mode)  # type: ignore[no-any-return]


class Worker:
    """One plugin, one RPC channel."""

    def __init__(self, args: argparse.Namespace, rpc_in: int, rpc_out: int) -> None:
        global RPC_OUT_FD
        RPC_OUT_FD = rpc_out
        self.args = args
        self.rpc_in = rpc_in
        self.rpc_out = rpc_out
        self.permissions: frozenset[str] = frozenset()
        self.commands: dict[str, Any] = {}
        self.hooks: dict[str, Any] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.ctx_pending: dict[int, asyncio.Future[Any]] = {}
        self._next_ctx = 0
        self.closing = False

    def send(self, message: dict[str, Any]) -> None:
        if self.closing:
            return
        view = memoryview(rpc.encode(message))
        while view:
            n = os.write(self.rpc_out, view)
            view = view[n:]

    def handshake(self) -> dict[str, Any]:
        name = self.args.name
        try:
            module = load_plugin(self.args)
        except MemoryError:
            raise
        except PluginSpecError as exc:
            return {"t": "hello", "ok": False, "error": rpc.error_payload(exc)}
        except BaseException as exc:  # SystemExit and KeyboardInterrupt at import too
            return {"t": "hello", "ok": False, "stage": "import", "error": rpc.error_payload(exc)}
        try:
            described, self.hooks = describe(name, module)
        except PluginSpecError as exc:
            return {"t": "hello", "ok": False, "error": rpc.error_payload(exc)}
        except Exception as exc:
            return {"t": "hello", "ok": False, "stage": "load", "error": rpc.error_payload(exc)}
        self.permissions = frozenset(described["spec"]["permissions"])
        self.commands = {c.name: c for c in commands_of(module)}
        return {
            "t": "hello",
            "ok": True,
            "pid": os.getpid(),
            "memory_kib": _memory_kib(),
            **described,
        }

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=rpc.MAX_FRAME_BYTES)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(self.rpc_in, "rb", 0)
        )
        hello = self.handshake()
        self.send(hello)
        if not hello["ok"]:
            return 0
        while True:
            try:
                message = await rpc.read_frame(reader, rpc.TO_WORKER)
            except rpc.ProtocolError as exc:
                print(f"rubberduck plugin worker: {exc}; exiting", file=sys.stderr)
                return EXIT_PROTOCOL
            if message is None:  # the server closed stdin: a graceful stop
                break
            self.dispatch(message)
        # Nobody reads answers any more: the server fails the calls in flight itself.
        self.closing = True
        for task in list(self.tasks.values()):
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        return 0

    def dispatch(self, message: dict[str, Any]) -> None:
        kind = message["t"]
        if kind == "call":
            call_id = message.get("id")
            if isinstance(call_id, int):
                self.tasks[call_id] = asyncio.create_task(self.run_call(call_id, message))
        elif kind == "cancel":
            task = self.tasks.get(message.get("id"))  # type: ignore[arg-type]
            if task is not None:
                task.cancel()
        elif kind == "ctx_result":
            future = self.ctx_pending.pop(message.get("id"), None)  # type: ignore[arg-type]
            if future is not None and not future.done():
                if message.get("ok"):
                    future.set_result(message.get("value"))
                else:
                    future.set_exception(rpc.raise_payload(message.get("error")))

    async def ctx_call(
        self, call_id: int, method: str, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        self._next_ctx += 1
        ctx_id = self._next_ctx
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.ctx_pending[ctx_id] = future
        try:
            self.send(
                {
                    "t": "ctx",
                    "id": ctx_id,
                    "call": call_id,
                    "method": method,
                    "args": args,
                    "kwargs": kwargs,
                }
            )
            return await future
        finally:
            self.ctx_pending.pop(ctx_id, None)

    async def run_call(self, call_id: int, message: dict[str, Any]) -> None:
        try:
            value = await self.invoke(call_id, message)
            reply: dict[str, Any] = {"t": "result", "id": call_id, "ok": True, "value": value}
            try:
                self.send(reply)
            except (TypeError, ValueError, rpc.ProtocolError) as exc:
                label = _label(message)
                err = TypeError(f"{label} returned a value the RPC cannot carry: {exc}")
                self.send(
                    {"t": "result", "id": call_id, "ok": False, "error": rpc.error_payload(err)}
                )
        except MemoryError:
            os.write(2, b"rubberduck plugin worker: MemoryError (memory limit); exiting\n")
            os._exit(EXIT_MEMORY)
        except asyncio.CancelledError:
            error = {"type": "CancelledError", "message": "cancelled by the server"}
            self.send({"t": "result", "id": call_id, "ok": False, "error": error})
        except BaseException as exc:  # SystemExit in a call is the call's failure, not ours
            self.send({"t": "result", "id": call_id, "ok": False, "error": rpc.error_payload(exc)})
        finally:
            self.tasks.pop(call_id, None)

    async def invoke(self, call_id: int, message: dict[str, Any]) -> Any:
        name = message.get("name")
        if message.get("op") == "command":
            cmd = self.commands.get(name)  # type: ignore[arg-type]
            if cmd is None:
                raise LookupError(f"the plugin has no command {name!r}")
            ctx = WorkerContext(self, call_id, self.args.name, message.get("ctx") or {})
            return await cmd.handler(ctx, *list(message.get("args") or []))
        impl = self.hooks.get(name)  # type: ignore[arg-type]
        if impl is None:
            raise LookupError(f"the plugin has no hook {name!r}")
        kwargs = message.get("kwargs") or {}
        result = impl.function(*[kwargs[arg] for arg in impl.argnames])
        if inspect.isawaitable(result):
            result = await result
        return result


def _label(message: dict[str, Any]) -> str:
    name = message.get("name")
    return f"/{name}" if message.get("op") == "command" else str(name)
