"""Per-user preferences the assistant remembers: answer style and libraries.

Set explicitly (`/prefs style=concise prefer=polars,plotly avoid=matplotlib`, or the REST
API) or picked up from plain statements ("I prefer polars", "please don't use seaborn").

Domain data: the value, its validation, the `/prefs` syntax and the system-prompt sentences.
It lived in `sessions/preferences.py`, which made the engines (which read and set a turn's
preferences) import the session layer above them; what stores preferences stays there
(`sessions/preferences.py`, `PreferenceBook`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .models import User

STYLES = {
    "concise": "Keep answers short: the code and at most a few sentences.",
    "balanced": "",
    "detailed": "Explain your reasoning and the trade-offs in some detail.",
    "step-by-step": "Walk through the solution step by step, one numbered step at a time.",
}
MAX_LIBRARIES = 20
_LIB = r"[A-Za-z][A-Za-z0-9_.\-]{1,40}"
_PREFER_RE = re.compile(
    rf"\bI (?:prefer|like to use|always use|use) ({_LIB})(?: over ({_LIB}))?", re.IGNORECASE
)
_AVOID_RE = re.compile(
    rf"\b(?:don't|do not|never) (?:use|suggest|recommend) ({_LIB})", re.IGNORECASE
)
# Words that follow "I use" in ordinary sentences but are not libraries.
_NOT_LIBRARIES = {"it", "this", "that", "the", "a", "an", "my", "them", "python", "jupyter"}


class PreferenceError(ValueError):
    pass


@dataclass(frozen=True)
class Preferences:
    style: str = "balanced"
    prefer: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()
    notes: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preferences:
        prefs = cls()
        return prefs.updated(data)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["prefer"] = list(self.prefer)
        out["avoid"] = list(self.avoid)
        return out

    def updated(self, data: dict[str, Any]) -> Preferences:
        """A copy with the given fields changed; raises PreferenceError on bad values."""
        unknown = set(data) - {"style", "prefer", "avoid", "notes"}
        if unknown:
            raise PreferenceError(f"Unknown preference {sorted(unknown)[0]!r}")
        changes: dict[str, Any] = {}
        if "style" in data:
            style = data["style"]
            if style not in STYLES:
                raise PreferenceError(f"style must be one of {', '.join(STYLES)}")
            changes["style"] = style
        for name in ("prefer", "avoid"):
            if name in data:
                libs = data[name]
                if not isinstance(libs, list) or not all(
                    isinstance(x, str) and re.fullmatch(_LIB, x) for x in libs
                ):
                    raise PreferenceError(f"{name} must be a list of library names")
                changes[name] = tuple(dict.fromkeys(libs))[:MAX_LIBRARIES]
        if "notes" in data:
            if not isinstance(data["notes"], str) or len(data["notes"]) > 1000:
                raise PreferenceError("notes must be a string of at most 1000 characters")
            changes["notes"] = data["notes"]
        return replace(self, **changes)

    def prefer_library(self, lib: str) -> Preferences:
        prefer = tuple(dict.fromkeys((lib, *self.prefer)))[:MAX_LIBRARIES]
        return replace(self, prefer=prefer, avoid=tuple(x for x in self.avoid if x != lib))

    def avoid_library(self, lib: str) -> Preferences:
        avoid = tuple(dict.fromkeys((lib, *self.avoid)))[:MAX_LIBRARIES]
        return replace(self, avoid=avoid, prefer=tuple(x for x in self.prefer if x != lib))

    def prompt(self) -> str:
        """The sentences added to the system prompt; empty for defaults."""
        parts = []
        if STYLES.get(self.style):
            parts.append(STYLES[self.style])
        if self.prefer:
            parts.append(f"The user prefers these libraries: {', '.join(self.prefer)}.")
        if self.avoid:
            parts.append(f"Do not use these libraries unless asked: {', '.join(self.avoid)}.")
        if self.notes:
            parts.append(f"The user's notes: {self.notes}")
        return " ".join(parts)


class PreferenceSaver(Protocol):
    """What the `/prefs` engine saves through (`sessions.preferences.PreferenceBook`)."""

    async def save(self, user: User, prefs: Preferences) -> None: ...


def parse_prefs_command(args: str, current: Preferences) -> Preferences:
    """`style=concise prefer=polars,plotly avoid=matplotlib notes="..."`."""
    data: dict[str, Any] = {}
    # A key starts at a word's start (lookbehind) and is short, so a long word is one
    # failed attempt, not one per position.
    for match in re.finditer(r'(?<!\w)(\w{1,40})=("([^"]*)"|\S*)', args):
        key, raw, quoted = match.group(1), match.group(2), match.group(3)
        value = quoted if quoted is not None else raw
        if key in ("prefer", "avoid"):
            data[key] = [x for x in value.split(",") if x]
        else:
            data[key] = value
    if not data and args.strip():
        raise PreferenceError(
            "Write preferences as key=value: style=concise|balanced|detailed|step-by-step, "
            'prefer=lib1,lib2, avoid=lib3, notes="..."'
        )
    return current.updated(data)


def learn_from_message(text: str, current: Preferences) -> Preferences:
    """Picks up "I prefer X (over Y)" and "don't use Z" from a message."""
    prefs = current
    for match in _PREFER_RE.finditer(text):
        lib, other = match.group(1).rstrip(".,"), match.group(2)
        if lib.lower() in _NOT_LIBRARIES:
            continue
        prefs = prefs.prefer_library(lib.lower())
        if other and other.lower() not in _NOT_LIBRARIES:
            prefs = prefs.avoid_library(other.rstrip(".,").lower())
    for match in _AVOID_RE.finditer(text):
        lib = match.group(1).rstrip(".,")
        if lib.lower() not in _NOT_LIBRARIES:
            prefs = prefs.avoid_library(lib.lower())
    return prefs
