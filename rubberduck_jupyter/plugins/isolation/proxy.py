"""The proxy module: a worker's handshake as an object `PluginRegistry.admit` takes unchanged.

The registry never learns a plugin is isolated. It gets a module-like object with a real
`spec` (built by `plugin(...)`, so the same validation runs again in the server on data the
worker sent), one `async def` per command marked with `@command` (the declared args become
the handler's signature, so `validate_command` and the usage check work as for in-process
plugins), and one `async def` per hook marked with `@hookimpl(tryfirst=..., trylast=...)`.
Every proxy is async, so the HookManager's timeout, failure count and disabling apply to
untrusted plugins unchanged, and a sync hook that loops forever in the worker is cut by the
timeout instead of freezing the server's event loop.

pluggy reads a hook implementation's argument names from its code object, so each proxy
hook is a real function with exactly the hookspec's arguments (`_HOOK_FACTORIES`, checked
against `HookSpecs` by the tests); the worker passes each plugin function the subset it takes.
"""

from __future__ import annotations

import inspect
import keyword
import re
from collections.abc import Awaitable, Callable, Mapping
from types import ModuleType
from typing import Any, Protocol

from ..context import CommandContext
from ..hooks import HOOK_NAMES, hookimpl
from ..spec import PluginSpec, command, plugin
from . import rpc

HookCall = Callable[[str, dict[str, Any]], Awaitable[Any]]


class Caller(Protocol):
    """What the proxy needs from the supervisor."""

    async def call_command(self, name: str, args: list[str], ctx: CommandContext) -> Any: ...
    async def call_hook(self, name: str, kwargs: dict[str, Any]) -> Any: ...


def _pre_input(call: HookCall) -> Callable[..., Any]:
    async def pre_input(text: str, context: Mapping[str, Any]) -> Any:
        return await call("pre_input", {"text": text, "context": dict(context)})

    return pre_input


def _route_hint(call: HookCall) -> Callable[..., Any]:
    async def route_hint(text: str, context: Mapping[str, Any]) -> Any:
        return await call("route_hint", {"text": text, "context": dict(context)})

    return route_hint


def _post_response(call: HookCall) -> Callable[..., Any]:
    async def post_response(text: str, context: Mapping[str, Any]) -> Any:
        return await call("post_response", {"text": text, "context": dict(context)})

    return post_response


def _analysis_augment(call: HookCall) -> Callable[..., Any]:
    async def analysis_augment(
        source: str, findings: list[dict[str, Any]], context: Mapping[str, Any]
    ) -> Any:
        kwargs = {"source": source, "findings": list(findings), "context": dict(context)}
        return await call("analysis_augment", kwargs)

    return analysis_augment


# One factory per hook of HookSpecs; a hook added there without one here fails at import
# (below) and in the tests, instead of silently not reaching untrusted plugins.
_HOOK_FACTORIES: dict[str, Callable[[HookCall], Callable[..., Any]]] = {
    "pre_input": _pre_input,
    "route_hint": _route_hint,
    "post_response": _post_response,
    "analysis_augment": _analysis_augment,
}
if set(_HOOK_FACTORIES) != set(HOOK_NAMES):  # pragma: no cover - a development-time check
    raise ImportError(f"proxy hooks {sorted(_HOOK_FACTORIES)} != HookSpecs {sorted(HOOK_NAMES)}")


def _param_name(arg: str, taken: set[str]) -> str:
    base = re.sub(r"\W", "_", arg.rstrip("?").lower()) or "arg"
    if keyword.iskeyword(base) or base == "ctx" or base in taken:
        base = f"{base}_{len(taken)}"
    taken.add(base)
    return base


def _command_handler(caller: Caller, spec: PluginSpec, name: str, args: list[str]) -> Any:
    async def handler(ctx: Any, *values: str) -> Any:
        if not isinstance(ctx, CommandContext):
            raise TypeError(
                f"isolated command /{name} needs a CommandContext as ctx, got "
                f"{type(ctx).__name__}; build one with the plugin's declared permissions"
            )
        extra = ctx.permissions - spec.permissions
        if extra:
            raise PermissionError(
                f"the ctx given to /{name} grants {sorted(extra)}, which plugin "
                f"{spec.name!r} did not declare; build its CommandContext from spec.permissions"
            )
        return await caller.call_command(name, list(values), ctx)

    taken: set[str] = set()
    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for arg in args:
        params.append(
            inspect.Parameter(
                _param_name(arg, taken),
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=None if arg.endswith("?") else inspect.Parameter.empty,
            )
        )
    handler.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    handler.__name__ = handler.__qualname__ = f"command_{name.replace('-', '_')}"
    return handler


def build_proxy(hello: Mapping[str, Any], caller: Caller) -> ModuleType:
    """The proxy module for a successful handshake; `PluginSpecError` or `ProtocolError`
    when the worker's data does not hold up."""
    try:
        raw = hello["spec"]
        spec = plugin(
            name=raw["name"],
            version=raw["version"],
            api=raw["api"],
            permissions=list(raw["permissions"]),
            provides=list(raw["provides"]),
            description=str(raw.get("description", "")),
        )
        commands = [(c["name"], c["help"], list(c["args"])) for c in hello["commands"]]
        hooks = [(h["name"], bool(h["tryfirst"]), bool(h["trylast"])) for h in hello["hooks"]]
    except (KeyError, TypeError) as exc:
        raise rpc.ProtocolError(
            f"the handshake is malformed ({type(exc).__name__}: {exc})"
        ) from None
    module = ModuleType(f"_rubberduck_isolated_{spec.name.replace('-', '_')}")
    module.__doc__ = f"Proxy of plugin {spec.name!r}, running in an isolation worker."
    module.spec = spec  # type: ignore[attr-defined]
    for name, help_text, args in commands:
        handler = command(name, help=help_text, args=args)(
            _command_handler(caller, spec, name, args)
        )
        setattr(module, handler.__name__, handler)
    for name, tryfirst, trylast in hooks:
        factory = _HOOK_FACTORIES.get(name)
        if factory is None:
            raise rpc.ProtocolError(f"the handshake names an unknown hook {name!r}")
        fn = hookimpl(tryfirst=tryfirst, trylast=trylast)(factory(caller.call_hook))
        setattr(module, name, fn)
    return module
