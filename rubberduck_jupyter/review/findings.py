"""One problem found in a piece of code, whoever found it (the parser, ruff, or our own
ast checks), in a shape the UI, the protocol and a model prompt can all use."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Source = Literal["syntax", "ruff", "ast"]
Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True, slots=True)
class TextEdit:
    """Replace the text from (line, col) up to, not including, (end_line, end_col) with
    `content`. 1-based lines and columns; columns count characters (ruff's convention),
    or UTF-8 bytes when `byte_columns` (the `ast` module's convention)."""

    line: int
    col: int
    end_line: int
    end_col: int
    content: str
    byte_columns: bool = False


SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class Finding:
    """Lines and columns are 1-based; `end_line` is inclusive.

    `severity` says what a finding means for the code: "error" will fail when run (a syntax
    error, an undefined name), "warning" is a likely bug or a trap, "info" is advice.
    `fix` is a short human-readable remedy when one is known; `edits` the change itself.
    `block` is the index of the code block among the Python blocks of a markdown answer
    (None for a lone snippet).
    """

    source: Source
    code: str
    message: str
    line: int
    col: int
    end_line: int | None = None
    severity: Severity = "warning"
    fix: str | None = None
    block: int | None = None
    # The machine edits behind `fix`, when a checker knows them (review/cellfix.py turns
    # them into the fixed source). Not part of `to_json`: callers that offer a change
    # send the checked result, never raw edits.
    edits: tuple[TextEdit, ...] = field(default=(), compare=False)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "code": self.code,
            "message": self.message,
            "line": self.line,
            "col": self.col,
            "end_line": self.end_line,
            "severity": self.severity,
            "fix": self.fix,
        }
        if self.block is not None:
            out["block"] = self.block
        return out


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """In reading order; at one place, the most severe first."""
    return sorted(
        findings,
        key=lambda f: (
            -1 if f.block is None else f.block,
            f.line,
            f.col,
            SEVERITY_ORDER[f.severity],
            f.code,
        ),
    )


def format_findings(findings: Iterable[Finding], *, with_fixes: bool = True) -> str:
    """One line per finding, compact enough for a prompt: `line 3: F821 undefined name 'pd'`.

    Blocks are named 1-based (`block 2, line 3: ...`) because that is how a reader counts
    them. Warnings and advice are tagged; errors are not, they are the default concern.
    """
    lines = []
    for finding in sort_findings(findings):
        where = f"line {finding.line}"
        if finding.block is not None:
            where = f"block {finding.block + 1}, {where}"
        tag = "" if finding.severity == "error" else f" ({finding.severity})"
        text = f"{where}: {finding.code} {finding.message}{tag}"
        if with_fixes and finding.fix:
            text += f"; fix: {finding.fix}"
        lines.append(text)
    return "\n".join(lines)
