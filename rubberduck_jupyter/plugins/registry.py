"""The loaded plugins and their state: what `plugins list` and the plugins API will show.

`PluginRegistry` turns candidates (discovery.py) into `PluginRecord`s. Admission runs in a
fixed order, and the first step that refuses decides the record's state and reason:

1. access policy on the discovered name (before import: denied code never runs) -> skipped
2. import the module                                      -> failed (the exception)
3. the module's `spec` is a valid PluginSpec              -> failed (the PluginSpecError)
4. the declared name equals the discovered name           -> failed
5. name not already taken by another plugin               -> skipped
6. API negotiation                                        -> skipped (which side is too old)
7. commands valid and not already provided by another     -> failed / skipped
8. hooks register with pluggy                             -> failed (unknown hook, bad args)
   -> loaded

Nothing a plugin does at import or load time raises out of the registry: any exception
(SystemExit included) becomes a failed record with the reason. At run time the hook guard
(hooks.py) may move a loaded plugin to disabled; `PluginStateChanged` is published on the
event bus for every state a record enters, when a bus is given.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .discovery import (
    AccessPolicy,
    Candidate,
    SourceKind,
    canonical_name,
    entry_point_candidates,
    folder_candidates,
    negotiate,
)
from .events import EventBus, PluginStateChanged
from .health import DEFAULT_MAX_CONSECUTIVE_FAILURES
from .hooks import DEFAULT_HOOK_TIMEOUT_S, DEFAULT_SYNC_BUDGET_S, HookManager
from .spec import (
    PLUGIN_API_VERSION,
    CommandSpec,
    PluginSpec,
    PluginSpecError,
    commands_of,
    engines_of,
    validate_command,
    validate_spec,
)

log = logging.getLogger(__name__)

# A command may call a model and stream a long answer, unlike a hook that sits inside every
# turn; two minutes is about the longest a person waits on one answer before giving up.
DEFAULT_COMMAND_TIMEOUT_S = 120.0


class CommandError(RuntimeError):
    """A slash command that could not run; the message says why and what to do."""


class PluginState(enum.StrEnum):
    LOADED = "loaded"
    SKIPPED = "skipped"  # refused on purpose: policy, API range, a name already taken
    DISABLED = "disabled"  # was loaded, switched off at run time after repeated failures
    FAILED = "failed"  # could not be loaded: import error, invalid spec, bad hooks


# States in which a plugin holds its name (and its commands, while loaded).
_ACTIVE = (PluginState.LOADED, PluginState.DISABLED)


@dataclass
class PluginRecord:
    name: str
    source: str
    kind: SourceKind
    state: PluginState
    reason: str = ""
    spec: PluginSpec | None = None
    module: object | None = field(default=None, repr=False)
    commands: tuple[CommandSpec, ...] = ()
    hooks: tuple[str, ...] = ()
    engines: tuple[Any, ...] = field(default=(), repr=False)
    order: int = 0  # when it was admitted: built-ins first, then discovery order

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, the columns of `plugins list`."""
        spec = self.spec
        return {
            "name": self.name,
            "version": spec.version if spec else "",
            "source": self.source,
            "state": str(self.state),
            "permissions": sorted(spec.permissions) if spec else [],
            "provides": sorted(spec.provides) if spec else [],
            "reason": self.reason,
        }


class PluginRegistry:
    """Admits plugins (see the module docstring) and holds their records and hooks."""

    def __init__(
        self,
        *,
        policy: AccessPolicy | None = None,
        api_version: str = PLUGIN_API_VERSION,
        bus: EventBus | None = None,
        hook_timeout_s: float = DEFAULT_HOOK_TIMEOUT_S,
        sync_budget_s: float = DEFAULT_SYNC_BUDGET_S,
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
        command_timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
    ) -> None:
        self.command_timeout_s = command_timeout_s
        self.policy = policy or AccessPolicy()
        self.api_version = api_version
        self.bus = bus
        self.hooks = HookManager(
            timeout_s=hook_timeout_s,
            sync_budget_s=sync_budget_s,
            max_consecutive_failures=max_consecutive_failures,
            on_disable=self._on_disable,
        )
        self._records: dict[str, PluginRecord] = {}
        self._shadowed: list[PluginRecord] = []  # refused under a name another plugin holds
        self._commands: dict[str, str] = {}  # command name -> plugin name
        self._engines: dict[str, str] = {}  # engine name -> plugin name
        # Bumped on every change of what is loaded: readers (the engine catalog) cache on it.
        self.generation = 0

    # -- sources ------------------------------------------------------------------------

    def discover(
        self, *, entry_points: bool = True, folders: Iterable[str | Path] = ()
    ) -> list[PluginRecord]:
        """Admit entry-point plugins, then each folder's; return the new records."""
        out: list[PluginRecord] = []
        if entry_points:
            out += self.load_entry_points()
        for folder in folders:
            out += self.load_folder(folder)
        return out

    def load_entry_points(self, group: str | None = None) -> list[PluginRecord]:
        try:
            cands = entry_point_candidates(group) if group else entry_point_candidates()
        except Exception as exc:  # broken metadata on sys.path must not stop the server
            log.warning("cannot read plugin entry points: %s", exc)
            return []
        return [self.admit(c) for c in cands]

    def load_folder(self, folder: str | Path) -> list[PluginRecord]:
        return [self.admit(c) for c in folder_candidates(folder)]

    def register_builtin(self, spec: PluginSpec, module: object) -> PluginRecord:
        """Register one of our own plugins through the same public spec and checks."""
        source = f"built-in {getattr(module, '__name__', type(module).__name__)}"
        cand = Candidate(name=spec.name, source=source, kind="builtin", load=lambda: module)
        return self.admit(cand, spec_override=spec)

    # -- admission ----------------------------------------------------------------------

    def admit(self, cand: Candidate, *, spec_override: PluginSpec | None = None) -> PluginRecord:
        """Run the admission steps for one candidate; never raises for the plugin's faults."""
        refusal = self.policy.refusal(cand.name, builtin=cand.kind == "builtin")
        if refusal:
            return self._record(cand.name, cand, PluginState.SKIPPED, refusal)
        try:
            module = cand.load()
        except PluginSpecError as exc:  # `plugin(...)` refused the spec at import time
            return self._record(cand.name, cand, PluginState.FAILED, str(exc))
        except (Exception, SystemExit) as exc:
            return self._record(
                cand.name, cand, PluginState.FAILED, f"import failed: {type(exc).__name__}: {exc}"
            )
        try:
            return self._admit_module(cand, module, spec_override)
        except PluginSpecError as exc:
            # Listed under the installed name (what an admin sees and can deny); the message
            # names the declared one.
            return self._record(cand.name, cand, PluginState.FAILED, str(exc))
        except Exception as exc:  # a bug in a plugin's attribute access, say
            reason = f"load failed: {type(exc).__name__}: {exc}"
            return self._record(cand.name, cand, PluginState.FAILED, reason)

    def _admit_module(
        self, cand: Candidate, module: object, spec_override: PluginSpec | None
    ) -> PluginRecord:
        spec = spec_override if spec_override is not None else getattr(module, "spec", None)
        if not isinstance(spec, PluginSpec):
            raise PluginSpecError(
                cand.name,
                "spec",
                "the module has no `spec = plugin(name=..., version=..., api=...)`; add one",
            )
        validate_spec(spec)
        if canonical_name(spec.name) != canonical_name(cand.name):
            raise PluginSpecError(
                spec.name,
                "name",
                f"declared as {spec.name!r} but installed as {cand.name!r}; make them equal "
                "(allow/deny lists are checked on the installed name, before import)",
            )
        existing = self._records.get(canonical_name(spec.name))
        if existing is not None and existing.state in _ACTIVE:
            reason = f"a plugin named {spec.name!r} is already loaded from {existing.source}"
            return self._record(spec.name, cand, PluginState.SKIPPED, reason, spec=spec)
        mismatch = negotiate(spec, self.api_version)
        if mismatch:
            return self._record(spec.name, cand, PluginState.SKIPPED, mismatch, spec=spec)
        commands = commands_of(module)
        engines = engines_of(module, spec)
        # An engine's commands ("/think") are slash commands too: one owner per name.
        claimed = [cmd.name for cmd in commands] + [
            c.removeprefix("/") for e in engines for c in getattr(e.info, "commands", ())
        ]
        for cmd in commands:
            validate_command(spec.name, cmd)
        for name in claimed:
            owner = self._commands.get(name)
            if owner is not None:
                reason = f"command '/{name}' is already provided by plugin {owner!r}"
                return self._record(spec.name, cand, PluginState.SKIPPED, reason, spec=spec)
        for engine in engines:
            owner = self._engines.get(engine.info.name)
            if owner is not None:
                reason = f"engine {engine.info.name!r} is already provided by plugin {owner!r}"
                return self._record(spec.name, cand, PluginState.SKIPPED, reason, spec=spec)
        hooks = self.hooks.register(spec.name, module)
        for name in claimed:
            self._commands[name] = spec.name
        for engine in engines:
            self._engines[engine.info.name] = spec.name
        return self._record(
            spec.name,
            cand,
            PluginState.LOADED,
            "",
            spec=spec,
            module=module,
            commands=tuple(commands),
            hooks=tuple(hooks),
            engines=tuple(engines),
        )

    def _record(
        self,
        name: str,
        cand: Candidate,
        state: PluginState,
        reason: str,
        *,
        spec: PluginSpec | None = None,
        module: object | None = None,
        commands: tuple[CommandSpec, ...] = (),
        hooks: tuple[str, ...] = (),
        engines: tuple[Any, ...] = (),
    ) -> PluginRecord:
        rec = PluginRecord(
            name=name,
            source=cand.source,
            kind=cand.kind,
            state=state,
            reason=reason,
            spec=spec,
            module=module,
            commands=commands,
            hooks=hooks,
            engines=engines,
            order=self.generation,
        )
        if state is not PluginState.LOADED:
            log.warning("plugin %r %s: %s", name, state, reason)
        self._store(rec)
        self._announce(rec)
        return rec

    def _store(self, rec: PluginRecord) -> None:
        """Keep one primary record per (canonical) name; list the others beside it.

        A loaded plugin always holds the name. Otherwise a new attempt from the same source
        replaces the old record (a retry), and one from another source is listed beside it,
        so two broken `hello.py` in two folders both stay visible.
        """
        self.generation += 1
        key = canonical_name(rec.name)
        holder = self._records.get(key)
        self._shadowed = [
            r for r in self._shadowed if not (r.source == rec.source and r.name == rec.name)
        ]
        if rec.state is PluginState.LOADED:
            if holder is not None:
                self._shadowed.append(holder)
            self._records[key] = rec
        elif holder is None or (holder.source == rec.source and holder.state not in _ACTIVE):
            self._records[key] = rec
        else:
            self._shadowed.append(rec)

    # -- run-time state -----------------------------------------------------------------

    def disable(self, name: str, reason: str) -> None:
        """Switch a loaded plugin off (its hooks and commands stop) with a visible reason."""
        self.hooks.disable(name, reason)  # calls _on_disable

    def _on_disable(self, name: str, reason: str) -> None:
        rec = self._records.get(canonical_name(name))
        if rec is None or rec.state is not PluginState.LOADED:
            return
        rec.state = PluginState.DISABLED
        rec.reason = reason
        self._release(rec)
        self._announce(rec)

    def _release(self, rec: PluginRecord) -> None:
        """Free the command and engine names `rec` holds."""
        self.generation += 1
        for name in [n for n, owner in self._commands.items() if owner == rec.name]:
            del self._commands[name]
        for name in [n for n, owner in self._engines.items() if owner == rec.name]:
            del self._engines[name]

    def _claim(self, rec: PluginRecord) -> None:
        self.generation += 1
        for cmd in rec.commands:
            self._commands[cmd.name] = rec.name
        for engine in rec.engines:
            self._engines[engine.info.name] = rec.name
            for c in getattr(engine.info, "commands", ()):
                self._commands[c.removeprefix("/")] = rec.name

    # -- hot reload ---------------------------------------------------------------------

    def reload(self, cand: Candidate) -> PluginRecord:
        """Load `cand` again (its file changed) and swap it in only if it loads.

        A call already running keeps the function objects it started with, so requests in
        flight finish on the old version. A reload that fails leaves the old version loaded
        and says why in its reason; a plugin not loaded from this source is simply admitted.
        """
        key = canonical_name(cand.name)
        old = self._records.get(key)
        if old is None or old.source != cand.source or old.state is not PluginState.LOADED:
            return self.admit(cand)
        self.hooks.unregister(old.name)
        self._release(old)
        del self._records[key]
        new = self.admit(cand)
        if new.state is PluginState.LOADED:
            return new
        # Put the old version back exactly as it was, and say why the new one is not in.
        self._records[key] = old
        self._shadowed = [r for r in self._shadowed if r is not new]
        self.hooks.register(old.name, old.module)
        self._claim(old)
        version = old.spec.version if old.spec else "?"
        old.reason = f"reload failed: {new.reason}; version {version} keeps running"
        if self.bus is not None:
            self.bus.publish(PluginStateChanged(name=old.name, state="failed", reason=old.reason))
        return old

    def remove(self, source: str) -> PluginRecord | None:
        """Unload the plugin loaded from `source` (its file was deleted)."""
        for key, rec in list(self._records.items()):
            if rec.source == source:
                if rec.state is PluginState.LOADED:
                    self.hooks.unregister(rec.name)
                self._release(rec)
                del self._records[key]
                rec.state = PluginState.SKIPPED
                rec.reason = "its file was removed"
                self._announce(rec)
                return rec
        self._shadowed = [r for r in self._shadowed if r.source != source]
        return None

    def _announce(self, rec: PluginRecord) -> None:
        if self.bus is not None:
            self.bus.publish(
                PluginStateChanged(name=rec.name, state=str(rec.state), reason=rec.reason)
            )

    # -- queries ------------------------------------------------------------------------

    def get(self, name: str) -> PluginRecord | None:
        """The record holding `name` (the loaded one, if any)."""
        return self._records.get(canonical_name(name))

    def records(self) -> list[PluginRecord]:
        return sorted([*self._records.values(), *self._shadowed], key=lambda r: r.name)

    def list(self) -> list[dict[str, Any]]:
        """One plain dict per plugin, sorted by name: the CLI table and the JSON API."""
        return [r.as_dict() for r in self.records()]

    def loaded(self, provides: str | None = None) -> list[PluginRecord]:
        """Loaded plugins, optionally only those providing an extension point."""
        return [
            r
            for r in self.records()
            if r.state is PluginState.LOADED
            and (provides is None or (r.spec is not None and provides in r.spec.provides))
        ]

    def engines(self) -> dict[str, Any]:
        """Engines of loaded plugins, by engine name, in registration order."""
        out: dict[str, Any] = {}
        for rec in sorted(
            (r for r in self._records.values() if r.state is PluginState.LOADED),
            key=lambda r: r.order,
        ):
            for engine in rec.engines:
                out[engine.info.name] = engine
        return out

    def commands(self) -> dict[str, tuple[str, CommandSpec]]:
        """Slash commands of loaded plugins: name -> (plugin name, command)."""
        out: dict[str, tuple[str, CommandSpec]] = {}
        for rec in self.loaded():
            for cmd in rec.commands:
                out[cmd.name] = (rec.name, cmd)
        return out

    async def run_command(self, name: str, ctx: object, args: Sequence[str]) -> Any:
        """Run `/name ARGS...` under the same guard as hooks (timeout, failure count, disable).

        Raises `CommandError` for an unknown command, a wrong number of arguments, or a
        handler that raised or timed out (the message names the plugin).
        """
        entry = self.commands().get(name.removeprefix("/"))
        if entry is None:
            known = ", ".join(f"/{n}" for n in sorted(self.commands())) or "none"
            raise CommandError(f"no command '/{name.removeprefix('/')}'; available: {known}")
        plugin_name, cmd = entry
        if not cmd.required <= len(args) <= len(cmd.args):
            raise CommandError(f"usage: {cmd.usage} ({cmd.help})")
        assert cmd.handler is not None  # validate_command checked it at load
        usable, result, error = await self.hooks.call_guarded(
            plugin_name,
            f"/{cmd.name}",
            cmd.handler,
            [ctx, *args],
            timeout_s=self.command_timeout_s,
        )
        if not usable:
            raise CommandError(f"plugin {plugin_name!r}: {error}")
        return result

    def health(self) -> dict[str, dict[str, object]]:
        """Per-plugin call counters (hooks.py) with state and reason, for a health endpoint."""
        out: dict[str, dict[str, object]] = {}
        for rec in sorted(self._records.values(), key=lambda r: r.name):
            h = self.hooks.health(rec.name)
            out[rec.name] = {
                "state": str(rec.state),
                "reason": rec.reason,
                **(h.as_dict() if h is not None else {}),
            }
        return out
