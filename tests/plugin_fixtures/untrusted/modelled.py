"""An untrusted plugin that declares call_model: its ctx.ask reaches the server's Services."""

from rubberduck_jupyter.plugins import command, plugin

spec = plugin(name="modelled", version="1.0", api=">=1,<2", permissions=["call_model"])


@command("asks2", help="Ask the model through ctx")
async def asks2(ctx):
    return await ctx.ask("what?", system="be brief")
