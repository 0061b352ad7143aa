"""A traceback read into its parts: the data that tracebacks.py parses and diagnosis.py
reads. Apart from both so that the two point one way (tracebacks -> diagnosis)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Frame:
    """One entry of the stack. `cell` is the execution count of an IPython cell (`In[3]`),
    `file` the path otherwise; `col` is the 1-based column a caret line points at."""

    file: str | None
    cell: int | None
    line: int | None
    function: str | None  # None at module or cell level
    code: str | None
    is_user: bool
    col: int | None = None

    @property
    def location(self) -> str:
        where = f"cell [{self.cell}]" if self.cell is not None else (self.file or "?")
        text = f"line {self.line} of {where}" if self.line else where
        return f"{text}, in {self.function}" if self.function else text

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "cell": self.cell,
            "line": self.line,
            "function": self.function,
            "code": self.code,
            "is_user": self.is_user,
            "col": self.col,
        }


@dataclass(frozen=True, slots=True)
class ParsedError:
    exc_type: str  # as printed, possibly dotted: json.decoder.JSONDecodeError
    message: str
    frames: list[Frame]  # outermost first, as printed
    user_frame: Frame | None  # the innermost frame in the user's own code
    style: Literal["python", "ipython"]
    causes: list[tuple[str, str]] = field(default_factory=list)  # earlier chained errors

    @property
    def short_type(self) -> str:
        return self.exc_type.rsplit(".", 1)[-1]

    def to_json(self) -> dict[str, Any]:
        return {
            "exc_type": self.exc_type,
            "message": self.message,
            "frames": [frame.to_json() for frame in self.frames],
            "user_frame": self.user_frame.to_json() if self.user_frame else None,
            "style": self.style,
            "causes": [list(cause) for cause in self.causes],
        }
