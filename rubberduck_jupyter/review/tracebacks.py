"""Read a Python or IPython traceback as printed (colours and all) into its parts: the
exception, its message, the frames, and the frame in the user's own code.

Understood forms: CPython's `File "x.py", line 12, in f`; IPython 8/9's `Cell In[3], line 5`
and `File ~/x.py:12, in f(a)` (verbose, context and plain modes); IPython 8.0-8.4's
`Input In [3], in <cell line: 5>()`; IPython 7's `<ipython-input-3-...> in <module>`;
chained exceptions (the last one is the error, the earlier ones are kept as its causes).
`explain_error` turns a parsed error into advice (see `diagnosis.py`).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from .diagnosis import StaticDiagnosis, diagnose
from .parsed_error import Frame, ParsedError

__all__ = ["Frame", "ParsedError", "StaticDiagnosis", "explain_error", "parse_traceback"]

# CSI sequences (colours) and OSC sequences (hyperlinks) that terminals and IPython emit.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")

_CHAIN_SEPARATORS = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
_CLASSIC_FRAME = re.compile(
    r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?$'
)
_CELL_FRAME = re.compile(
    r"^\s*(?:Cell|Input) In ?\[(?P<cell>\d+)\](?:, line (?P<line>\d+))?(?:,? in (?P<func>.+))?$"
)
_IPYTHON_FILE_FRAME = re.compile(
    r"^\s*File (?P<file>[^\"\s].*?):(?P<line>\d+)(?:,? in (?P<func>.+))?$"
)
_IPYTHON7_FRAME = re.compile(
    r"^(?P<file><ipython-input-(?P<cell>\d+)-[0-9a-f]+>|\S+\.py) in (?P<func>.+)$"
)
_ARROW_LINE = re.compile(r"^-*>\s*(?P<line>\d+)\s?(?P<code>.*)$")
_CONTEXT_LINE = re.compile(r"^\s+\d+\s")
_CARETS = re.compile(r"^\s*[\^~]+\s*$")
_EXCEPTION_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::(?P<message> ?.*))?$")
_BARE_EXCEPTION_NAME = re.compile(r"(Error|Exception|Exit|Interrupt|Iteration|Warning|Group)$")
_CELL_LINE_FUNCTION = re.compile(r"<cell line: (\d+)>")
_KERNEL_CELL_FILE = re.compile(r"[/\\]ipykernel_\d+[/\\]\d+\.py$")
_LIBRARY_PATH = re.compile(
    r"(site|dist)-packages|[/\\]lib[/\\]python\d|[/\\]Lib[/\\]|^<frozen|[/\\]lib-dynload[/\\]"
)
_USER_PSEUDO_FILES = ("<string>", "<stdin>", "<input>", "<console>")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _is_user_file(file: str) -> bool:
    if file in _USER_PSEUDO_FILES or file.startswith("<ipython-input-"):
        return True
    if _KERNEL_CELL_FILE.search(file):
        return True
    return not (file.startswith("<") or _LIBRARY_PATH.search(file))


def _function(raw: str | None) -> tuple[str | None, int | None]:
    """`f(x, y)` -> f; `<module>` -> None; `<cell line: 5>()` -> (None, 5)."""
    if raw is None:
        return None, None
    raw = raw.strip()
    cell_line = _CELL_LINE_FUNCTION.search(raw)
    if cell_line:
        return None, int(cell_line.group(1))
    name = raw.split("(", 1)[0].strip() if not raw.startswith("<") else raw.removesuffix("()")
    return (None if name in ("<module>", "") else name), None


@dataclass
class _FrameBuilder:
    file: str | None
    cell: int | None
    line: int | None
    function: str | None
    ipython: bool
    code: str | None = None
    arrow_code: str | None = None
    code_indent: int = 0
    col: int | None = None

    def add(self, line: str) -> None:
        if not line.strip():
            return
        arrow = _ARROW_LINE.match(line)
        if arrow:
            self.line = int(arrow["line"])
            self.arrow_code = arrow["code"].strip()
            return
        if _CARETS.match(line):
            if self.col is None and self.code is not None:
                self.col = max(1, len(line) - len(line.lstrip()) - self.code_indent + 1)
            return
        if self.ipython and _CONTEXT_LINE.match(line):
            return
        if self.code is None and line[:1].isspace():
            self.code = line.strip()
            self.code_indent = len(line) - len(line.lstrip())

    def build(self) -> Frame:
        if self.cell is not None:
            is_user = True
        elif self.file is not None:
            is_user = _is_user_file(self.file)
        else:
            is_user = False
        code = self.arrow_code if self.arrow_code is not None else self.code
        return Frame(self.file, self.cell, self.line, self.function, code, is_user, self.col)


def _frame_header(line: str) -> tuple[_FrameBuilder, bool] | None:
    """A frame's first line -> (builder, is it IPython's format)."""
    if match := _CLASSIC_FRAME.match(line):
        func, _ = _function(match["func"])
        cell = None
        if match["file"].startswith("<ipython-input-"):
            cell = int(match["file"].split("-")[2])
        builder = _FrameBuilder(match["file"], cell, int(match["line"]), func, ipython=False)
        return builder, False
    if match := _CELL_FRAME.match(line):
        func, cell_line = _function(match["func"])
        line_no = int(match["line"]) if match["line"] else cell_line
        return _FrameBuilder(None, int(match["cell"]), line_no, func, ipython=True), True
    if match := _IPYTHON_FILE_FRAME.match(line):
        func, _ = _function(match["func"])
        return _FrameBuilder(match["file"], None, int(match["line"]), func, ipython=True), True
    if match := _IPYTHON7_FRAME.match(line):
        func, _ = _function(match["func"])
        cell = int(match["cell"]) if match["cell"] else None
        file = None if cell is not None else match["file"]
        return _FrameBuilder(file, cell, None, func, ipython=True), True
    return None


def _exception_line(line: str) -> tuple[str, str] | None:
    match = _EXCEPTION_LINE.match(line)
    if not match:
        return None
    if match["message"] is None and not _BARE_EXCEPTION_NAME.search(match["type"]):
        return None
    return match["type"], (match["message"] or "").strip()


def _parse_section(lines: list[str]) -> tuple[str, str, list[Frame], bool] | None:
    """One traceback of a chain -> (type, message, frames, IPython style) or None."""
    builders: list[_FrameBuilder] = []
    ipython = False
    exception: tuple[str, str] | None = None
    message_lines: list[str] = []
    for line in lines:
        header = _frame_header(line)
        starts_traceback = "Traceback (most recent call last)" in line
        if exception is not None and (header is not None or starts_traceback):
            # what looked like the exception was printed before the traceback (a warning)
            builders, exception, message_lines = [], None, []
        if exception is not None:
            message_lines.append(line)
            continue
        if header is not None:
            builder, is_ipython = header
            builders.append(builder)
            ipython |= is_ipython
            continue
        found = None if line[:1].isspace() else _exception_line(line.rstrip())
        if found and (builders or _BARE_EXCEPTION_NAME.search(found[0])):
            exception = found  # without frames, only a name that looks like an exception
            continue
        if starts_traceback or line.startswith("-" * 10):
            ipython |= not line.startswith("Traceback")
            continue
        if builders:
            builders[-1].add(line)
    if exception is None:
        return None
    exc_type, first = exception
    message = "\n".join([first, *message_lines]).strip()
    return exc_type, message, [builder.build() for builder in builders], ipython


def parse_traceback(text: str) -> ParsedError | None:
    """The error a traceback reports, or None when the text holds no exception line."""
    clean = strip_ansi(text).replace("\r\n", "\n").replace("\r", "\n")
    sections: list[list[str]] = [[]]
    for line in clean.split("\n"):
        if line.strip() in _CHAIN_SEPARATORS:
            sections.append([])
        else:
            sections[-1].append(line.rstrip())
    parsed = [result for section in sections if (result := _parse_section(section))]
    if not parsed:
        return None
    exc_type, message, frames, ipython = parsed[-1]
    user_frames = [frame for frame in frames if frame.is_user]
    return ParsedError(
        exc_type=exc_type,
        message=message,
        frames=frames,
        user_frame=user_frames[-1] if user_frames else None,
        style="ipython" if ipython or any(p[3] for p in parsed) else "python",
        causes=[(p[0], p[1]) for p in parsed[:-1]],
    )


def explain_error(
    parsed: ParsedError, cell_source: str | None = None, known_names: Collection[str] = ()
) -> StaticDiagnosis:
    """Plain-language diagnosis of a parsed error with concrete next steps.

    `cell_source` is the code of the cell that failed (its lines are matched against the
    user frame), `known_names` the variables the kernel holds; both sharpen the advice
    (closest names, the line to change, a corrected cell when the fix is mechanical).
    """
    return diagnose(parsed, cell_source, known_names)
