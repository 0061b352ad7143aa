"""/help and /prefs: answered by RubberDuck itself, never by the model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..domain.preferences import PreferenceError, PreferenceSaver, parse_prefs_command
from .base import EngineInfo, Turn


class HelpEngine:
    info = EngineInfo(
        name="help", title="Help", description="Lists the commands.", commands=("/help",)
    )

    def __init__(self, engines: Callable[[], Sequence[EngineInfo]]) -> None:
        self._engines = engines

    async def run(self, turn: Turn) -> None:
        lines = []
        if turn.command and turn.command != "help":
            lines.append(f"`/{turn.command}` is not a command.\n")
        lines.append(
            "RubberDuck picks the right mode for each message; start a message with a "
            "command to choose yourself:\n"
        )
        lines.append("| command | mode | what it does |\n|---|---|---|")
        for info in self._engines():
            if info.commands:
                cmds = " ".join(f"`{c}`" for c in info.commands)
                lines.append(f"| {cmds} | {info.title} | {info.description} |")
        lines.append(
            "\n`/prefs style=concise|balanced|detailed|step-by-step prefer=polars,plotly "
            "avoid=matplotlib` sets how RubberDuck answers you (remembered)."
        )
        await turn.answer("\n".join(lines))


class PreferencesEngine:
    info = EngineInfo(
        name="preferences",
        title="Preferences",
        description="Shows or sets how RubberDuck answers you.",
        commands=("/prefs",),
    )

    def __init__(self, preferences: PreferenceSaver) -> None:
        self._preferences = preferences

    async def run(self, turn: Turn) -> None:
        current = turn.preferences
        if turn.text.strip():
            try:
                current = parse_prefs_command(turn.text, current)
            except PreferenceError as exc:
                await turn.answer(f"⚠️ {exc}")
                return
            await self._preferences.save(turn.user, current)
            turn.preferences = current
            lead = "Saved. "
        else:
            lead = ""
        prefer = ", ".join(current.prefer) or "none"
        avoid = ", ".join(current.avoid) or "none"
        await turn.answer(
            f"{lead}Your preferences: style **{current.style}**, prefer {prefer}, "
            f"avoid {avoid}" + (f", notes: {current.notes}" if current.notes else "") + "."
        )
