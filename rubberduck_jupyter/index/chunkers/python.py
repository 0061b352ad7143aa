"""Python chunks from tree-sitter: functions, classes and methods alone, other code packed.

Each definition's header carries its parameter names (a class: its bases) and its
docstring's first sentence; module code carries the module docstring's (headers.py)."""

from __future__ import annotations

from tree_sitter import Node

from ..tokens import TokenCounter
from ..types import Chunk, ChunkKind
from .code import Item, arrange, code_chunks, last_row, normalize_newlines
from .headers import MAX_SIGNATURE_CHARS, clip, signature, string_summary
from .parsers import parser

# A method's first parameter is the instance or the class: the qualified name says so.
_RECEIVERS = frozenset({"self", "cls"})
# Parameter nodes whose name is their `name` field; bare identifiers are their own name.
_NAMED_PARAMETERS = frozenset({"default_parameter", "typed_default_parameter"})


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
        items,
        text.split("\n"),
        rel_path,
        counter,
        comment="#",
        overlap_tokens=overlap_tokens,
        module_summary=_docstring(root.children),
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
    name = _text(definition.child_by_field_name("name")) or "?"
    body = definition.child_by_field_name("body")
    body_start = None
    if body is not None and body.start_point.row > definition.start_point.row:
        body_start = body.start_point.row
    summary = _docstring(body.children) if body is not None else ""
    if definition.type == "function_definition":
        kind = ChunkKind.METHOD if in_class else ChunkKind.FUNCTION
        sig = _signature(definition, in_class)
        return Item(kind, name, start, end, body_start, signature=sig, summary=summary, head=start)
    members: tuple[Item, ...] = ()
    if body is not None:
        children = _items(body.children, in_class=True)
        members = tuple(item for item in children if item.kind is not ChunkKind.MODULE)
    bases = definition.child_by_field_name("superclasses")
    return Item(
        ChunkKind.CLASS,
        name,
        start,
        end,
        body_start,
        members,
        signature=clip(_text(bases) or "", MAX_SIGNATURE_CHARS) if bases is not None else "",
        summary=summary,
        head=start,
    )


def _signature(function: Node, in_class: bool) -> str:
    parameters = function.child_by_field_name("parameters")
    if parameters is None:
        return ""
    shown = [p for p in parameters.named_children if p.type != "comment"]
    if in_class and shown and shown[0].type == "identifier" and _text(shown[0]) in _RECEIVERS:
        shown = shown[1:]
    return signature([_parameter_name(p) for p in shown])


def _parameter_name(parameter: Node) -> str:
    if parameter.type in _NAMED_PARAMETERS:
        return _text(parameter.child_by_field_name("name")) or "?"
    if parameter.type == "typed_parameter":
        # `x: int`, `*args: int`: the name is what precedes the annotation.
        text = _text(parameter) or "?"
        return text.split(":", 1)[0].strip()
    return _text(parameter) or "?"  # a name, *args, **kwargs, or the `*` and `/` markers


def _docstring(nodes: list[Node]) -> str:
    """The first sentence of the docstring that opens a body (or a module), if any."""
    for node in nodes:
        if node.type == "comment" or not node.is_named:
            continue  # comments, and a block's leading ":" or newline tokens
        if node.type == "expression_statement" and node.named_child_count == 1:
            literal = node.named_children[0]
            if literal.type == "string":
                return string_summary(_text(literal, keep_space=True) or "")
        return ""
    return ""


def _text(node: Node | None, *, keep_space: bool = False) -> str | None:
    if node is None or node.text is None:
        return None
    text = node.text.decode("utf-8", "replace")
    return text if keep_space else " ".join(text.split())
