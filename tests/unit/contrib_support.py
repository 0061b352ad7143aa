"""Shared by the contrib plugin tests: a recording `Services` and a registry-driven runner.

The remote model is the one thing that cannot run here, so `ask` returns canned text; every
other call is recorded so a test can assert what the plugin did (and did not) do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from rubberduck_jupyter.plugins import CommandContext, PluginRegistry


@dataclass
class RecordingServices:
    replies: list[str] = field(default_factory=list)  # what ask() returns, in order
    hits: list[dict[str, Any]] = field(default_factory=list)  # what search() returns
    skeleton: str = "def test_f():\n    assert f(1) == ...\n"
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def of(self, method: str) -> list[dict[str, Any]]:
        return [kw for name, kw in self.calls if name == method]

    @property
    def said(self) -> str:
        return "\n".join(kw["markdown"] for kw in self.of("say"))

    async def say(self, markdown: str) -> None:
        self.calls.append(("say", {"markdown": markdown}))

    async def check(self, code: str) -> list[dict[str, Any]]:
        self.calls.append(("check", {"code": code}))
        return []

    async def test_skeleton(self, source: str) -> str:
        self.calls.append(("test_skeleton", {"source": source}))
        return self.skeleton

    async def ask(self, prompt: str, *, system: str | None, checked: bool) -> str:
        self.calls.append(("ask", {"prompt": prompt, "system": system, "checked": checked}))
        return self.replies.pop(0) if self.replies else ""

    async def search(self, query: str, *, top_k: int) -> list[dict[str, Any]]:
        self.calls.append(("search", {"query": query, "top_k": top_k}))
        return self.hits

    async def read_file(self, path: str) -> str:
        self.calls.append(("read_file", {"path": path}))
        return ""

    async def suggest(self, code: str, *, title: str, mode: str) -> dict[str, Any] | None:
        suggestion = {"code": code, "title": title, "mode": mode}
        self.calls.append(("suggest", suggestion))
        return suggestion


def registry_with(module: ModuleType) -> PluginRegistry:
    registry = PluginRegistry()
    record = registry.register_builtin(module.spec, module)
    assert str(record.state) == "loaded", record.reason
    return registry


async def run(
    module: ModuleType,
    command: str,
    args: Sequence[str] = (),
    *,
    context: Mapping[str, Any] | None = None,
    has_model: bool = False,
    replies: Sequence[str] = (),
    hits: Sequence[dict[str, Any]] = (),
    permissions: frozenset[str] | None = None,
) -> tuple[Any, RecordingServices]:
    """Run `/command ARGS` of `module` through a real registry and a real CommandContext."""
    services = RecordingServices(replies=list(replies), hits=list(hits))
    ctx = CommandContext(
        plugin=module.spec.name,
        permissions=module.spec.permissions if permissions is None else permissions,
        services=services,
        text=" ".join(args),
        context=dict(context or {}),
        has_model=has_model,
    )
    result = await registry_with(module).run_command(command, ctx, list(args))
    return result, services
