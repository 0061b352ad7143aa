"""A package-directory plugin whose code uses a relative import."""

from rubberduck_jupyter.plugins import hookimpl, plugin

from .rules import find

spec = plugin(name="pkgplug", version="0.1", api="~=1.0", provides=["analysis"])


@hookimpl
def analysis_augment(source: str) -> list[dict[str, object]]:
    return find(source)
