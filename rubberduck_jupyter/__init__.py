"""RubberDuck: an AI coding assistant inside JupyterLab.

Importing this package must stay cheap: the server imports it at start, so nothing
heavy (litellm, torch) is imported here or by the extension's load hook.
"""

from __future__ import annotations

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    from .app import RubberDuckApp

    return [{"module": "rubberduck_jupyter", "app": RubberDuckApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "rubberduck-jupyter"}]
