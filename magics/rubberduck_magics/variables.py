"""A short description of the user's variables, sent as context with a question.

Only cheap, side-effect-free facts: the type's name, a shape or length, a DataFrame's
first columns, or a repr cut short. Every access is guarded: a strange object can make
its summary empty, never the magic fail.
"""

from __future__ import annotations

import types
from typing import Any

MAX_VARIABLES = 100
MAX_SUMMARY = 120
_SKIPPED_NAMES = {"In", "Out", "exit", "quit", "get_ipython"}
_SKIPPED_TYPES = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)


def _summary(value: Any) -> str:
    parts: list[str] = []
    try:
        shape = getattr(value, "shape", None)
        if isinstance(shape, tuple):
            parts.append("shape " + " x ".join(str(n) for n in shape))
        columns = getattr(value, "columns", None)
        if columns is not None and hasattr(columns, "__iter__") and not isinstance(columns, str):
            names = [str(c) for _, c in zip(range(20), columns, strict=False)]
            parts.append("columns: " + ", ".join(names))
        if not parts and isinstance(value, list | tuple | dict | set | frozenset | str | bytes):
            parts.append(f"len {len(value)}")
        if not parts or isinstance(value, int | float | bool | str):
            text = repr(value) if not isinstance(value, str) else repr(value[:MAX_SUMMARY])
            parts.append(text[:80])
    except Exception:
        return ""
    return "; ".join(parts)[:MAX_SUMMARY]


def describe_namespace(
    namespace: dict[str, Any], hidden: set[str] | None = None
) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for name, value in list(namespace.items()):
        if name.startswith("_") or name in _SKIPPED_NAMES or (hidden and name in hidden):
            continue
        if isinstance(value, _SKIPPED_TYPES) or (callable(value) and not hasattr(value, "shape")):
            continue
        out.append({"name": name, "type": type(value).__name__, "summary": _summary(value)})
        if len(out) >= MAX_VARIABLES:
            break
    return out
