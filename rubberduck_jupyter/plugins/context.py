"""What a plugin's slash command may do: `CommandContext`, its permission-checked door.

A command handler gets one argument before its own, `ctx`. Everything the plugin can do
to RubberDuck goes through it, and every method that needs a permission checks the
plugin's declared `permissions` first, here in the server:

| method | permission | does |
|---|---|---|
| `say(markdown)` | none | adds text to the answer |
| `check(code)` | none | static findings for Python code (syntax, ruff, our ast checks) |
| `test_skeleton(source)` | none | a pytest skeleton from the code's signatures |
| `ask(prompt, system=, checked=)` | `call_model` | one model call, streamed into the answer |
| `search(query, top_k=)` | `read_index` | the project index's best chunks |
| `read_file(path)` | `read_files` | a project file's text, inside the root |
| `suggest(code, title=, mode=)` | `propose_edits` | a change the user accepts or rejects |

An undeclared use raises `PermissionRefused` naming the plugin, the method and the
permission to declare. The same class serves plugins in this process and plugins in an
isolation worker: the worker's proxy sends each call over the RPC to a `CommandContext`
here, so a worker cannot skip the check (plugins/isolation/process.py). An in-process
plugin is code the admin chose to trust; it could import our internals, and the docs say so.

`Services` is the narrow port the server implements (engines/plugin_commands.py adapts a
chat turn to it); this module imports nothing else from rubberduck_jupyter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

SuggestMode = Literal["replace", "insert_after", "insert_markdown_after"]
SUGGEST_MODES: tuple[str, ...] = ("replace", "insert_after", "insert_markdown_after")

# ctx method -> the permission it needs (None: always allowed). The RPC dispatches only
# names in this table, so a worker cannot reach any other attribute of the context.
METHOD_PERMISSIONS: Mapping[str, str | None] = {
    "say": None,
    "check": None,
    "test_skeleton": None,
    "ask": "call_model",
    "search": "read_index",
    "read_file": "read_files",
    "suggest": "propose_edits",
}


class PermissionRefused(PermissionError):
    """A plugin used a capability it did not declare."""

    def __init__(self, plugin: str, method: str, permission: str) -> None:
        self.plugin = plugin
        self.method = method
        self.permission = permission
        super().__init__(
            f"plugin {plugin!r} called ctx.{method}() without the {permission!r} permission; "
            f'add "{permission}" to permissions=[...] in its spec (an admin sees the list)'
        )


class Services(Protocol):
    """What the server gives a command; one object per command run."""

    async def say(self, markdown: str) -> None: ...
    async def check(self, code: str) -> list[dict[str, Any]]: ...
    async def test_skeleton(self, source: str) -> str: ...
    async def ask(self, prompt: str, *, system: str | None, checked: bool) -> str: ...
    async def search(self, query: str, *, top_k: int) -> list[dict[str, Any]]: ...
    async def read_file(self, path: str) -> str: ...
    async def suggest(self, code: str, *, title: str, mode: str) -> dict[str, Any] | None: ...


class ContextView:
    """What a `ctx` reads from its own data; shared by `CommandContext` and the isolation
    worker's proxy of it (plugins/isolation/serve.py), so both answer alike."""

    permissions: frozenset[str]
    context: Mapping[str, Any]

    def can(self, permission: str) -> bool:
        """Whether this plugin declared `permission` (to choose a path before trying it; the
        server checks again at every call)."""
        return permission in self.permissions

    @property
    def active_cell(self) -> str:
        return str(self.context.get("active_cell") or "")

    @property
    def selection(self) -> str:
        return str(self.context.get("selection") or "")


@dataclass
class CommandContext(ContextView):
    """The `ctx` of a command. Plain data first, then the permission-checked methods.

    `context` is the chat frame's context as JSON (`notebook_path`, `active_cell`,
    `selection`, `error`, `cell_index`, `cell_id`, `cell_type`, `variables`, `mentions`).
    """

    plugin: str
    permissions: frozenset[str]
    services: Services = field(repr=False)
    text: str = ""  # the message after `/command`
    context: Mapping[str, Any] = field(default_factory=dict)
    has_model: bool = False
    user: str = ""

    def _need(self, method: str) -> None:
        permission = METHOD_PERMISSIONS[method]
        if permission is not None and permission not in self.permissions:
            raise PermissionRefused(self.plugin, method, permission)

    async def say(self, markdown: str) -> None:
        self._need("say")
        await self.services.say(_text("markdown", markdown))

    async def check(self, code: str) -> list[dict[str, Any]]:
        self._need("check")
        return await self.services.check(_text("code", code))

    async def test_skeleton(self, source: str) -> str:
        self._need("test_skeleton")
        return await self.services.test_skeleton(_text("source", source))

    async def ask(self, prompt: str, *, system: str | None = None, checked: bool = False) -> str:
        """One model call, streamed into the answer; `checked=True` runs RubberDuck's
        self-correction on the Python blocks of the reply and returns the corrected text."""
        self._need("ask")
        if system is not None:
            _text("system", system)
        return await self.services.ask(_text("prompt", prompt), system=system, checked=checked)

    async def search(self, query: str, *, top_k: int = 5) -> list[dict[str, Any]]:
        self._need("search")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 50:
            raise ValueError("top_k must be an integer from 1 to 50")
        return await self.services.search(_text("query", query), top_k=top_k)

    async def read_file(self, path: str) -> str:
        self._need("read_file")
        return await self.services.read_file(_text("path", path))

    async def suggest(
        self, code: str, *, title: str = "", mode: str = "replace"
    ) -> dict[str, Any] | None:
        """Offer `code` for the active cell: `replace` it, `insert_after` it (a new code
        cell) or `insert_markdown_after` it (a new markdown cell). Code that does not parse
        is never offered (the answer says why); returns the suggestion, or None."""
        self._need("suggest")
        if mode not in SUGGEST_MODES:
            raise ValueError(f"mode must be one of {', '.join(SUGGEST_MODES)}, not {mode!r}")
        return await self.services.suggest(
            _text("code", code), title=_text("title", title), mode=mode
        )


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    return value


def call_method(
    ctx: CommandContext, method: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> Any:
    """`ctx.method(*args, **kwargs)` for a name in METHOD_PERMISSIONS; the RPC's dispatch."""
    if method not in METHOD_PERMISSIONS:
        raise AttributeError(
            f"ctx has no method {method!r}; use one of {', '.join(METHOD_PERMISSIONS)}"
        )
    return getattr(ctx, method)(*args, **kwargs)
