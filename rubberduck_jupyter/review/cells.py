"""Notebook-aware source preparation.

A notebook cell is Python plus IPython syntax (`%magic`, `%%cell_magic`, `!shell`, `x?`)
that `ast` and ruff reject. `mask_magics` rewrites only those lines, one output line per
input line, so every line number a checker reports is the line the user sees.
`extract_code_blocks` finds the Python code in a model's markdown answer.
"""

from __future__ import annotations

import ast
import re
import threading
from dataclasses import dataclass

# Cell magics whose body is Python (the first line is options, sometimes a setup statement).
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "memit"})
# Line magics whose argument, after options, is a Python statement.
PYTHON_LINE_MAGICS = frozenset({"time", "timeit", "prun", "debug", "memit"})
# Options of those magics that take a value (`%timeit -n 100 -r 3 f(x)`).
_OPTIONS_WITH_VALUE = frozenset({"-n", "-r", "-p", "-s", "-l", "-T", "-D", "-m", "-S"})

# `x = %time f()`, `files = !ls`. The target is bounded and ends at a non-space, so the
# match costs O(line) (a lazy run followed by `\s*` was quadratic on a line of spaces).
_ASSIGN_FROM_ESCAPE = re.compile(
    r"^(?P<lhs>[\w.,\[\]()*](?:[\w.,\s\[\]()*]{0,200}[\w.,\[\]()*])?)[ \t]{0,40}=[ \t]{0,40}[%!]"
)
_PROMPT_ESCAPES = ("%", "!", "?", "/", ";", ",")


@dataclass(frozen=True, slots=True)
class MaskedCell:
    """`source` has exactly as many lines as the input; `masked_lines` (1-based) were
    rewritten. `cell_magic` names a `%%magic` on the first line; `is_python` is False when
    that magic's body is not Python (`%%bash`, `%%html`, `%%sql`...): nothing to check."""

    source: str
    masked_lines: tuple[int, ...]
    cell_magic: str | None
    is_python: bool


@dataclass(frozen=True, slots=True)
class CodeBlock:
    lang: str  # the fence's language tag, lower-cased; "" when untagged
    code: str
    index: int  # position among all fenced blocks of the document, 0-based
    start_line: int = 0  # 1-based line of the document where the code starts


# CPython 3.11 builds the Python ast objects with one recursion counter per interpreter:
# two threads parsing at once (two notebook reviews in the thread pool) can fail with
# "SystemError: AST constructor recursion depth mismatch" (seen in CI). Parsing is
# milliseconds a cell, so one parse at a time costs nothing measurable.
_PARSE_LOCK = threading.Lock()


def parse_python(
    source: str, filename: str = "<cell>", *, top_level_await: bool = True
) -> ast.Module:
    """`ast.parse`, accepting the top-level `await` that IPython runs. Raises SyntaxError
    (or ValueError for null bytes) like `ast.parse`."""
    flags = ast.PyCF_ONLY_AST | (ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if top_level_await else 0)
    with _PARSE_LOCK:
        tree = compile(source, filename, "exec", flags=flags, dont_inherit=True)
    assert isinstance(tree, ast.Module)
    return tree


def parse_cell(source: str) -> ast.Module:
    """A notebook cell's ast, IPython syntax masked. Raises SyntaxError like `ast.parse`."""
    try:
        return parse_python(source)
    except (SyntaxError, ValueError):
        return parse_python(mask_magics(source).source)  # IPython syntax never parses


def _parses(code: str) -> bool:
    try:
        parse_python(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _strip_magic_options(args: str) -> str:
    """`-n 10 -r 3 f(x)` -> `f(x)`: drop the leading option tokens of a timing magic."""
    words = args.split(" ")
    index = 0
    while index < len(words):
        word = words[index]
        if word == "":
            index += 1
        elif word in _OPTIONS_WITH_VALUE:
            index += 2
        elif word.startswith("-") and len(word) > 1 and not word[1].isdigit():
            index += 1
        else:
            break
    return " ".join(words[index:]).strip()


class _LineScanner:
    """Tracks, line by line, whether the next line starts a new statement: not inside a
    bracket, a triple-quoted string, or after a backslash continuation. Magics are only
    recognised at statement starts, so `%` in `a = (b\\n % c)` or `!` in a docstring stay."""

    def __init__(self) -> None:
        self.depth = 0
        self.triple: str | None = None
        self.continued = False

    @property
    def at_statement_start(self) -> bool:
        return self.depth == 0 and self.triple is None and not self.continued

    def feed(self, line: str) -> None:
        i, n = 0, len(line)
        while i < n:
            if self.triple is not None:
                end = line.find(self.triple, i)
                if end < 0:
                    break
                if self._escaped(line, end):
                    i = end + 1
                    continue
                i = end + 3
                self.triple = None
                continue
            char = line[i]
            if char == "#":
                break
            if char in "\"'":
                if line.startswith(char * 3, i):
                    self.triple = char * 3
                    i += 3
                    continue
                i = self._skip_string(line, i + 1, char)
                continue
            if char in "([{":
                self.depth += 1
            elif char in ")]}":
                self.depth = max(0, self.depth - 1)
            i += 1
        self.continued = self.triple is None and line.rstrip("\r\n").endswith("\\")

    @staticmethod
    def _escaped(line: str, index: int) -> bool:
        backslashes = 0
        while index - 1 - backslashes >= 0 and line[index - 1 - backslashes] == "\\":
            backslashes += 1
        return backslashes % 2 == 1

    @staticmethod
    def _skip_string(line: str, i: int, quote: str) -> int:
        while i < len(line):
            if line[i] == "\\":
                i += 2
                continue
            if line[i] == quote:
                return i + 1
            i += 1
        return i  # unterminated: the parser will say so


def _code_ends_with_question_mark(line: str) -> bool:
    """`obj?`, `obj.method??`, `np.*load*?`: IPython help, never valid Python."""
    code = line.split("#", 1)[0].rstrip()
    return code.endswith("?") and not any(q in code for q in "\"'")


def _mask_line_magic(indent: str, body: str) -> str:
    """A `%magic args` line: keep its Python argument for timing magics, else `pass`."""
    name, _, args = body[1:].partition(" ")
    if name in PYTHON_LINE_MAGICS:
        statement = _strip_magic_options(args)
        if statement and _parses(statement):
            return indent + statement
    return indent + "pass"


def mask_magics(source: str) -> MaskedCell:
    """Rewrite the IPython-only lines of a cell into neutral Python, line for line.

    - `%%magic` on the first line: for Python-bodied magics (`%%time`, `%%timeit`,
      `%%capture`...) the line becomes its setup statement or `pass` and the body stays;
      for the others (`%%bash`, `%%html`...) every line is blanked and `is_python` is False.
    - `%time stmt` / `%timeit -n 3 stmt` keep `stmt` (names it binds stay defined).
    - `x = %magic ...` and `x = !cmd` become `x = ...`, so `x` stays defined.
    - other magics, `!cmd`, help (`x?`, `?x`) become `pass` at the same indentation (a
      masked line may be a block's only statement); backslash-continued lines go blank.
    """
    lines = source.split("\n")
    masked: list[int] = []
    first_code = next((i for i, line in enumerate(lines) if line.strip()), None)
    cell_magic: str | None = None
    start = 0
    if first_code is not None and lines[first_code].lstrip().startswith("%%"):
        header = lines[first_code].strip()[2:]
        cell_magic, _, args = header.partition(" ")
        masked.append(first_code + 1)
        if cell_magic not in PYTHON_CELL_MAGICS:
            blank = [""] * len(lines)
            all_masked = tuple(i + 1 for i, line in enumerate(lines) if line.strip())
            return MaskedCell("\n".join(blank), all_masked, cell_magic, is_python=False)
        setup = _strip_magic_options(args) if cell_magic == "timeit" else ""
        lines[first_code] = setup if setup and _parses(setup) else ""
        start = first_code + 1

    scanner = _LineScanner()
    continuing_magic = False
    for index in range(start, len(lines)):
        line = lines[index]
        if continuing_magic:
            continuing_magic = line.rstrip().endswith("\\")
            lines[index] = ""
            masked.append(index + 1)
            continue
        if scanner.at_statement_start and line.strip():
            stripped = line.lstrip()
            indent = line[: len(line) - len(stripped)]
            replacement: str | None = None
            if stripped.startswith("%"):
                replacement = _mask_line_magic(indent, stripped.rstrip())
            elif stripped.startswith(_PROMPT_ESCAPES):
                replacement = indent + "pass"
            elif match := _ASSIGN_FROM_ESCAPE.match(stripped):
                replacement = f"{indent}{match['lhs']} = ..."
            elif _code_ends_with_question_mark(stripped):
                replacement = indent + "pass"
            if replacement is not None:
                lines[index] = replacement
                masked.append(index + 1)
                continuing_magic = line.rstrip().endswith("\\")
                continue
        scanner.feed(line)
    return MaskedCell("\n".join(lines), tuple(masked), cell_magic, is_python=True)


_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
PYTHON_TAGS = frozenset({"python", "py", "python3", "py3", "ipython", "ipython3", "jupyter"})


def _language(info: str) -> str:
    """The language of an info string: `python`, `{.python}`, `py title="x.py"` -> a tag."""
    word = info.strip().strip("{}").strip().split(" ", 1)[0] if info.strip() else ""
    return word.lstrip(".").lower()


def extract_code_blocks(markdown: str, *, python_only: bool = True) -> list[CodeBlock]:
    """Fenced code blocks (``` or ~~~) of a markdown text, in order.

    With `python_only`, keeps the blocks tagged python/py/ipython and the untagged blocks
    whose code parses as Python once magics are masked (a shell command or a traceback
    does not). Lenient where models are sloppy: a fence may be indented (inside a list
    item; that indentation is removed from the code) and an unclosed fence runs to the end.
    """
    lines = markdown.split("\n")
    blocks: list[CodeBlock] = []
    index = 0
    position = 0
    while index < len(lines):
        opening = _FENCE_OPEN.match(lines[index])
        if not opening or (opening["fence"][0] == "`" and "`" in opening["info"]):
            index += 1
            continue
        fence, indent = opening["fence"], opening["indent"]
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        body_start = index + 1
        end = body_start
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        body = [
            line[len(indent) :] if line.startswith(indent) else line.lstrip(" \t")
            for line in lines[body_start:end]
        ]
        code = "\n".join(body)
        lang = _language(opening["info"])
        keep = (
            not python_only
            or lang in PYTHON_TAGS
            or (lang == "" and code.strip() != "" and _parses(mask_magics(code).source))
        )
        if keep:
            blocks.append(CodeBlock(lang, code, position, body_start + 1))
        position += 1
        index = end + 1
    return blocks
