"""The declarative spec: a valid one is plain data; each invalid field is named with its fix."""

from __future__ import annotations

from typing import Any

import pytest

from rubberduck_jupyter.plugins import (
    PLUGIN_API_VERSION,
    CommandSpec,
    PluginSpec,
    PluginSpecError,
    command,
    plugin,
)
from rubberduck_jupyter.plugins.spec import commands_of, validate_command, validate_spec

pytestmark = pytest.mark.timeout(5)

GOOD: dict[str, Any] = {"name": "hello", "version": "1.0", "api": ">=1,<2"}


def test_a_valid_spec_is_frozen_data_with_normalised_sets() -> None:
    spec = plugin(**GOOD, permissions=["call_model", "read_index"], provides=["engine"])
    assert spec == PluginSpec(
        name="hello",
        version="1.0",
        api=">=1,<2",
        permissions=frozenset({"call_model", "read_index"}),
        provides=frozenset({"engine"}),
    )
    assert spec.api_range.contains(PLUGIN_API_VERSION)
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"name": "Hello World"},
            "plugin 'Hello World': name: 'Hello World' is not a valid name; use 1-64 lowercase",
        ),
        ({"name": ""}, "plugin '<unnamed>': name: '' is not a valid name"),
        (
            {"version": "one"},
            "plugin 'hello': version: 'one' is not a PEP 440 version; use e.g. '1.0.0'",
        ),
        ({"api": ""}, "plugin 'hello': api: missing; declare the plugin-API range you support"),
        (
            {"api": "version one"},
            "plugin 'hello': api: 'version one' is not a PEP 440 version range; use e.g. '>=1,<2'",
        ),
        (
            {"permissions": ["netwrk"]},
            "plugin 'hello': permissions: 'netwrk' is not a permission; did you mean 'network'? "
            "use one of read_index, read_files, call_model, propose_edits, write_files, network",
        ),
        (
            {"permissions": "network"},
            "plugin 'hello': permissions: got the string 'network'; pass a list, e.g. ['network']",
        ),
        (
            {"provides": ["engines"]},
            "plugin 'hello': provides: 'engines' is not an extension point; did you mean "
            "'engine'? use one of analysis, generation, refactoring, documentation, engine, "
            "context_provider, embedder, agent_tool",
        ),
        (
            {"permissions": ["read_index", 1]},
            "plugin 'hello': permissions: 1 is not a permission; use one of read_index",
        ),
        (
            {"provides": ["telepathy"]},
            "plugin 'hello': provides: 'telepathy' is not an extension point; use one of",
        ),
    ],
)
def test_each_invalid_field_is_refused_with_plugin_field_and_fix(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(PluginSpecError) as err:
        plugin(**{**GOOD, **fields})
    assert str(err.value).startswith(message)
    assert err.value.field in str(err.value)


def test_a_hand_built_spec_is_validated_too() -> None:
    spec = PluginSpec(name="x", version="1", api=">=1", permissions=frozenset({"root"}))
    with pytest.raises(PluginSpecError, match=r"plugin 'x': permissions: 'root' is not"):
        validate_spec(spec)


async def _two(ctx: object, a: str, b: str) -> str:
    return a + b


def _sync(ctx: object) -> str:
    return ""


@pytest.mark.parametrize(
    ("cmd", "message"),
    [
        (
            CommandSpec(name="/hello", help="h", handler=_two),
            "plugin 'p': commands: '/hello' is not a valid command name; use 1-32 lowercase "
            "letters, digits or '-', starting with a letter, without the leading '/'",
        ),
        (
            CommandSpec(name="hello", help=" ", handler=_two),
            "plugin 'p': commands: 'hello': help is empty; say in one line what it does",
        ),
        (
            CommandSpec(name="hello", help="h", args=("A", "two words"), handler=_two),
            "plugin 'p': commands: 'hello': argument 'two words' is not a name; use e.g. 'NAME' or "
            "'NAME?'",
        ),
        (
            CommandSpec(name="hello", help="h", handler=_sync),
            "plugin 'p': commands: 'hello': the handler must be an 'async def handler(ctx, ...)'",
        ),
        (
            CommandSpec(name="hello", help="h", args=("A",), handler=_two),
            "plugin 'p': commands: 'hello': the handler takes (ctx, a, b) but args declares "
            "['A']; give it one parameter after ctx per declared argument, with a default for "
            "each optional one",
        ),
        (
            CommandSpec(name="hello", help="h", args=("A?", "B"), handler=_two),
            "plugin 'p': commands: 'hello': an optional argument ('NAME?') comes before a "
            "required one; put the optional ones last",
        ),
        (
            CommandSpec(name="hello", help="h", args=("A", "B?"), handler=_two),
            "plugin 'p': commands: 'hello': the handler takes (ctx, a, b) but args declares "
            "['A', 'B?']; give it one parameter after ctx per declared argument, with a default "
            "for each optional one",
        ),
    ],
)
def test_each_invalid_command_is_refused_precisely(cmd: CommandSpec, message: str) -> None:
    with pytest.raises(PluginSpecError) as err:
        validate_command("p", cmd)
    assert str(err.value) == message


def test_command_marks_the_handler_and_commands_of_collects_in_order() -> None:
    import types

    mod = types.ModuleType("m")

    @command("greet", help="Greet someone", args=["NAME"])
    async def greet(ctx: object, name: str) -> str:
        return name

    @command("bye", help="Say bye")
    async def bye(ctx: object) -> str:
        return "bye"

    mod.greet, mod.bye, mod.other = greet, bye, len  # type: ignore[attr-defined]
    found = commands_of(mod)
    assert [c.name for c in found] == ["greet", "bye"]
    assert found[0].args == ("NAME",) and found[0].handler is greet
    for cmd in found:
        validate_command("m", cmd)
