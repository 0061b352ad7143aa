"""Every regular expression the package runs over user text stays linear in the text's
length, so no message, cell, traceback or file can stall the server (a quadratic
password-in-URL pattern once held the event loop for 65 s on one 20,000-character word).

The patterns are found, not listed: every compiled pattern held by a module of the package
(also inside tuples, lists and dicts), every pattern literal passed to `re.*` calls in its
source, and the secret rules' provider patterns (detect-secrets' included, so an upgrade
that brings a backtracking pattern fails here). Each runs over adversarial inputs at two
sizes; a quadratic pattern takes ~16x longer on 4x the input, a linear one ~4x. A time
ratio within one process on one input family, not a speed measurement.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import time
from pathlib import Path
from typing import Any

import rubberduck_jupyter
from rubberduck_jupyter.context import secret_rules

PACKAGE_DIR = Path(rubberduck_jupyter.__file__).parent
SKIP_MODULES = ("rubberduck_jupyter.testing", "rubberduck_jupyter.labextension")
SMALL, LARGE = 3_000, 12_000
# Above this time on the large input a pattern is looked at; below it, noise dominates.
FLOOR_S = 0.02
MAX_RATIO = 9.0  # linear ~4, quadratic ~16
REPEATS = 5  # runs of each size once a pattern looks slow; the fastest counts

UNITS = [
    *"aA0 \t\n:/@.-_=\"'([{,#%\\*+;!?<>|&$~`",
    "a:",
    "a/",
    "a.",
    "a ",
    "a=",
    "a-",
    "a@",
    ":/",
    "//",
    "a1",
    "aA1",
    "Error: ",
    'File "',
    " line ",
    "http://",
    "# ",
    "```",
    "    ",
    "\\n",
]


def _module_patterns() -> dict[str, re.Pattern[str]]:
    found: dict[str, re.Pattern[str]] = {}

    def collect(where: str, value: Any, depth: int = 0) -> None:
        if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
            found.setdefault(value.pattern + str(value.flags), value)
        elif depth < 2 and isinstance(value, list | tuple | set | frozenset):
            for item in value:
                collect(where, item, depth + 1)
        elif depth < 2 and isinstance(value, dict):
            for item in value.values():
                collect(where, item, depth + 1)

    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], "rubberduck_jupyter."):
        if info.name.startswith(SKIP_MODULES):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            collect(f"{info.name}.{name}", value)
    for gated in secret_rules.provider_patterns():
        collect("provider", gated.pattern)
    return found


def _source_literals() -> dict[str, re.Pattern[str]]:
    """Patterns written inline: re.search(r"...", text) and friends."""
    found: dict[str, re.Pattern[str]] = {}
    calls = {"search", "match", "fullmatch", "sub", "subn", "findall", "finditer", "split"}
    for path in PACKAGE_DIR.rglob("*.py"):
        if "testing" in path.parts or "labextension" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "re"
                and node.func.attr in calls
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                continue
            flags = (
                re.IGNORECASE if "IGNORECASE" in ast.dump(node) or "re.I" in ast.dump(node) else 0
            )
            try:
                compiled = re.compile(node.args[0].value, flags)
            except re.error:
                continue
            found.setdefault(compiled.pattern + str(compiled.flags), compiled)
    return found


def _inputs(pattern: re.Pattern[str], size: int) -> list[str]:
    units = list(UNITS)
    for gate in secret_rules.literal_gates(pattern):
        units.extend([gate, gate + "a"])
    literal = re.match(r"[A-Za-z_\-:/@.]{2,}", pattern.pattern)
    if literal:
        units.append(literal.group())
    out = []
    for unit in units:
        out.append((unit * (size // len(unit) + 1))[:size])
        out.append(unit + "a" * size)
    return out


def _cost(pattern: re.Pattern[str], text: str) -> float:
    start = time.perf_counter()
    for _ in pattern.finditer(text):
        pass
    return time.perf_counter() - start


def test_every_pattern_over_user_text_is_linear(cases: Any) -> None:
    patterns = {**_module_patterns(), **_source_literals()}
    assert len(patterns) > 60  # the discovery found the package's patterns
    slow: list[str] = []
    tried = 0
    for pattern in patterns.values():
        small_inputs = _inputs(pattern, SMALL)
        large_inputs = _inputs(pattern, LARGE)
        for small, large in zip(small_inputs, large_inputs, strict=True):
            tried += 1
            large_cost = _cost(pattern, large)
            if large_cost < FLOOR_S:
                continue
            # Re-measure before calling it, taking the fastest of several runs of each: on a
            # loaded machine (2 cores, a build beside the tests) one run of either size can be
            # preempted for tens of ms, which made linear patterns look 20-200x slower.
            small_cost = max(min(_cost(pattern, small) for _ in range(REPEATS)), 1e-6)
            large_cost = min(large_cost, *(_cost(pattern, large) for _ in range(REPEATS)))
            if large_cost >= FLOOR_S and large_cost / small_cost > MAX_RATIO:
                slow.append(
                    f"{pattern.pattern[:80]!r} on {large[:12]!r}...: {small_cost * 1e3:.1f} ms "
                    f"at {SMALL}, {large_cost * 1e3:.1f} ms at {LARGE}"
                )
                break  # one input is proof enough; the rest would only cost time
    cases.add(tried, tried - len(slow))
    assert not slow, "patterns that are not linear:\n" + "\n".join(slow)


def test_redacting_a_long_word_does_not_stall() -> None:
    """The finding itself: one long word of URL-ish characters, the old worst case."""
    from rubberduck_jupyter.context.redact import redact

    costs = []
    for size in (10_000, 40_000):
        word = "postgres://" + "a" * size
        start = time.perf_counter()
        redact(word, [])
        costs.append(time.perf_counter() - start)
    # Linear: ~4x for 4x the length (the old pattern: ~16x, and 65 s at 20,000).
    assert costs[1] < max(0.05, costs[0] * MAX_RATIO), costs
