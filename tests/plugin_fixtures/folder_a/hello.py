"""A folder plugin: one command and one tryfirst pre_input hook."""

from rubberduck_jupyter.plugins import command, hookimpl, plugin

spec = plugin(
    name="hello",
    version="1.0",
    api=">=1,<2",
    permissions=["call_model"],
    provides=["engine"],
    description="Says hello (folder_a)",
)


@command("hello", help="Say hello", args=["NAME"])
async def hello(ctx: object, name: str) -> str:
    return f"hello {name} from a"


@hookimpl(tryfirst=True)
def pre_input(text: str) -> str:
    return text + " [a]"
