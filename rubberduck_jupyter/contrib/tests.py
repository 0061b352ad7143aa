"""`/tests [FUNCTION]`: pytest tests for a function or for the selection / active cell.

Written only against the public plugin API (`rubberduck_jupyter.plugins`) and the standard
library. The code under test is the selection, else the active cell; with FUNCTION, only
that function's source (decorators included), extracted with `ast`.

With a model: one `ctx.ask(prompt, checked=True)` (RubberDuck self-corrects the Python
blocks of the reply), and the first Python block is offered as a new cell after the active
one (`insert_after`). Without a model: `ctx.test_skeleton(source)`, shown and offered the
same way.
"""

from __future__ import annotations

import ast
import re

from rubberduck_jupyter.plugins import command, plugin

spec = plugin(
    name="tests",
    version="1.0",
    api=">=1,<2",
    permissions=["call_model", "propose_edits"],
    provides=["generation"],
    description="pytest tests for a function or the active cell",
)

SYSTEM = "You write focused, runnable pytest tests for Python code from Jupyter notebooks."
_BLOCK = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", re.S)
_MAGIC = re.compile(r"^\s*([%!?]|[\w.]+\?\??\s*$)")


def _mask(source: str) -> str:
    """IPython lines (`%`, `!`, `?`) replaced by `pass`, keeping the line numbers."""
    return "\n".join(
        (line[: len(line) - len(line.lstrip())] + "pass") if _MAGIC.match(line) else line
        for line in source.split("\n")
    )


def function_source(source: str, name: str) -> str | None:
    """The source of function `name` (or `Class.method`) in `source`, decorators included."""
    try:
        tree = ast.parse(_mask(source))
    except (SyntaxError, ValueError):
        return None
    wanted = name.strip().removesuffix("()")
    stack: list[tuple[ast.AST, str]] = [(tree, "")]
    while stack:
        node, prefix = stack.pop(0)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                qual = prefix + child.name
                if not isinstance(child, ast.ClassDef) and wanted in (qual, child.name):
                    start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    lines = source.split("\n")[start - 1 : child.end_lineno]
                    indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
                    return "\n".join(x[indent:] for x in lines)
                stack.append((child, qual + "."))
            else:
                stack.append((child, prefix))
    return None


def python_block(reply: str) -> str | None:
    """The first Python code block of a markdown reply (an unclosed last fence counts)."""
    text = reply if reply.count("```") % 2 == 0 else reply + "\n```"
    for match in _BLOCK.finditer(text):
        code = match.group(1).strip("\n")
        if code.strip():
            return code + "\n"
    return None


def _parses(code: str) -> bool:
    try:
        ast.parse(_mask(code))
    except (SyntaxError, ValueError):
        return False
    return True


@command("tests", help="Write pytest tests for a function or the active cell", args=["FUNCTION?"])
async def tests(ctx, function: str = "") -> dict | None:
    """Offer the tests as a new cell after the active one; returns the suggestion or None."""
    code = ctx.selection if ctx.selection.strip() else ctx.active_cell
    label = "the selection" if ctx.selection.strip() else "the active cell"
    if function:
        extracted = function_source(code, function)
        if extracted is None and code is ctx.selection:
            extracted = function_source(ctx.active_cell, function)
        if extracted is None:
            await ctx.say(
                f"`{function}` is not defined in {label}; put the cursor in the cell that "
                "defines it (or select its code) and run `/tests` again."
            )
            return None
        code, label = extracted, f"`{function}`"
    if not code.strip():
        await ctx.say(
            "Nothing to test: select some code, put the cursor in a code cell, or name a "
            "function defined in the active cell (`/tests FUNCTION`)."
        )
        return None
    title = f"pytest tests for {label}"
    if not ctx.has_model:
        skeleton = await ctx.test_skeleton(code)
        await ctx.say(
            "_No model is configured, so here is a test skeleton from the signatures; a model "
            "would write the test bodies._\n\n```python\n" + skeleton.rstrip("\n") + "\n```"
        )
        if not skeleton.strip() or not _parses(skeleton):
            return None
        return await ctx.suggest(skeleton, title=title, mode="insert_after")
    prompt = (
        f"Write pytest tests for {label}.\n"
        "- The tests go in the notebook cell right after this code, so the code's names are "
        "already defined: do not import them from a module.\n"
        "- Cover normal inputs, edge cases (empty, zero, None where allowed) and the errors "
        "the code raises; use pytest.mark.parametrize for tables of cases and pytest.raises "
        "for errors.\n"
        "- Reply with ONE ```python code block holding all the tests, then at most two "
        "sentences.\n\n"
        f"```python\n{code.rstrip()}\n```"
    )
    reply = await ctx.ask(prompt, system=SYSTEM, checked=True)
    block = python_block(reply)
    if block is None:
        await ctx.say("The model's answer had no Python code block, so there is nothing to insert.")
        return None
    return await ctx.suggest(block, title=title, mode="insert_after")
