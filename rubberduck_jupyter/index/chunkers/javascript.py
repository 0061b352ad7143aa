"""JavaScript chunks from tree-sitter: functions (declared, or assigned at top level), classes
and methods alone, other code packed. TypeScript needs a grammar not installed here, so .ts
files go to the text chunker instead.

Headers carry the parameter names (`(a, b)`, a class's `extends`) and the first sentence of
the comment just above the definition (JSDoc or `//` lines), see headers.py."""

from __future__ import annotations

from tree_sitter import Node

from ..tokens import TokenCounter
from ..types import Chunk, ChunkKind
from .code import Item, arrange, code_chunks, last_row, normalize_newlines
from .headers import signature
from .parsers import parser

_FUNCTION_DECLARATIONS = frozenset({"function_declaration", "generator_function_declaration"})
_FUNCTION_VALUES = frozenset(
    {"arrow_function", "function_expression", "function", "generator_function"}
)
_CLASS_NODES = frozenset({"class_declaration", "class"})
_VARIABLE_DECLARATIONS = frozenset({"lexical_declaration", "variable_declaration"})


def chunk_javascript(
    source: str, rel_path: str, counter: TokenCounter, *, overlap_tokens: int = 32
) -> list[Chunk]:
    text = normalize_newlines(source)
    if not text.strip():
        return []
    root = parser("javascript").parse(text.encode("utf-8")).root_node
    items = arrange([_item(node, in_class=False) for node in root.children])
    return code_chunks(
        items, text.split("\n"), rel_path, counter, comment="//", overlap_tokens=overlap_tokens
    )


def _item(node: Node, *, in_class: bool) -> Item:
    start, end = node.start_point.row, last_row(node)
    plain = Item(
        ChunkKind.MODULE,
        None,
        start,
        end,
        is_comment=node.type == "comment",
        is_punctuation=not node.is_named,
    )
    found = _member(node) if in_class else _definition(node)
    if found is None:
        return plain
    name, value = found
    body = value.child_by_field_name("body")
    # A brace body opens on the signature's line; what follows it is left to the member.
    body_start = None if body is None else body.start_point.row + 1
    if body_start is not None and body_start > end:
        body_start = None
    if value.type not in _CLASS_NODES:
        kind = ChunkKind.METHOD if in_class else ChunkKind.FUNCTION
        sig = _signature(value)
        return Item(kind, name, start, end, body_start, signature=sig, head=start)
    members: tuple[Item, ...] = ()
    if body is not None:
        children = arrange([_item(child, in_class=True) for child in body.children])
        members = tuple(item for item in children if item.kind is not ChunkKind.MODULE)
    heritage = next((c for c in value.named_children if c.type == "class_heritage"), None)
    sig = f"({_text(heritage)})" if heritage is not None else ""
    return Item(ChunkKind.CLASS, name, start, end, body_start, members, signature=sig, head=start)


def _signature(function: Node) -> str:
    parameters = function.child_by_field_name("parameters")
    if parameters is None:  # an arrow function of one bare parameter: `x => x * 2`
        single = _text(function.child_by_field_name("parameter"))
        return f"({single})" if single else ""
    shown = [p for p in parameters.named_children if p.type != "comment"]
    return signature([_parameter_name(p) for p in shown])


def _parameter_name(parameter: Node) -> str:
    if parameter.type == "assignment_pattern":  # `b = 1`
        return _text(parameter.child_by_field_name("left")) or "?"
    return _text(parameter) or "?"  # a name, `...rest`, or a destructuring pattern


def _definition(node: Node) -> tuple[str, Node] | None:
    """Name and function or class node of a top-level definition, None for other code."""
    if node.type == "export_statement":
        inner = node.child_by_field_name("declaration") or node.child_by_field_name("value")
        if inner is None:
            return None
        found = _definition(inner)
        if found is None and inner.type in _FUNCTION_VALUES | _CLASS_NODES:
            return "default", inner
        return found
    if node.type in _FUNCTION_DECLARATIONS or node.type in _CLASS_NODES:
        return _text(node.child_by_field_name("name")) or "default", node
    if node.type in _VARIABLE_DECLARATIONS:
        declarators = [
            child for child in node.named_children if child.type == "variable_declarator"
        ]
        if len(declarators) == 1:
            return _assigned(
                declarators[0].child_by_field_name("name"),
                declarators[0].child_by_field_name("value"),
            )
        return None
    if node.type == "expression_statement" and node.named_child_count == 1:
        assignment = node.named_children[0]
        if assignment.type == "assignment_expression":
            return _assigned(
                assignment.child_by_field_name("left"), assignment.child_by_field_name("right")
            )
    return None


def _member(node: Node) -> tuple[str, Node] | None:
    if node.type == "method_definition":
        return _text(node.child_by_field_name("name")) or "?", node
    if node.type == "field_definition":
        return _assigned(node.child_by_field_name("property"), node.child_by_field_name("value"))
    return None


def _assigned(target: Node | None, value: Node | None) -> tuple[str, Node] | None:
    if target is None or value is None:
        return None
    if value.type in _FUNCTION_VALUES or value.type in _CLASS_NODES:
        return _text(target) or "?", value
    return None


def _text(node: Node | None) -> str | None:
    if node is None or node.text is None:
        return None
    return " ".join(node.text.decode("utf-8", "replace").split())
