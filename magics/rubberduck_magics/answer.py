"""One answer as the cell shows it: the server's frames folded into a state, and that state
as a display bundle (our renderer's JSON, Markdown for other front ends, plain text).

Pure data, no I/O: the output classes in `output.py` decide when to show it. The JSON under
`ANSWER_MIME` is what `labextension/src/kernelanswer/` renders, with the buttons (Insert
below, Copy, Apply, Stop); its fields are listed in docs/magics.md ("Answers in cell
outputs"). Bump `BUNDLE_VERSION` on an incompatible change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ANSWER_MIME = "application/vnd.rubberduck.answer.v1+json"
BUNDLE_VERSION = 1

WAITING, STREAMING, DONE, ERROR, STOPPED = "waiting", "streaming", "done", "error", "stopped"
FINISHED = frozenset({DONE, ERROR, STOPPED})


@dataclass
class Step:
    step: str
    title: str
    status: str = "started"
    text: str = ""


@dataclass
class AnswerState:
    server_url: str
    turn_id: str
    conversation_id: str
    title: str | None = None
    status: str = WAITING
    markdown: str = ""
    steps: list[Step] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    notices: list[dict[str, str]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    engine: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    cost_usd: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def apply(self, frame: dict[str, Any]) -> bool:
        """Folds one frame in; True when what the cell shows changed."""
        kind = frame.get("type")
        if kind == "route":
            self.engine = _str(frame.get("engine")) or self.engine
            return False
        if kind == "step":
            return self._step(frame)
        if kind == "chunk":
            text = _str(frame.get("text"))
            step = frame.get("step")
            if step is not None:
                found = self._find_step(str(step))
                if found is None:
                    found = Step(str(step), f"Step {step}")
                    self.steps.append(found)
                found.text += text
            else:
                self.markdown += text
            if self.status == WAITING:
                self.status = STREAMING
            return True
        if kind == "citations":
            cited = frame.get("citations")
            self.citations = (
                [c for c in cited if isinstance(c, dict)] if isinstance(cited, list) else []
            )
            return True
        if kind == "suggestion":
            suggestion = frame.get("suggestion")
            if isinstance(suggestion, dict):
                self.suggestions.append(suggestion)
                return True
            return False
        if kind == "notice":
            self.notices.append(
                {"code": _str(frame.get("code")), "message": _str(frame.get("message"))}
            )
            return True
        if kind == "done":
            reason = frame.get("finish_reason")
            self.status = STOPPED if reason == "cancelled" else DONE
            self.model = _str(frame.get("model")) or self.model
            self.engine = _str(frame.get("engine")) or self.engine
            usage = frame.get("usage")
            self.usage = usage if isinstance(usage, dict) else None
            cost = frame.get("cost_usd")
            self.cost_usd = float(cost) if isinstance(cost, int | float) else None
            if reason not in (None, "stop", "cancelled"):
                self.notices.append(
                    {"code": "finish_reason", "message": f"The answer ended early ({reason})."}
                )
            return True
        if kind == "error":
            self.fail(_str(frame.get("code")) or "error", _str(frame.get("message")), frame)
            return True
        return False

    def fail(self, code: str, message: str, frame: dict[str, Any] | None = None) -> None:
        self.status = ERROR
        self.error = {"code": code, "message": message}
        retry = (frame or {}).get("retry_after")
        if isinstance(retry, int | float) and not isinstance(retry, bool):
            self.error["retry_after"] = retry

    def stop(self) -> None:
        if not self.finished:
            self.status = STOPPED

    def _step(self, frame: dict[str, Any]) -> bool:
        key = str(frame.get("step"))
        found = self._find_step(key)
        title = _str(frame.get("title"))
        if found is None:
            found = Step(key, title or f"Step {key}")
            self.steps.append(found)
        elif title:
            found.title = title
        found.status = _str(frame.get("status")) or found.status
        return True

    def _find_step(self, key: str) -> Step | None:
        return next((s for s in self.steps if s.step == key), None)

    # --- views -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "version": BUNDLE_VERSION,
            "server_url": self.server_url,
            "turn_id": self.turn_id,
            "conversation_id": self.conversation_id,
            "status": self.status,
            "title": self.title,
            "markdown": self.markdown,
            "steps": [vars(s).copy() for s in self.steps],
            "citations": self.citations,
            "suggestions": self.suggestions,
            "notices": self.notices,
            "error": self.error,
            "engine": self.engine,
            "model": self.model,
            "usage": self.usage,
            "cost_usd": self.cost_usd,
        }

    def bundle(self) -> dict[str, Any]:
        return {
            ANSWER_MIME: self.to_json(),
            "text/markdown": self.to_markdown(),
            "text/plain": self.to_plain(),
        }

    def to_markdown(self) -> str:
        """For front ends without our renderer (VS Code, nbconvert, an older lab)."""
        parts: list[str] = []
        if self.title:
            parts.append(f"**{_escape(self.title)}**")
        for step in self.steps:
            mark = "✓" if step.status == "finished" else "…"
            body = f"\n\n{step.text.strip()}\n\n" if step.text.strip() else ""
            parts.append(f"<details><summary>{mark} {_html(step.title)}</summary>{body}</details>")
        if self.status == WAITING:
            parts.append("*Thinking…*")
        if self.markdown:
            parts.append(self.markdown)
        parts += [f"> {_escape(n['message'])}" for n in self.notices if n.get("message")]
        if self.citations:
            parts.append("**Sources**\n\n" + "\n".join(_citation_line(c) for c in self.citations))
        for suggestion in self.suggestions:
            title = _str(suggestion.get("title")) or "a change"
            parts.append(f"*Suggested change: {_escape(title)} (apply it from the sidebar).*")
        if self.error:
            parts.append(f"**RubberDuck:** {_escape(self.error['message'])}")
        if self.status == STOPPED:
            parts.append("*Stopped.*")
        return "\n\n".join(parts)

    def to_plain(self) -> str:
        lines: list[str] = []
        if self.title:
            lines.append(self.title)
        if self.status == WAITING:
            lines.append("Thinking…")
        if self.markdown:
            lines.append(self.markdown)
        lines += [f"RubberDuck: {n['message']}" for n in self.notices if n.get("message")]
        if self.citations:
            lines.append("Sources:")
            lines += ["  " + _citation_line(c, plain=True) for c in self.citations]
        if self.error:
            lines.append(f"RubberDuck: {self.error['message']}")
        if self.status == STOPPED:
            lines.append("[stopped]")
        return "\n".join(lines)


def _citation_line(citation: dict[str, Any], *, plain: bool = False) -> str:
    n = citation.get("n", "?")
    path = _str(citation.get("path"))
    where = ""
    if isinstance(citation.get("cell"), int):
        where = f", cell {citation['cell']}"
    elif isinstance(citation.get("start_line"), int):
        where = f", line {citation['start_line']}"
    if plain:
        return f"[{n}] {path}{where}"
    return f"{n}. `{path}`{where}"


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _escape(text: str) -> str:
    # Titles and messages are ours or the server's, not Markdown: keep them literal.
    return "".join("\\" + ch if ch in "\\`*_[]<>#|" else ch for ch in text)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
