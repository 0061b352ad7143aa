"""The hooks plugins implement (pluggy hookspecs) and the guarded way the registry calls them.

Plugins mark module-level functions with `@hookimpl` (a pluggy `HookimplMarker("rubberduck")`)
and name them after a hookspec below; pluggy validates the argument names at registration and
orders the implementations, so the semantics are the ones pytest and tox users know:

- `@hookimpl(tryfirst=True)` runs before the others, `@hookimpl(trylast=True)` after them;
- among implementations of the same priority, the one registered LAST runs FIRST (pluggy's
  LIFO rule), and the registry registers plugins in discovery order (built-ins, entry points
  sorted by name, then folder files sorted by name);
- a hook may take any subset of the spec's arguments, by name.

What differs from calling `pm.hook.name(...)` directly, and why: pluggy runs all
implementations in one loop, so one exception aborts the whole call and a hanging coroutine
would hang the chat. `HookManager` instead walks pluggy's ordered implementations itself and
calls each under a guard: exceptions are caught per plugin, async implementations (`async
def`) get a timeout, every call is timed, and after N consecutive failures the plugin is
disabled (`on_disable` tells the registry) while the other plugins keep running. Because of
that per-plugin guard, hook *wrappers* (`wrapper=True`, `hookwrapper=True`) are refused:
a wrapper cannot be isolated from the implementations it wraps.

Sync implementations cannot be pre-empted in-process: a `def` hook that loops forever blocks
the event loop and no timeout can stop it (the isolation worker, plugins/isolation/, is the
answer for untrusted code: its hooks are async proxies, so the timeout applies). What this
module does is measure: a sync call over `sync_budget_s` is counted as a failure ("blocked
the event loop for ..."), so a plugin that keeps blocking is disabled after N such calls.
Its result is still used, since the time is already spent.

All calls happen on the event loop's thread; nothing here is thread-safe.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pluggy

from .health import DEFAULT_MAX_CONSECUTIVE_FAILURES, PluginHealth
from .spec import PluginSpecError

log = logging.getLogger(__name__)

PROJECT = "rubberduck"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# An async hook runs inside a chat turn: two seconds is already a long, visible pause before
# the answer starts, and a hook that needs longer belongs in an engine, not a hook.
DEFAULT_HOOK_TIMEOUT_S = 2.0
# A sync hook blocks every user's stream while it runs; 0.25 s is a stutter people notice.
DEFAULT_SYNC_BUDGET_S = 0.25


class HookSpecs:
    """The hook API, version 1. Each spec states its ordering semantics."""

    @hookspec
    def pre_input(self, text: str, context: Mapping[str, Any]) -> str | None:
        """Rewrite the user's text before routing (expand a macro, redact a secret).

        Chained: implementations run in order and each receives the text as the previous one
        left it; returning None keeps the text unchanged. Use `tryfirst` to see the raw input
        and `trylast` to have the final word.
        """

    @hookspec(firstresult=True)
    def route_hint(self, text: str, context: Mapping[str, Any]) -> str | None:
        """Name the engine that should answer, or None to let the router decide.

        firstresult: the first implementation (in order) returning a name wins and the later
        ones are not called.
        """

    @hookspec
    def post_response(self, text: str, context: Mapping[str, Any]) -> None:
        """See the finished answer (log it, count it). Return values are ignored.

        Every implementation is called, in order, even when an earlier one fails.
        """

    @hookspec
    def analysis_augment(
        self, source: str, findings: list[dict[str, Any]], context: Mapping[str, Any]
    ) -> list[dict[str, Any]] | None:
        """Add findings to a cell or file review. `findings` are the built-in ones (read only).

        Every implementation is called; the lists they return are concatenated in call order.
        """


HOOK_NAMES: tuple[str, ...] = tuple(
    name for name in vars(HookSpecs) if not name.startswith("_") and callable(vars(HookSpecs)[name])
)


class HookManager:
    """A pluggy `PluginManager` plus the per-plugin guard described in the module docstring."""

    def __init__(
        self,
        *,
        timeout_s: float = DEFAULT_HOOK_TIMEOUT_S,
        sync_budget_s: float = DEFAULT_SYNC_BUDGET_S,
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
        on_disable: Callable[[str, str], None] | None = None,
    ) -> None:
        if max_consecutive_failures < 1:
            raise ValueError("max_consecutive_failures must be at least 1")
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(HookSpecs)
        self.timeout_s = timeout_s
        self.sync_budget_s = sync_budget_s
        self.max_consecutive_failures = max_consecutive_failures
        self.on_disable = on_disable
        self._health: dict[str, PluginHealth] = {}
        self._disabled: dict[str, str] = {}
        # Timed-out tasks are cancelled but never awaited (a task that swallows its
        # cancellation must not hang the caller); kept here so they are not collected early.
        self._abandoned: set[asyncio.Task[Any]] = set()

    # -- registration -------------------------------------------------------------------

    def register(self, name: str, module: object) -> list[str]:
        """Register a plugin's `@hookimpl` functions; return the hook names it implements.

        Raises `PluginSpecError` (and registers nothing) for an unknown hook name, an argument
        the hookspec does not have, or a wrapper.
        """
        try:
            self.pm.register(module, name=name)
        except pluggy.PluginValidationError as exc:
            found = re.search(r"for hook '([^']+)'", str(exc))
            hook = found.group(1) if found else "?"
            raise PluginSpecError(
                name,
                "hooks",
                f"{str(exc).splitlines()[-1].strip()} (hook {hook!r}); "
                f"use the hookspec's argument names, see HookSpecs.{hook}",
            ) from None
        except ValueError as exc:  # pluggy: the same object or name registered twice
            raise PluginSpecError(name, "name", f"{exc}; give each plugin its own name") from None
        hooks: list[str] = []
        for caller in self.pm.get_hookcallers(module) or []:
            problem = ""
            if not caller.has_spec():
                problem = f"{caller.name!r} is not a hook; use one of {', '.join(HOOK_NAMES)}"
            else:
                for impl in caller.get_hookimpls():
                    if impl.plugin_name == name and (impl.wrapper or impl.hookwrapper):
                        problem = (
                            f"{caller.name!r} is a wrapper; wrappers cannot be guarded per "
                            "plugin, use tryfirst/trylast instead"
                        )
            if problem:
                self.pm.unregister(name=name)
                raise PluginSpecError(name, "hooks", problem)
            hooks.append(caller.name)
        self._health[name] = PluginHealth(max_consecutive_failures=self.max_consecutive_failures)
        self._disabled.pop(name, None)
        return sorted(hooks)

    def unregister(self, name: str) -> None:
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)

    def disable(self, name: str, reason: str) -> None:
        """Stop calling `name`'s hooks; tells `on_disable` once."""
        if name in self._disabled:
            return
        self._disabled[name] = reason
        self.unregister(name)
        log.warning("plugin %r disabled: %s", name, reason)
        if self.on_disable is not None:
            self.on_disable(name, reason)

    def health(self, name: str) -> PluginHealth | None:
        return self._health.get(name)

    def implementations(self, hook: str) -> list[pluggy.HookImpl]:
        """`hook`'s implementations in call order (pluggy's order, first called first)."""
        caller = getattr(self.pm.hook, hook)
        return list(reversed(caller.get_hookimpls()))

    # -- guarded calls ------------------------------------------------------------------

    async def _call_one(
        self, hook: str, impl: pluggy.HookImpl, kwargs: Mapping[str, Any]
    ) -> tuple[bool, Any]:
        args = [kwargs[arg] for arg in impl.argnames]
        usable, result, _ = await self.call_guarded(impl.plugin_name, hook, impl.function, args)
        return usable, result

    async def call_guarded(
        self,
        plugin_name: str,
        label: str,
        fn: Callable[..., Any],
        args: Sequence[Any],
        *,
        timeout_s: float | None = None,
    ) -> tuple[bool, Any, str]:
        """Call `fn(*args)` of `plugin_name` under the guard: (usable, result, error).

        usable is False when it raised or timed out. A sync call over budget is still usable
        (its time is spent) but counts as a failure. Used for hooks and slash commands alike,
        so every call into a plugin is counted against the same failure limit.
        """
        limit = self.timeout_s if timeout_s is None else timeout_s
        health = self._health.setdefault(plugin_name, PluginHealth(self.max_consecutive_failures))
        start = time.perf_counter()
        error = ""
        timed_out = False
        usable = False
        result: Any = None
        try:
            result = fn(*args)
            sync_s = time.perf_counter() - start
            if inspect.isawaitable(result):
                result, timed_out = await self._await_bounded(result, limit)
                if timed_out:
                    error = f"{label} timed out after {limit:g} s"
            elif sync_s > self.sync_budget_s:
                error = (
                    f"{label} blocked the event loop for {sync_s:.3f} s (budget "
                    f"{self.sync_budget_s:g} s); make it async or faster"
                )
            usable = not timed_out
        except Exception as exc:
            error = f"{label} raised {type(exc).__name__}: {exc}"
            result = None
        health.record_time(label, time.perf_counter() - start)
        if not error:
            health.record_success()
        else:
            log.warning("plugin %r: %s", plugin_name, error)
            if health.record_failure(error, timeout=timed_out):
                reason = f"{health.consecutive_failures} consecutive failures; last: {error}"
                self.disable(plugin_name, reason)
        return usable, result, error

    async def _await_bounded(self, awaitable: Any, timeout_s: float) -> tuple[Any, bool]:
        task = asyncio.ensure_future(awaitable)
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout_s)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task in done:
            return task.result(), False
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._forget)
        return None, True

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled():
            task.exception()  # already counted as a timeout; retrieving it silences asyncio

    async def _each(self, hook: str, kwargs: Mapping[str, Any]) -> list[tuple[str, bool, Any]]:
        out: list[tuple[str, bool, Any]] = []
        for impl in self.implementations(hook):
            if impl.plugin_name in self._disabled:
                continue
            ok, result = await self._call_one(hook, impl, kwargs)
            out.append((impl.plugin_name, ok, result))
        return out

    async def pre_input(self, text: str, context: Mapping[str, Any]) -> str:
        """The text after every `pre_input` implementation, chained in call order."""
        for impl in self.implementations("pre_input"):
            if impl.plugin_name in self._disabled:
                continue
            ok, result = await self._call_one("pre_input", impl, {"text": text, "context": context})
            if ok and isinstance(result, str):
                text = result
        return text

    async def route_hint(self, text: str, context: Mapping[str, Any]) -> str | None:
        """The first engine name an implementation returns (firstresult), or None."""
        for impl in self.implementations("route_hint"):
            if impl.plugin_name in self._disabled:
                continue
            ok, result = await self._call_one(
                "route_hint", impl, {"text": text, "context": context}
            )
            if ok and isinstance(result, str) and result:
                return result
        return None

    async def post_response(self, text: str, context: Mapping[str, Any]) -> None:
        await self._each("post_response", {"text": text, "context": context})

    async def analysis_augment(
        self, source: str, findings: list[dict[str, Any]], context: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Findings from every implementation, concatenated in call order."""
        kwargs = {"source": source, "findings": list(findings), "context": context}
        added: list[dict[str, Any]] = []
        for plugin_name, ok, result in await self._each("analysis_augment", kwargs):
            if not ok or result is None:
                continue
            if isinstance(result, list) and all(isinstance(f, dict) for f in result):
                added.extend({**f, "plugin": plugin_name} for f in result)
        return added
