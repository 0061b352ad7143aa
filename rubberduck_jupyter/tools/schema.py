"""Validates a model's tool arguments against the subset of JSON Schema our tools use:
an object with typed properties (string, integer, number, boolean), `required`, `enum`,
`minimum`/`maximum`, `maxLength`, and no unknown keys. Small on purpose: a full validator
(jsonschema) costs ~100 ms to import and builds per-schema machinery on first use, for
schemas of three fields; the messages here are written for a model to correct itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def problems(schema: Mapping[str, Any], value: Any) -> list[str]:
    """What is wrong with `value` as arguments for `schema` (empty: valid)."""
    if not isinstance(value, dict):
        return ["the arguments must be a JSON object"]
    properties: Mapping[str, Any] = schema.get("properties", {})
    out = [f"missing required field '{n}'" for n in schema.get("required", ()) if n not in value]
    if schema.get("additionalProperties", True) is False:
        unknown = sorted(set(value) - set(properties))
        if unknown:
            known = ", ".join(properties) or "none"
            out.append(f"unknown field(s) {', '.join(unknown)} (the fields are: {known})")
    for name, spec in properties.items():
        if name in value:
            out.extend(_field_problems(name, spec, value[name]))
    return out


def _field_problems(name: str, spec: Mapping[str, Any], item: Any) -> list[str]:
    kind = spec.get("type")
    # An MCP server's schema may name several types (["string", "null"]) or one this
    # subset does not know: the first must match one of them, the second is not checked.
    kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else []
    known = [k for k in kinds if isinstance(k, str) and k in _TYPES]
    if known and len(known) == len(kinds) and not any(_is(item, k) for k in known):
        article = "an" if known[0][0] in "aeiou" else "a"
        return [f"'{name}' must be {article} {' or '.join(known)}"]
    if isinstance(spec.get("enum"), list) and item not in spec["enum"]:
        return [f"'{name}' must be one of {', '.join(map(str, spec['enum']))}"]
    out = []
    if "minimum" in spec and isinstance(item, int | float) and item < spec["minimum"]:
        out.append(f"'{name}' must be at least {spec['minimum']}")
    if "maximum" in spec and isinstance(item, int | float) and item > spec["maximum"]:
        out.append(f"'{name}' must be at most {spec['maximum']}")
    if "maxLength" in spec and isinstance(item, str) and len(item) > spec["maxLength"]:
        out.append(f"'{name}' is longer than {spec['maxLength']} characters")
    return out


def _is(item: Any, kind: str) -> bool:
    # bool is an int in Python; JSON keeps them apart.
    return isinstance(item, _TYPES[kind]) and (kind == "boolean" or not isinstance(item, bool))
