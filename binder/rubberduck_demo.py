"""A server extension of the demo (enabled by binder/jupyter_server_config.py): once the
server runs, it indexes the demo's folder, so `%duck search` in binder/demo.ipynb finds
something on a fresh Binder. A kernel's token may search but not start indexing, and the
sidebar's "Index this project" needs a click; this is that click, for the demo only.

The folder indexed is binder/ when it lies inside the server's root (Binder: the root is
the repository), else the whole root (a test's copy of the demo). A keyword-only index
(no torch) takes about a second; with MiniLM, a few.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "rubberduck_demo"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    serverapp.log.info("RubberDuck demo: the demo folder is indexed once the server runs")


def demo_folder(root: Path) -> str:
    """The demo's folder relative to `root` ("" for the whole root)."""
    try:
        rel = HERE.relative_to(root.resolve())
    except ValueError:
        return ""
    return rel.as_posix() if rel.parts else ""


def _rubberduck(serverapp: Any) -> Any:
    apps = serverapp.extension_manager.extension_apps.get("rubberduck_jupyter", set())
    return next((app for app in apps if hasattr(app, "index")), None)


async def _start_jupyter_server_extension(serverapp: Any) -> None:
    app = _rubberduck(serverapp)
    if app is None:
        serverapp.log.warning("RubberDuck demo: RubberDuck is not loaded; nothing to index")
        return
    folder = demo_folder(Path(serverapp.root_dir))
    try:
        # Returns at once: the indexing runs as a task of the server's loop.
        await app.index.start([folder] if folder else [])
    except Exception as exc:  # a demo nicety: the server runs on without it
        serverapp.log.warning("RubberDuck demo: could not index %r: %s", folder or ".", exc)
    else:
        serverapp.log.info("RubberDuck demo: indexing %r", folder or ".")
