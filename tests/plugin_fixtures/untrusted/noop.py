"""The benchmark's plugin: a no-op command and a no-op hook."""

from rubberduck_jupyter.plugins import command, hookimpl, plugin

spec = plugin(name="noop", version="1.0", api=">=1,<2")


@command("noop", help="Do nothing")
async def noop(ctx):
    return None


@hookimpl
async def post_response(text, context):
    return None
