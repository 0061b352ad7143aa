"""The declarative plugin spec: what a plugin says about itself, checked before it runs.

A plugin is one small module that holds `spec = plugin(...)` and, optionally, functions
decorated with `@command` (slash commands) and `@hookimpl` (hooks, see `hooks.py`). Everything
the server needs to decide whether to load it (name, version, the plugin-API range it
supports, the permissions it asks for, the extension points it implements) is plain data
here, so `jupyter rubberduck plugins list` and the health endpoint can show it and an admin
can refuse it without trusting its code.

Validation is eager and precise: `plugin()` and `command()` raise `PluginSpecError` at import
time with the plugin, the field and the fix (`plugin 'x': permissions: 'netwrk' is not a
permission; use one of ...`), and the loader validates again (`validate_spec`) because a spec
can also be built by hand. Both sets below are closed: a new permission or extension point is
an API change, not something a plugin can invent.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

# The plugin API this RubberDuck provides. The major number changes when a spec field, a hook
# signature or a permission changes meaning; plugins declare `api=">=1,<2"` to say which
# majors they were written against, and negotiation (discovery.negotiate) skips the others.
PLUGIN_API_VERSION = "1.0"

# What a plugin may ask to do. Declared permissions are shown to admins and users and are
# checked in the server at every `ctx` call (context.py); an untrusted plugin's worker
# (plugins/isolation/) can reach RubberDuck through nothing else.
PERMISSIONS: tuple[str, ...] = (
    "read_index",  # search the project index (chunks, citations)
    "read_files",  # read notebooks and project files
    "call_model",  # send prompts to the configured LLM
    "propose_edits",  # offer suggestions the user accepts or rejects
    "write_files",  # write files without a user's accept
    "network",  # open network connections of its own
)

# Where a plugin plugs in; `provides=[...]` names the ones it implements.
EXTENSION_POINTS: tuple[str, ...] = (
    "analysis",
    "generation",
    "refactoring",
    "documentation",
    "engine",
    "context_provider",
    "embedder",
    "agent_tool",
)

# Names appear in CLI tables, URLs and allow/deny lists: short, lowercase, no spaces.
_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_NAME_FIX = "use 1-64 lowercase letters, digits, '-' or '_', starting with a letter"
# Slash-command names are typed after '/', so no '_' ambiguity with '-' and no slash.
_COMMAND_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
# A trailing "?" marks an optional argument (`args=["NAME?"]`); optional ones come last.
_ARG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}\??$")
# Attribute `@command` leaves on the handler so the loader can collect it from the module.
COMMAND_ATTR = "__rubberduck_command__"

F = TypeVar("F", bound=Callable[..., Any])


class PluginSpecError(ValueError):
    """An invalid spec: the message names the plugin, the field and the fix."""

    def __init__(self, plugin: str, field_name: str, problem: str) -> None:
        self.plugin = plugin
        self.field = field_name
        self.problem = problem
        super().__init__(f"plugin {plugin!r}: {field_name}: {problem}")


@dataclass(frozen=True)
class CommandSpec:
    """A slash command: `/name ARG...`, answered by an `async def handler(ctx, *args)`."""

    name: str
    help: str
    args: tuple[str, ...] = ()
    handler: Callable[..., Any] | None = field(default=None, compare=False, repr=False)

    @property
    def required(self) -> int:
        """How many of `args` must be given (the ones without a trailing "?")."""
        return sum(1 for a in self.args if not a.endswith("?"))

    @property
    def usage(self) -> str:
        shown = [f"[{a[:-1]}]" if a.endswith("?") else a for a in self.args]
        return " ".join([f"/{self.name}", *shown])


@dataclass(frozen=True)
class PluginSpec:
    """What a plugin declares about itself. Build it with `plugin(...)`."""

    name: str
    version: str
    api: str
    permissions: frozenset[str] = frozenset()
    provides: frozenset[str] = frozenset()
    description: str = ""

    @property
    def api_range(self) -> SpecifierSet:
        return SpecifierSet(self.api)


def _one_of(value: object, allowed: Sequence[str], what: str) -> str:
    close = difflib.get_close_matches(str(value), allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{value!r} is not {what}; {hint}use one of {', '.join(allowed)}"


def _names(plugin_name: str, field_name: str, values: Iterable[str] | str) -> frozenset[str]:
    if isinstance(values, str):
        raise PluginSpecError(
            plugin_name, field_name, f"got the string {values!r}; pass a list, e.g. [{values!r}]"
        )
    return frozenset(values)


def validate_spec(spec: PluginSpec) -> None:
    """Raise `PluginSpecError` for the first invalid field of `spec`."""
    label = spec.name if isinstance(spec.name, str) and spec.name else "<unnamed>"
    if not isinstance(spec.name, str) or not _NAME_RE.match(spec.name):
        raise PluginSpecError(label, "name", f"{spec.name!r} is not a valid name; {_NAME_FIX}")
    try:
        Version(str(spec.version))
    except InvalidVersion:
        raise PluginSpecError(
            label, "version", f"{spec.version!r} is not a PEP 440 version; use e.g. '1.0.0'"
        ) from None
    if not isinstance(spec.api, str) or not spec.api.strip():
        raise PluginSpecError(
            label, "api", "missing; declare the plugin-API range you support, e.g. '>=1,<2'"
        )
    try:
        SpecifierSet(spec.api)
    except InvalidSpecifier:
        raise PluginSpecError(
            label, "api", f"{spec.api!r} is not a PEP 440 version range; use e.g. '>=1,<2'"
        ) from None
    for perm in sorted(spec.permissions, key=str):
        if perm not in PERMISSIONS:
            raise PluginSpecError(label, "permissions", _one_of(perm, PERMISSIONS, "a permission"))
    for point in sorted(spec.provides, key=str):
        if point not in EXTENSION_POINTS:
            raise PluginSpecError(
                label, "provides", _one_of(point, EXTENSION_POINTS, "an extension point")
            )


def plugin(
    *,
    name: str,
    version: str,
    api: str,
    permissions: Iterable[str] = (),
    provides: Iterable[str] = (),
    description: str = "",
) -> PluginSpec:
    """Declare a plugin; raises `PluginSpecError` at import time if a field is invalid."""
    label = name if isinstance(name, str) and name else "<unnamed>"
    spec = PluginSpec(
        name=name,
        version=version,
        api=api,
        permissions=_names(label, "permissions", permissions),
        provides=_names(label, "provides", provides),
        description=description,
    )
    validate_spec(spec)
    return spec


def validate_command(plugin_name: str, cmd: CommandSpec) -> None:
    """Raise `PluginSpecError` if a command's name, help, args or handler is invalid."""
    where = f"commands: {cmd.name!r}"
    if not isinstance(cmd.name, str) or not _COMMAND_RE.match(cmd.name):
        raise PluginSpecError(
            plugin_name,
            "commands",
            f"{cmd.name!r} is not a valid command name; use 1-32 lowercase letters, digits "
            "or '-', starting with a letter, without the leading '/'",
        )
    if not isinstance(cmd.help, str) or not cmd.help.strip():
        raise PluginSpecError(plugin_name, where, "help is empty; say in one line what it does")
    for arg in cmd.args:
        if not isinstance(arg, str) or not _ARG_RE.match(arg):
            raise PluginSpecError(
                plugin_name, where, f"argument {arg!r} is not a name; use e.g. 'NAME' or 'NAME?'"
            )
    optional = [a.endswith("?") for a in cmd.args]
    if any(optional) and optional != sorted(optional):
        raise PluginSpecError(
            plugin_name,
            where,
            "an optional argument ('NAME?') comes before a required one; "
            "put the optional ones last",
        )
    handler = cmd.handler
    if handler is None or not inspect.iscoroutinefunction(handler):
        raise PluginSpecError(
            plugin_name, where, "the handler must be an 'async def handler(ctx, ...)'"
        )
    try:
        inspect.signature(handler).bind(None, *cmd.args)
        inspect.signature(handler).bind(None, *cmd.args[: cmd.required])
    except TypeError:
        params = ", ".join(inspect.signature(handler).parameters)
        raise PluginSpecError(
            plugin_name,
            where,
            f"the handler takes ({params}) but args declares {list(cmd.args)}; "
            "give it one parameter after ctx per declared argument, with a default for "
            "each optional one",
        ) from None


def command(name: str, *, help: str, args: Sequence[str] = ()) -> Callable[[F], F]:
    """Mark an `async def handler(ctx, *args)` as the slash command `/name`.

    The handler is returned unchanged; the loader finds it by the attribute this leaves on it.
    """

    def mark(handler: F) -> F:
        cmd = CommandSpec(name=name, help=help, args=tuple(args), handler=handler)
        setattr(handler, COMMAND_ATTR, cmd)
        return handler

    return mark


def commands_of(module: object) -> list[CommandSpec]:
    """The commands a plugin module declares, in definition order (dict order of its names)."""
    found: list[CommandSpec] = []
    for value in vars(module).values():
        cmd = getattr(value, COMMAND_ATTR, None) if callable(value) else None
        if isinstance(cmd, CommandSpec):
            found.append(cmd)
    return found


def engines_of(module: object, spec: PluginSpec) -> list[Any]:
    """The conversation engines a plugin providing "engine" lists in its module's `engines`.

    An engine is an object with `info` (name, title, description, commands such as
    "/think") and `async def run(turn)`; the router reads them from the registry. The turn
    an engine gets is RubberDuck's internal `Turn`, so in API 1 engines are provisional for
    third parties: a slash command (`@command`) is the stable way to answer a message.
    """
    if "engine" not in spec.provides:
        return []
    found = getattr(module, "engines", None)
    if found is None:  # an engine provided some other way (a command standing for one)
        return []
    if isinstance(found, (str, bytes)) or not hasattr(found, "__iter__"):
        raise PluginSpecError(spec.name, "engines", "must be a list of engine objects")
    out = list(found)
    for engine in out:
        info = getattr(engine, "info", None)
        name = getattr(info, "name", None)
        if not isinstance(name, str) or not name or not callable(getattr(engine, "run", None)):
            raise PluginSpecError(
                spec.name, "engines", f"{engine!r} needs `info.name` and `async def run(turn)`"
            )
    return out
