"""CommandContext: each method needing a permission refuses without it, in the server."""

from __future__ import annotations

from typing import Any

import pytest

from rubberduck_jupyter.plugins import METHOD_PERMISSIONS, CommandContext, PermissionRefused
from rubberduck_jupyter.plugins.context import call_method

pytestmark = pytest.mark.timeout(5)


class RecordingServices:
    """Answers every call and remembers it, so a refusal can be told from a pass."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def say(self, markdown: str) -> None:
        self.calls.append("say")

    async def check(self, code: str) -> list[dict[str, Any]]:
        self.calls.append("check")
        return []

    async def test_skeleton(self, source: str) -> str:
        self.calls.append("test_skeleton")
        return "def test_x(): ..."

    async def ask(self, prompt: str, *, system: str | None, checked: bool) -> str:
        self.calls.append("ask")
        return "answer"

    async def search(self, query: str, *, top_k: int) -> list[dict[str, Any]]:
        self.calls.append("search")
        return []

    async def read_file(self, path: str) -> str:
        self.calls.append("read_file")
        return ""

    async def suggest(self, code: str, *, title: str, mode: str) -> dict[str, Any] | None:
        self.calls.append("suggest")
        return None


ARGS: dict[str, tuple[Any, ...]] = {
    "say": ("hi",),
    "check": ("x = 1",),
    "test_skeleton": ("def f(): ...",),
    "ask": ("q",),
    "search": ("q",),
    "read_file": ("a.py",),
    "suggest": ("x = 1",),
}


@pytest.mark.parametrize("method", sorted(METHOD_PERMISSIONS))
async def test_each_method_needs_exactly_its_permission(method: str) -> None:
    needed = METHOD_PERMISSIONS[method]
    bare_services = RecordingServices()
    bare = CommandContext(plugin="p", permissions=frozenset(), services=bare_services)
    if needed is None:
        await call_method(bare, method, ARGS[method], {})
        assert bare_services.calls == [method]
    else:
        with pytest.raises(PermissionRefused) as err:
            await call_method(bare, method, ARGS[method], {})
        assert bare_services.calls == []  # refused before the server did anything
        assert str(err.value) == (
            f"plugin 'p' called ctx.{method}() without the {needed!r} permission; "
            f'add "{needed}" to permissions=[...] in its spec (an admin sees the list)'
        )
        granted_services = RecordingServices()
        granted = CommandContext(
            plugin="p", permissions=frozenset({needed}), services=granted_services
        )
        await call_method(granted, method, ARGS[method], {})
        assert granted_services.calls == [method]


async def test_only_the_listed_methods_are_reachable_by_name() -> None:
    ctx = CommandContext(plugin="p", permissions=frozenset(), services=RecordingServices())
    with pytest.raises(AttributeError, match="ctx has no method '_need'"):
        await call_method(ctx, "_need", ("ask",), {})
    with pytest.raises(AttributeError, match="ctx has no method 'services'"):
        call_method(ctx, "services", (), {})


async def test_arguments_are_checked_before_the_server_sees_them() -> None:
    services = RecordingServices()
    ctx = CommandContext(
        plugin="p", permissions=frozenset({"read_index", "propose_edits"}), services=services
    )
    with pytest.raises(TypeError, match="query must be a string, not int"):
        await ctx.search(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="top_k must be an integer from 1 to 50"):
        await ctx.search("q", top_k=500)
    with pytest.raises(ValueError, match="mode must be one of replace, insert_after"):
        await ctx.suggest("x = 1", mode="overwrite")
    assert services.calls == []


def test_can_says_what_was_declared() -> None:
    ctx = CommandContext(
        plugin="p", permissions=frozenset({"read_index"}), services=RecordingServices()
    )
    assert ctx.can("read_index") and not ctx.can("call_model")
