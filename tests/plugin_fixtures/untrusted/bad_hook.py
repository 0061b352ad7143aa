"""A hook with an argument the hookspec does not have (pluggy refuses it)."""

from rubberduck_jupyter.plugins import hookimpl, plugin

spec = plugin(name="bad_hook", version="1.0", api=">=1,<2")


@hookimpl
def pre_input(txt):
    return txt
