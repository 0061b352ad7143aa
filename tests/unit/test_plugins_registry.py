"""The registry: built-ins through the public spec, rows for CLI/JSON, clashes, state events."""

from __future__ import annotations

import json
import types
from typing import Any

import pytest

from rubberduck_jupyter.plugins import (
    AccessPolicy,
    EventBus,
    PluginRegistry,
    PluginSpec,
    PluginStateChanged,
    command,
    hookimpl,
    plugin,
)

pytestmark = pytest.mark.timeout(5)


def builtin(name: str, **attrs: Any) -> tuple[PluginSpec, types.ModuleType]:
    mod = types.ModuleType(f"rubberduck_jupyter.engines.{name}")
    for key, value in attrs.items():
        setattr(mod, key, value)
    return plugin(name=name, version="0.1.0", api=">=1,<2", provides=["engine"]), mod


def test_a_builtin_registers_through_the_same_spec_and_lists_as_json() -> None:
    @command("explain", help="Explain the active cell", args=["CELL"])
    async def explain(ctx: object, cell: str) -> str:
        return cell

    @hookimpl
    def route_hint(text: str) -> str | None:
        return "simple" if text.startswith("?") else None

    reg = PluginRegistry()
    rec = reg.register_builtin(*builtin("simple", explain=explain, route_hint=route_hint))
    assert rec.state == "loaded" and rec.kind == "builtin"
    assert rec.hooks == ("route_hint",)
    rows = reg.list()
    assert rows == [
        {
            "name": "simple",
            "version": "0.1.0",
            "source": "built-in rubberduck_jupyter.engines.simple",
            "state": "loaded",
            "permissions": [],
            "provides": ["engine"],
            "reason": "",
        }
    ]
    assert json.loads(json.dumps(rows)) == rows  # plain data, ready for the JSON API
    assert reg.commands()["explain"][0] == "simple"
    assert [r.name for r in reg.loaded(provides="engine")] == ["simple"]
    assert reg.loaded(provides="embedder") == []


def test_a_builtin_with_a_bad_hook_is_failed_not_raised() -> None:
    @hookimpl
    def pre_input(txt: str) -> str:
        return txt

    reg = PluginRegistry()
    rec = reg.register_builtin(*builtin("broken", pre_input=pre_input))
    assert rec.state == "failed"
    assert rec.reason.startswith("plugin 'broken': hooks: Argument(s) {'txt'}")


def test_a_builtin_spec_built_by_hand_is_validated() -> None:
    spec = PluginSpec(name="hand", version="1", api=">=1", provides=frozenset({"engines"}))
    rec = PluginRegistry().register_builtin(spec, types.ModuleType("m"))
    assert rec.state == "failed"
    assert rec.reason.startswith("plugin 'hand': provides: 'engines' is not an extension point")


def test_a_command_already_provided_skips_the_second_plugin() -> None:
    @command("doc", help="Write docs")
    async def doc(ctx: object) -> str:
        return ""

    reg = PluginRegistry()
    reg.register_builtin(*builtin("first", doc=doc))
    rec = reg.register_builtin(*builtin("second", doc=doc))
    assert rec.state == "skipped"
    assert rec.reason == "command '/doc' is already provided by plugin 'first'"
    assert reg.commands()["doc"][0] == "first"


def test_builtins_obey_the_admins_deny_list() -> None:
    reg = PluginRegistry(policy=AccessPolicy.of(deny=["simple"]))
    rec = reg.register_builtin(*builtin("simple"))
    assert (rec.state, rec.reason) == ("skipped", "denied by plugins_deny ('simple' is listed)")


async def test_every_state_a_record_enters_is_published() -> None:
    bus = EventBus()
    seen: list[tuple[str, str]] = []

    async def on_state(ev: PluginStateChanged) -> None:
        seen.append((ev.name, ev.state))

    bus.subscribe(on_state, types=(PluginStateChanged,), name="states")
    reg = PluginRegistry(bus=bus, policy=AccessPolicy.of(deny=["nope"]))
    reg.register_builtin(*builtin("ok"))
    reg.register_builtin(*builtin("nope"))
    reg.disable("ok", "switched off")
    await bus.join()
    assert seen == [("ok", "loaded"), ("nope", "skipped"), ("ok", "disabled")]
    assert reg.health()["ok"]["reason"] == "switched off"
    await bus.aclose()


async def test_run_command_checks_usage_and_guards_the_handler() -> None:
    import asyncio

    from rubberduck_jupyter.plugins import CommandError

    @command("greet", help="Greet someone", args=["NAME"])
    async def greet(ctx: dict[str, str], name: str) -> str:
        return f"{ctx['greeting']} {name}"

    @command("hang", help="Never answers")
    async def hang(ctx: object) -> str:
        await asyncio.sleep(60)
        return ""

    reg = PluginRegistry(command_timeout_s=0.05, max_consecutive_failures=2)
    reg.register_builtin(*builtin("greeter", greet=greet))
    reg.register_builtin(*builtin("hanger", hang=hang))
    assert await reg.run_command("/greet", {"greeting": "hi"}, ["ada"]) == "hi ada"
    with pytest.raises(CommandError, match=r"^usage: /greet NAME \(Greet someone\)$"):
        await reg.run_command("greet", {}, [])
    with pytest.raises(CommandError, match=r"^no command '/nope'; available: /greet, /hang$"):
        await reg.run_command("nope", {}, [])
    for _ in range(2):
        with pytest.raises(CommandError, match=r"^plugin 'hanger': /hang timed out after 0.05 s$"):
            await reg.run_command("hang", {}, [])
    assert reg.get("hanger").state == "disabled"  # type: ignore[union-attr]
    assert "hang" not in reg.commands()


async def test_an_optional_argument_may_be_left_out() -> None:
    from rubberduck_jupyter.plugins import CommandError

    @command("doc", help="Document a function", args=["NAME?"])
    async def doc(ctx: object, name: str = "") -> str:
        return f"doc<{name}>"

    reg = PluginRegistry()
    reg.register_builtin(*builtin("documenter", doc=doc))
    assert await reg.run_command("doc", None, []) == "doc<>"
    assert await reg.run_command("doc", None, ["load"]) == "doc<load>"
    with pytest.raises(CommandError, match=r"^usage: /doc \[NAME\] \(Document a function\)$"):
        await reg.run_command("doc", None, ["a", "b"])
