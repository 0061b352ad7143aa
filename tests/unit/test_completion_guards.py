"""The quality guards on completions, rule by rule (completion/guards.py)."""

from __future__ import annotations

import pytest

from rubberduck_jupyter.completion.guards import trim_completion

CASES = [
    # (why, raw completion, prefix, suffix, multiline, max_lines, shown)
    ("kept as is", "read_csv('a.csv')", "df = pd.", "", True, 5, "read_csv('a.csv')"),
    ("code fence taken out", "```python\nx + 1\n```", "y = ", "", True, 5, "x + 1"),
    ("end-of-text token cut", "x + 1<|endoftext|>junk", "y = ", "", True, 5, "x + 1"),
    (
        "full-width bar token cut",
        "x + 1<\uff5cend\u2581of\u2581sentence\uff5c>",
        "y = ",
        "",
        True,
        5,
        "x + 1",
    ),
    ("restated line dropped", "total = sum(v)", "total = ", "", True, 5, "sum(v)"),
    ("one line when not multiline", "a = 1\nb = 2", "", "", False, 5, "a = 1"),
    ("max_lines", "a = 1\nb = 2\nc = 3", "", "", True, 2, "a = 1\nb = 2"),
    ("suffix overlap cut", "sum(x))", "y = (", ")", True, 5, "sum(x)"),
    ("suffix closer not doubled", "x, y)", "f(", ")", True, 5, "x, y"),
    ("suffix line not repeated", "a = 1\nprint(a)\n", "", "\nprint(a)", True, 5, "a = 1"),
    ("a closer nothing opened", "1, 2]\nfoo()", "f(", "", True, 5, "1, 2"),
    ("brackets left open cut back", "a = 1\nb = f(2,", "", "", True, 5, "a = 1"),
    ("open bracket the suffix closes", "g(1", "x = ", ")", True, 5, "g(1"),
    ("brackets in strings ignored", "')' + s", "t = ", "", True, 5, "')' + s"),
    ("cut at a new cell", "a = 1\n# %%\nb = 2", "", "", True, 5, "a = 1"),
    ("block header parses", "for i in range(3):", "", "", True, 5, "for i in range(3):"),
    ("indented statement parses", "return x", "def f(x):\n    ", "", True, 5, "return x"),
    ("cut to the lines that parse", "a = 1\nb = = 2", "", "", True, 5, "a = 1"),
    ("nothing that parses: dropped", "= = =", "", "", True, 5, ""),
    ("empty dropped", "   \n ", "x = ", "", True, 5, ""),
    ("repeat of the line above dropped", "y = 2", "x = 1\ny = 2\n", "", True, 5, ""),
    ("mid-line text left to the model", "total, ", "f(", "rest)", True, 5, "total, "),
]


@pytest.mark.parametrize(
    ("raw", "prefix", "suffix", "multiline", "max_lines", "shown"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_trim(
    raw: str, prefix: str, suffix: str, multiline: bool, max_lines: int, shown: str
) -> None:
    assert trim_completion(raw, prefix, suffix, multiline=multiline, max_lines=max_lines) == shown
