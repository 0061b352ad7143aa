"""`/doc [NAME]`: a docstring for a function, or a markdown cell describing the active cell.

Written only against the public plugin API (`rubberduck_jupyter.plugins`) and the standard
library.

- With a function (NAME, else the first undocumented function defined in the selection or
  the active cell, else the first one) the answer is a `replace` suggestion of the active
  cell with the docstring inserted under the `def`, at the body's indentation. Everything
  else in the cell is kept byte for byte; an existing docstring is replaced; a one-line
  `def f(x): return x` is split so the docstring can go in. `async def`, methods and
  decorated functions are handled (the `def` line is found with `ast`, not by text).
- Without a function in the cell the answer is an `insert_markdown_after` suggestion: a
  markdown cell saying what the cell does.
- With a model the prose comes from one `ctx.ask`; without one, a skeleton from the
  signature (Parameters / Returns, names and annotations, "TODO: describe") and a line
  saying a model would write the prose.
- A NAME that is not in the cell is looked up in the project index (`ctx.search`) and the
  answer says where it is defined; other files are never edited.

IPython lines (`%magic`, `!shell`, `obj?`) are masked before parsing; a cell whose chosen
function contains one is not edited. Every proposed cell is checked with `ast.parse` (after
the same masking) before it is offered; the server checks again.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from rubberduck_jupyter.plugins import command, plugin

spec = plugin(
    name="doc",
    version="1.0",
    api=">=1,<2",
    permissions=["call_model", "propose_edits", "read_index"],
    provides=["documentation"],
    description="Docstrings for functions and markdown descriptions for cells",
)

NO_MODEL_NOTE = (
    "_No model is configured, so this is a skeleton from the signature; with a model, "
    "RubberDuck would write the descriptions._"
)
SYSTEM = (
    "You write documentation for Python code in Jupyter notebooks. Be precise and brief; "
    "describe what the code does, not how Python works."
)
_MAGIC_START = ("%", "!", "?")


# -- source helpers -------------------------------------------------------------------------


def _is_help_line(stripped: str) -> bool:
    """`obj?` or `obj.attr??`: a name, then one or two `?` (no regex: a long line of word
    characters made the unanchored pattern quadratic)."""
    body = stripped.rstrip("?")
    return (
        1 <= len(stripped) - len(body) <= 2
        and bool(body)
        and all(c.isalnum() or c in "._" for c in body)
    )


def mask_ipython(source: str) -> tuple[str, set[int]]:
    """The source with IPython lines replaced by `pass` (same line count) and their numbers.

    A line is IPython syntax when, stripped, it starts with `%`, `!` or `?`, or is a name
    followed by `?`/`??` (`obj?`). Line numbers are 1-based, as in `ast`.
    """
    out: list[str] = []
    masked: set[int] = set()
    for number, line in enumerate(source.split("\n"), start=1):
        stripped = line.strip()
        if stripped.startswith(_MAGIC_START) or _is_help_line(stripped):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}pass")
            masked.add(number)
        else:
            out.append(line)
    return "\n".join(out), masked


def parses(source: str) -> bool:
    try:
        ast.parse(mask_ipython(source)[0])
    except (SyntaxError, ValueError):
        return False
    return True


class _Offsets:
    """(1-based line, UTF-8 byte column) as `ast` reports them -> index into the text."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = source.split("\n")
        self.starts: list[int] = []
        pos = 0
        for line in self.lines:
            self.starts.append(pos)
            pos += len(line) + 1

    def at(self, line: int, col: int) -> int:
        text = self.lines[line - 1]
        chars = len(text.encode("utf-8")[:col].decode("utf-8", errors="ignore"))
        return self.starts[line - 1] + chars

    def line_end(self, line: int) -> int:
        return self.starts[line - 1] + len(self.lines[line - 1])


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _indent_unit(source: str) -> str:
    """The cell's indentation step (tab, or the smallest run of spaces); 4 spaces by default."""
    widths = []
    for line in source.split("\n"):
        if line.strip() and line[0] in " \t":
            if line[0] == "\t":
                return "\t"
            widths.append(len(line) - len(line.lstrip(" ")))
    return " " * min(widths) if widths else "    "


FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass
class FoundFunction:
    node: FunctionNode
    qualname: str
    in_class: bool


def functions_in(tree: ast.AST) -> list[FoundFunction]:
    """Every function and method, in source order, with `Class.method` qualified names."""
    found: list[FoundFunction] = []

    def visit(node: ast.AST, prefix: str, in_class: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append(FoundFunction(child, prefix + child.name, in_class))
                visit(child, f"{prefix}{child.name}.", False)
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.", True)
            else:
                visit(child, prefix, in_class)

    visit(tree, "", False)
    return sorted(found, key=lambda f: (f.node.lineno, f.node.col_offset))


def first_line(node: FunctionNode) -> int:
    return min([node.lineno, *(d.lineno for d in node.decorator_list)])


def docstring_node(node: FunctionNode) -> ast.Expr | None:
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return first
    return None


def docstring_literal(text: str, indent: str) -> str:
    """`text` as a triple-quoted literal whose continuation lines are indented by `indent`."""
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').strip("\n")
    lines = [line.rstrip() for line in text.split("\n")]
    if len(lines) == 1:
        body = lines[0]
        return f'"""{body}"""' if not body.endswith('"') else f'"""{body} """'
    shown = [lines[0]] + [(indent + line) if line else "" for line in lines[1:]]
    return '"""' + "\n".join(shown) + "\n" + indent + '"""'


def insert_docstring(source: str, node: FunctionNode, text: str) -> str:
    """`source` with `node`'s docstring set to `text`; every other byte is kept.

    Normal form: the docstring goes on its own line(s) after the header's last line (the one
    with the colon), at the indentation of the body's first statement; an existing
    docstring is replaced in place. One-line form (`def f(x): return x`): the header line is
    split after the colon and the body moves to the next line, indented one step deeper.
    """
    off = _Offsets(source)
    body0 = node.body[0]
    existing = docstring_node(node)
    body_line = off.lines[body0.lineno - 1]
    before_body = body_line[: off.at(body0.lineno, body0.col_offset) - off.starts[body0.lineno - 1]]
    one_line = bool(before_body.strip())
    if not one_line:
        indent = _indent_of(body_line)
        literal = docstring_literal(text, indent)
        if existing is not None:
            start = off.at(existing.lineno, existing.col_offset)
            end = off.at(existing.end_lineno or existing.lineno, existing.end_col_offset or 0)
            return source[:start] + literal + source[end:]
        header_end = body0.lineno - 1
        while header_end > node.lineno and (
            not off.lines[header_end - 1].strip()
            or off.lines[header_end - 1].lstrip().startswith("#")
        ):
            header_end -= 1
        at = off.line_end(header_end)
        return source[:at] + "\n" + indent + literal + source[at:]
    # One-line def: split after the colon.
    indent = _indent_of(off.lines[node.lineno - 1]) + _indent_unit(source)
    literal = docstring_literal(text, indent)
    head_end = off.at(body0.lineno, body0.col_offset)
    head = source[:head_end].rstrip(" \t")
    if existing is not None:
        rest_start = off.at(existing.end_lineno or existing.lineno, existing.end_col_offset or 0)
        rest = source[rest_start:]
        line_rest, sep, after = rest.partition("\n")
        line_rest = line_rest.lstrip(" \t;").lstrip()
        tail = (("\n" + indent + line_rest) if line_rest else "") + sep + after
        return head + "\n" + indent + literal + tail
    return head + "\n" + indent + literal + "\n" + indent + source[head_end:]


# -- docstring text -------------------------------------------------------------------------


def docstring_style(source: str) -> str:
    """ "google" when the cell's docstrings use `Args:`/`Returns:`, else "numpy"."""
    try:
        tree = ast.parse(mask_ipython(source)[0])
    except (SyntaxError, ValueError):
        return "numpy"
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            doc = ast.get_docstring(node) or ""
            if re.search(r"^\s*-{3,}\s*$", doc, re.M):
                return "numpy"
            if re.search(r"^\s*(Args|Arguments|Returns|Raises|Yields):\s*$", doc, re.M):
                return "google"
    return "numpy"


def _params(found: FoundFunction) -> list[tuple[str, str]]:
    node = found.node
    args = node.args
    ordered = [*args.posonlyargs, *args.args]
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
    if found.in_class and ordered and not static:
        ordered = ordered[1:]  # self / cls
    out = [(a.arg, ast.unparse(a.annotation) if a.annotation else "") for a in ordered]
    if args.vararg:
        ann = ast.unparse(args.vararg.annotation) if args.vararg.annotation else ""
        out.append(("*" + args.vararg.arg, ann))
    out += [(a.arg, ast.unparse(a.annotation) if a.annotation else "") for a in args.kwonlyargs]
    if args.kwarg:
        ann = ast.unparse(args.kwarg.annotation) if args.kwarg.annotation else ""
        out.append(("**" + args.kwarg.arg, ann))
    return out


def _returns(node: FunctionNode) -> tuple[bool, str]:
    """(documents a return value, its annotation)."""
    if node.returns is not None:
        ann = ast.unparse(node.returns)
        return ann != "None", ann
    stack: list[ast.AST] = list(node.body)
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Return) and item.value is not None:
            return True, ""
        if not isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            stack.extend(ast.iter_child_nodes(item))
    return False, ""


def skeleton_docstring(found: FoundFunction, style: str) -> str:
    """A docstring from the signature alone, with TODOs where the prose goes."""
    params = _params(found)
    has_return, ret_ann = _returns(found.node)
    lines = [f"TODO: describe what `{found.node.name}` does."]
    if style == "google":
        if params:
            lines += ["", "Args:"]
            lines += [f"    {n}{f' ({a})' if a else ''}: TODO: describe." for n, a in params]
        if has_return:
            lines += ["", "Returns:", f"    {ret_ann + ': ' if ret_ann else ''}TODO: describe."]
        return "\n".join(lines)
    if params:
        lines += ["", "Parameters", "----------"]
        for name, ann in params:
            lines += [f"{name} : {ann}" if ann else name, "    TODO: describe."]
    if has_return:
        lines += ["", "Returns", "-------", ret_ann or "object", "    TODO: describe."]
    return "\n".join(lines)


_FENCE = re.compile(r"```[\w+-]*\n(.*?)```", re.S)


def clean_docstring_reply(reply: str, name: str = "") -> str:
    """The docstring body in a model's reply: fences, quotes, a `def` line and the common
    indentation removed. If the reply is a whole function, its docstring is taken."""
    text = reply.strip()
    fenced = _FENCE.search(text + ("\n```" if text.count("```") % 2 else ""))
    if fenced:
        text = fenced.group(1).strip()
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        tree = None
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
                not name or node.name == name.split(".")[-1]
            ):
                doc = ast.get_docstring(node)
                if doc:
                    return doc.strip()
        if len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr):
            value = tree.body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                text = value.value
    text = re.sub(r'^[rRuU]?("""|\'\'\')', "", text.strip())
    text = re.sub(r'("""|\'\'\')$', "", text.strip())
    lines = text.strip("\n").split("\n")
    # The first line is often flush left and the rest indented: dedent the rest alone.
    rest = [line for line in lines[1:] if line.strip()]
    cut = min((len(line) - len(line.lstrip()) for line in rest), default=0)
    out = [lines[0].strip()] + [line[cut:].rstrip() for line in lines[1:]]
    return "\n".join(out).strip()


def clean_markdown_reply(reply: str) -> str:
    text = reply.strip()
    whole = re.fullmatch(r"```(?:markdown|md)?\n(.*?)\n?```", text, re.S)
    return (whole.group(1) if whole else text).strip()


def skeleton_markdown(source: str) -> str:
    """A description of a cell from its ast: what it imports, defines and calls."""
    try:
        tree = ast.parse(mask_ipython(source)[0])
    except (SyntaxError, ValueError):
        tree = None
    imports: list[str] = []
    assigned: list[str] = []
    calls: list[str] = []
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imports += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                imports.append(node.module or ".")
            elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for sub in ast.walk(target):
                        if isinstance(sub, ast.Name):
                            assigned.append(sub.id)
            elif isinstance(node, ast.Call):
                calls.append(ast.unparse(node.func))

    def listed(names: list[str]) -> str:
        unique = list(dict.fromkeys(names))
        shown = ", ".join(f"`{n}`" for n in unique[:8])
        return shown + (f" and {len(unique) - 8} more" if len(unique) > 8 else "")

    lines = ["**What this cell does:** TODO: describe.", ""]
    if imports:
        lines.append(f"- Imports {listed(imports)}.")
    if assigned:
        lines.append(f"- Defines {listed(assigned)}.")
    if calls:
        lines.append(f"- Calls {listed(calls)}.")
    return "\n".join(lines).rstrip()


# -- the command ----------------------------------------------------------------------------


def _selection_lines(cell: str, selection: str) -> tuple[int, int] | None:
    """The 1-based line range of `selection` inside `cell`, when it is found there."""
    if not selection.strip():
        return None
    at = cell.find(selection)
    if at < 0:
        return None
    start = cell.count("\n", 0, at) + 1
    return start, start + selection.count("\n")


def choose_function(
    functions: list[FoundFunction], name: str, lines: tuple[int, int] | None
) -> FoundFunction | None:
    if name:
        for found in functions:
            if name in (found.qualname, found.node.name):
                return found
        return None
    pool = functions
    if lines is not None:
        inside = [f for f in functions if lines[0] <= f.node.lineno <= lines[1]]
        pool = inside or functions
    for found in pool:
        if docstring_node(found.node) is None:
            return found
    return pool[0] if pool else None


async def _where_defined(ctx, name: str) -> str:
    """Where the index says `name` is defined, or a message saying it was not found."""
    if "read_index" not in ctx.permissions:
        return f"`{name}` is not defined in the active cell; select the cell that defines it."
    short = re.escape(name.split(".")[-1])
    pattern = re.compile(rf"^[ \t]*(async[ \t]+)?def[ \t]+{short}[ \t]*\(", re.M)
    for hit in await ctx.search(f"def {name.split('.')[-1]}", top_k=10):
        text = str(hit.get("text") or "")
        if not pattern.search(text):
            continue
        path = hit.get("path") or "?"
        where = f"`{path}`"
        if hit.get("start_line"):
            offset = text[: pattern.search(text).start()].count("\n")  # type: ignore[union-attr]
            where += f" line {int(hit['start_line']) + offset}"
        elif hit.get("cell") is not None:
            where += f" cell {int(hit['cell']) + 1}"
        return (
            f"`{name}` is not defined in the active cell; it is defined in {where}. "
            "Open it there and run `/doc` on that cell (other files are never edited)."
        )
    return (
        f"`{name}` is not defined in the active cell, and the project index has no "
        "definition of it."
    )


@command(
    "doc", help="Write a docstring for a function, or describe the active cell", args=["NAME?"]
)
async def doc(ctx, name: str = "") -> dict | None:
    """Suggest the documented cell (or a markdown cell); returns the suggestion or None."""
    cell = ctx.active_cell
    name = name.strip().removesuffix("()")
    if not cell.strip():
        await ctx.say("Nothing to document: put the cursor in a code cell (or select code) first.")
        return None
    masked, magic_lines = mask_ipython(cell)
    try:
        tree = ast.parse(masked)
    except SyntaxError as exc:
        await ctx.say(
            f"The active cell does not parse (line {exc.lineno}: {exc.msg}); fix it first."
        )
        return None
    functions = functions_in(tree)
    found = choose_function(functions, name, _selection_lines(cell, ctx.selection))
    if name and found is None:
        await ctx.say(await _where_defined(ctx, name))
        return None
    if found is None:
        return await _describe_cell(ctx, cell)
    node = found.node
    if any(first_line(node) <= n <= (node.end_lineno or node.lineno) for n in magic_lines):
        await ctx.say(
            f"`{found.qualname}` contains IPython syntax (`%`, `!` or `?` lines); "
            "RubberDuck does not edit it. Move the magic out of the function first."
        )
        return None
    style = docstring_style(cell)
    matching = any(docstring_node(f.node) is not None for f in functions if f is not found)
    if ctx.has_model:
        source = ast.get_source_segment(masked, node) or ""
        prompt = (
            f"Write the docstring for the Python function `{found.qualname}` below, in {style} "
            "style" + (" (matching the other docstrings in the cell)" if matching else "") + ".\n"
            "Reply with ONLY the docstring body: no triple quotes, no code fences, no `def` "
            "line, no indentation. First line: one sentence summary ending with a period. "
            "Then the parameters and the return value (and raised exceptions if any), using "
            "the names and types from the signature.\n\n"
            f"Function:\n```python\n{source}\n```\n\nThe whole cell, for context:\n"
            f"```python\n{cell}\n```"
        )
        text = clean_docstring_reply(await ctx.ask(prompt, system=SYSTEM), found.qualname)
        if not text:
            text = skeleton_docstring(found, style)
    else:
        text = skeleton_docstring(found, style)
        await ctx.say(NO_MODEL_NOTE)
    new_cell = insert_docstring(cell, node, text)
    if not parses(new_cell):
        await ctx.say(
            f"The documented cell would not parse, so nothing is proposed for `{found.qualname}`."
        )
        return None
    verb = "Replace the docstring of" if docstring_node(node) is not None else "Add a docstring to"
    return await ctx.suggest(new_cell, title=f"{verb} `{found.qualname}`", mode="replace")


async def _describe_cell(ctx, cell: str) -> dict | None:
    if ctx.has_model:
        prompt = (
            "Describe what this notebook cell does, as a short markdown cell to put above "
            "the results: one sentence saying its purpose, then up to four bullet points "
            "(inputs, transformations, outputs). Name the variables and columns it uses. "
            "Reply with only the markdown, no code fences around it and no heading.\n\n"
            f"```python\n{cell}\n```"
        )
        text = clean_markdown_reply(await ctx.ask(prompt, system=SYSTEM)) or skeleton_markdown(cell)
    else:
        text = skeleton_markdown(cell)
        await ctx.say(NO_MODEL_NOTE.replace("signature", "cell's code"))
    return await ctx.suggest(text, title="Describe this cell", mode="insert_markdown_after")
