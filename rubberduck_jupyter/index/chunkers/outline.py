"""Headings and block starts of Markdown text, as tree-sitter-markdown parses them.

A parser rather than a regex so that `# comment` lines inside fenced code are not headings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tree_sitter import Node

from .parsers import parser

# "## Title ##": the closing run of hashes. Anchored at the end by the lookbehind and
# bounded, so a title of many spaces is not rescanned from every space.
_CLOSING_HASHES = re.compile(r"(?:^|(?<!\s)\s{1,200})#{1,200}\s{0,200}$")
# A line any heading needs: an ATX "#" opener or a setext underline. Most notebook markdown
# cells have none, and skipping their parse is most of the notebook chunker's parsing time.
_MAYBE_HEADING = re.compile(r"^ {0,3}(#|=+[ \t]*$|-+[ \t]*$)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Heading:
    row: int  # 0-based line
    level: int
    title: str


@dataclass(slots=True)
class Outline:
    headings: list[Heading] = field(default_factory=list)
    block_rows: list[int] = field(default_factory=list)  # first line of each block, in order


def outline(text: str) -> Outline:
    result = Outline()
    # Without a final line break the grammar reads a last "# Title" line as a paragraph.
    tree = parser("markdown").parse(text.encode("utf-8") + b"\n")
    _walk(tree.root_node, result)
    return result


def headings(text: str) -> list[Heading]:
    return outline(text).headings if _MAYBE_HEADING.search(text) else []


def _walk(node: Node, result: Outline) -> None:
    for child in node.children:
        if child.type == "section":
            _walk(child, result)
            continue
        result.block_rows.append(child.start_point.row)
        heading = _heading(child)
        if heading is not None:
            result.headings.append(heading)


def _heading(node: Node) -> Heading | None:
    if node.type == "atx_heading":
        marker = node.children[0].type  # atx_h<level>_marker
        level = int(marker[len("atx_h")]) if marker.startswith("atx_h") else 1
    elif node.type == "setext_heading":
        underline = node.children[-1].type
        level = 1 if underline == "setext_h1_underline" else 2
    else:
        return None
    content = node.child_by_field_name("heading_content")
    if content is None or content.text is None:
        return None
    title = _CLOSING_HASHES.sub("", content.text.decode("utf-8", "replace")).strip()
    title = " ".join(title.split())
    return Heading(node.start_point.row, level, title) if title else None
