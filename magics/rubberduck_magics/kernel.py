"""What the kernel knows that a question can carry: earlier cells, the last failure, the
variables a cell or question names.

All read-only: nothing here runs user code except what describing a variable must touch
(`describe.py` guards that), and nothing imports a data library.
"""

from __future__ import annotations

import ast
import re
import traceback
from dataclasses import dataclass
from typing import Any

# `{df}` in a %%duck body names a kernel variable to describe; only a plain identifier
# counts, so `{x: 1}`, f-string fields and `{}` in code stay as written.
_BRACED = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MAX_CELLS_BACK = 20
MAX_TRACEBACK_CHARS = 20_000


@dataclass(frozen=True)
class Failure:
    """The last cell that raised: its number, its source and the formatted traceback."""

    execution_count: int | None
    source: str
    traceback: str
    exception: str  # e.g. "KeyError: 'price'"


class FailureWatch:
    """Remembers the last failing cell through IPython's `post_run_cell` event, since
    `sys.last_value` says what was raised but not which cell raised it."""

    def __init__(self) -> None:
        self.last: Failure | None = None

    def __call__(self, result: Any) -> None:
        error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        if error is None:
            return
        info = getattr(result, "info", None)
        source = getattr(info, "raw_cell", "") or ""
        if source.lstrip().startswith(("%duck", "%%duck")):
            return  # a failing %duck is not the failure to fix
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self.last = Failure(
            execution_count=getattr(result, "execution_count", None),
            source=source,
            traceback=_ANSI.sub("", text)[-MAX_TRACEBACK_CHARS:],
            exception=traceback.format_exception_only(type(error), error)[-1].strip(),
        )


def braced_names(text: str, namespace: dict[str, Any]) -> list[str]:
    """The `{name}`s of `text` that are variables of the kernel, in order, once each."""
    seen: list[str] = []
    for match in _BRACED.finditer(text):
        name = match.group(1)
        if name in namespace and name not in seen:
            seen.append(name)
    return seen


def unbrace(text: str, names: list[str]) -> str:
    """`{df}` becomes `df` in the question the model reads: its description is attached."""
    wanted = set(names)
    return _BRACED.sub(lambda m: m.group(1) if m.group(1) in wanted else m.group(0), text)


def names_in_code(source: str, transform: Any = None) -> list[str]:
    """The names a cell reads or binds, in first-seen order (IPython syntax masked through
    the shell's own transformer when given); [] when it does not parse."""
    try:
        code = transform(source) if transform is not None else source
        tree = ast.parse(code)
    except (SyntaxError, ValueError, TypeError):
        return []
    found = [n for n in ast.walk(tree) if isinstance(n, ast.Name)]
    found.sort(key=lambda n: (n.lineno, n.col_offset))
    return list(dict.fromkeys(n.id for n in found))


def history_cell(shell: Any, number: int) -> str | None:
    """The source of `In[number]`, as IPython recorded it; None when there is none."""
    cells = getattr(shell, "user_ns", {}).get("In")
    if not isinstance(cells, list) or not 0 < number < len(cells):
        return None
    source = cells[number]
    return source if isinstance(source, str) else None


def previous_cells(shell: Any, count: int, *, skip_duck: bool = True) -> list[tuple[int, str]]:
    """Up to `count` cells run before the current one, oldest first, as (number, source)."""
    cells = getattr(shell, "user_ns", {}).get("In")
    if not isinstance(cells, list):
        return []
    current = len(cells) - 1  # the cell running now
    out: list[tuple[int, str]] = []
    number = current - 1
    while number > 0 and len(out) < min(count, MAX_CELLS_BACK):
        source = cells[number]
        usable = isinstance(source, str) and source.strip()
        if usable and not (skip_duck and _is_duck(source)):
            out.append((number, source))
        number -= 1
    return list(reversed(out))


def _is_duck(source: str) -> bool:
    stripped = source.lstrip()
    return stripped.startswith(("%duck", "%%duck", "get_ipython().run_line_magic('duck'"))


def current_cell_id(shell: Any) -> str | None:
    """JupyterLab sends the executing cell's id in the request's metadata (ipykernel)."""
    kernel = getattr(shell, "kernel", None)
    try:
        parent = kernel.get_parent() if kernel is not None else None
    except Exception:
        return None
    metadata = (parent or {}).get("metadata") or {}
    cell_id = metadata.get("cellId")
    return cell_id if isinstance(cell_id, str) else None


def in_a_kernel(shell: Any) -> bool:
    """A front end that renders rich output (JupyterLab, VS Code, nbclient) talks to an
    ipykernel; a terminal `ipython` has no `kernel`."""
    return getattr(shell, "kernel", None) is not None
