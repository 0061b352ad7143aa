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
    if kind is not None:
        allowed = _TYPES.get(kind, ())
        # bool is an int in Python; JSON keeps them apart.
        wrong = not isinstance(item, allowed) or (kind != "boolean" and isinstance(item, bool))
        if wrong:
            return [f"'{name}' must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}"]
    if "enum" in spec and item not in spec["enum"]:
        return [f"'{name}' must be one of {', '.join(map(str, spec['enum']))}"]
    out = []
    if "minimum" in spec and isinstance(item, int | float) and item < spec["minimum"]:
        out.append(f"'{name}' must be at least {spec['minimum']}")
    if "maximum" in spec and isinstance(item, int | float) and item > spec["maximum"]:
        out.append(f"'{name}' must be at most {spec['maximum']}")
    if "maxLength" in spec and isinstance(item, str) and len(item) > spec["maxLength"]:
        out.append(f"'{name}' is longer than {spec['maxLength']} characters")
    return out
