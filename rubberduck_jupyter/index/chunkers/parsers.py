"""Tree-sitter parsers for the grammars the chunkers use, one per thread.

A tree-sitter parser holds parse state and must not be shared by threads that chunk at the
same time (the server may chunk off its event loop); languages are immutable and shared.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache

from tree_sitter import Language, Parser

_local = threading.local()


def _python() -> object:
    import tree_sitter_python

    return tree_sitter_python.language()


def _javascript() -> object:
    import tree_sitter_javascript

    return tree_sitter_javascript.language()


def _markdown() -> object:
    import tree_sitter_markdown

    return tree_sitter_markdown.language()  # the block grammar: headings, code, lists


_GRAMMARS: dict[str, Callable[[], object]] = {
    "python": _python,
    "javascript": _javascript,
    "markdown": _markdown,
}


@cache
def _language(name: str) -> Language:
    return Language(_GRAMMARS[name]())


def parser(name: str) -> Parser:
    """This thread's parser for grammar `name` ("python", "javascript" or "markdown")."""
    parsers: dict[str, Parser] | None = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    if name not in parsers:
        parsers[name] = Parser(_language(name))
    return parsers[name]
