"""Python chunks from tree-sitter: functions, classes and methods alone, other code packed."""

from __future__ import annotations

from tree_sitter import Node

from ..tokens import TokenCounter
from ..types import Chunk, ChunkKind
from .code import Item, arrange, code_chunks, last_row, normalize_newlines
from .parsers import parser


def chunk_python(
    source: str, rel_path: str, counter: TokenCounter, *, overlap_tokens: int = 32
) -> list[Chunk]:
    """Chunks of a Python file; syntax errors only turn the broken part into module code."""
    text = normalize_newlines(source)
    if not text.strip():
        return []
    root = parser("python").parse(text.encode("utf-8")).root_node
    items = _items(root.children, in_class=False)
    return code_chunks(
        items, text.split("\n"), rel_path, counter, comment="#", overlap_tokens=overlap_tokens
    )


def _items(nodes: list[Node], *, in_class: bool) -> list[Item]:
    return arrange([_item(node, in_class) for node in nodes])


def _item(node: Node, in_class: bool) -> Item:
    start, end = node.start_point.row, last_row(node)
    definition = (
        node.child_by_field_name("definition") if node.type == "decorated_definition" else node
    )
    if definition is None or definition.type not in ("function_definition", "class_definition"):
        return Item(
            ChunkKind.MODULE,
            None,
            start,
            end,
            is_comment=node.type == "comment",
            is_punctuation=not node.is_named,
        )
    name_node = definition.child_by_field_name("name")
    name = name_node.text.decode("utf-8", "replace") if name_node and name_node.text else "?"
    body = definition.child_by_field_name("body")
    body_start = None
    if body is not None and body.start_point.row > definition.start_point.row:
        body_start = body.start_point.row
    if definition.type == "function_definition":
        kind = ChunkKind.METHOD if in_class else ChunkKind.FUNCTION
        return Item(kind, name, start, end, body_start)
    members: tuple[Item, ...] = ()
    if body is not None:
        children = _items(body.children, in_class=True)
        members = tuple(item for item in children if item.kind is not ChunkKind.MODULE)
    return Item(ChunkKind.CLASS, name, start, end, body_start, members)
