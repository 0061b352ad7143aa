"""The text a notebook code cell printed, trimmed, for the cell's chunk.

Only what a reader would search for: streams, plain-text results and error messages.
Images, HTML, widget state and other rich outputs are skipped, and so are bare object reprs
like `<Figure at 0x7f...>` that only name an address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

DEFAULT_MAX_OUTPUT_CHARS = 400
OUTPUT_MARKER = "# Output:"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_ADDRESS_REPR = re.compile(r"^<[^<>]* at 0x[0-9a-fA-F]+>$")
_RICH_MIME_PREFIXES = ("image/", "application/vnd.jupyter.widget")


def output_text(outputs: Iterable[Mapping[str, Any]], max_chars: int) -> str:
    """The outputs' text, at most about `max_chars` characters ("..." marks a cut)."""
    parts = [part for part in map(_one_output, outputs) if part]
    text = "\n".join(parts)
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    # End on a whole line when one ends in the last quarter of the budget.
    line_end = cut.rfind("\n")
    if line_end >= max_chars * 3 // 4:
        cut = cut[:line_end]
    return cut.rstrip() + "\n..."


def _one_output(output: Mapping[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return _tidy(joined_text(output.get("text")))
    if kind == "error":
        name, value = joined_text(output.get("ename")), joined_text(output.get("evalue"))
        return _tidy(f"{name}: {value}")
    if kind in ("execute_result", "display_data"):
        data = output.get("data") or {}
        if any(str(mime).startswith(_RICH_MIME_PREFIXES) for mime in data):
            return ""  # the plain text of a figure or widget is a placeholder
        plain = _tidy(joined_text(data.get("text/plain")))
        return "" if _ADDRESS_REPR.match(plain.strip()) else plain
    return ""


def _tidy(text: str) -> str:
    # Leading spaces stay: they align the columns of a printed table.
    return _ANSI.sub("", text).strip("\n").rstrip()


def joined_text(value: Any) -> str:
    """nbformat stores multi-line strings as a str or a list of str."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(item for item in value if isinstance(item, str))
    return ""
