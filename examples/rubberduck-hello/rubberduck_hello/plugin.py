"""The `hello` plugin: `/hello [NAME]` and a `post_response` hook counting answers.

Uses only the public plugin API. `/hello` greets with `ctx.say`; with a model it asks for
a one-line duck fact, without one it says so and still answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rubberduck_jupyter.plugins import command, hookimpl, plugin

spec = plugin(
    name="hello",
    version="1.0.0",
    api=">=1,<2",
    permissions=["call_model"],
    description="Greets people and counts answers",
)

ANSWERS_SEEN = {"count": 0}


@command("hello", help="Say hello (and a duck fact when a model is configured)", args=["NAME?"])
async def hello(ctx, name: str = "") -> str:
    who = name or ctx.user or "there"
    await ctx.say(f"Hello, {who}!")
    if ctx.has_model:
        fact = await ctx.ask("Tell me one surprising fact about ducks, in one sentence.")
        return f"Hello, {who}! {fact.strip()}"
    await ctx.say("_No model is configured, so no duck fact today._")
    return f"Hello, {who}!"


@hookimpl
def post_response(text: str, context: Mapping[str, Any]) -> None:
    ANSWERS_SEEN["count"] += 1
