"""Plugins bundled with RubberDuck, written only against the public plugin API.

Each module here is one plugin (`doc`, `tests`, `pandas-review`). They import nothing from
rubberduck_jupyter except `rubberduck_jupyter.plugins` (the public API) and otherwise only the
standard library, so they prove that API is enough to build real features. They are registered
through the `rubberduck.plugins` entry points in pyproject.toml, exactly like a third-party
plugin package; docs/plugins-bundled.md describes them.
"""
