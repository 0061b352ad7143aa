"""A plugin's slash command as an engine: the router picks it by its command, and the
command's `ctx` (plugins/context.py) is built from the turn.

`TurnServices` is the server's side of `CommandContext`: each method does what an engine
would do through the `Turn` (stream into the answer, one checked model call, cite what the
index found, offer a suggestion that must parse). Permission checks happen before these
methods are reached, in `CommandContext`, for in-process and isolated plugins alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import Any

from ..context.prompt import BASE_PROMPT
from ..plugins import CommandContext, CommandError, CommandSpec, PluginSpec
from .base import EngineInfo, Turn
from .common import CodeTarget, retrieve
from .correct import correct_code_answer

RunCommand = Callable[[str, CommandContext, Sequence[str]], Awaitable[Any]]

# What a plugin's prompt is sent with when it gives no system prompt of its own.
PLUGIN_SYSTEM = BASE_PROMPT


def engine_name(plugin: str, command: str) -> str:
    """`doc` for the command /doc of plugin doc; `tools:lint` for /lint of plugin tools."""
    return plugin if plugin == command else f"{plugin}:{command}"


def split_args(text: str, cmd: CommandSpec) -> list[str]:
    """The words after `/cmd`, at most one per declared argument: the last one takes the
    rest of the line (`/doc load the CSV` gives NAME="load the CSV" to a one-argument
    command), so a command never fails for a message's extra words."""
    if not cmd.args:
        return []
    return text.split(None, len(cmd.args) - 1) if text.strip() else []


class TurnServices:
    """`plugins.Services` over one chat turn."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn

    async def say(self, markdown: str) -> None:
        await self.turn.answer(markdown)

    async def check(self, code: str) -> list[dict[str, Any]]:
        from ..review.static import analyze_python

        known = [v.name for v in self.turn.context.variables]
        found = await asyncio.to_thread(analyze_python, code, known_names=known, cell=True)
        return [f.to_json() for f in found]

    async def test_skeleton(self, source: str) -> str:
        from ..domain.actions import generate_tests

        return await asyncio.to_thread(generate_tests, self.turn.user, source, "cell")

    async def ask(self, prompt: str, *, system: str | None, checked: bool) -> str:
        messages = self.turn.messages(system or PLUGIN_SYSTEM, prompt)
        call = await self.turn.ask(messages)
        if not checked:
            return call.text
        # Code for the active cell runs beside it (tests below it, say): what the cell
        # defines is not an undefined name there.
        from ..review.static import names_bound

        cell = self.turn.context.active_cell or ""
        known = sorted(await asyncio.to_thread(names_bound, cell)) if cell.strip() else []
        return await correct_code_answer(self.turn, call.text, messages, known_names=known)

    async def search(self, query: str, *, top_k: int) -> list[dict[str, Any]]:
        found = await retrieve(self.turn, query, top_k=top_k)
        return [asdict(c) for c in found]

    async def read_file(self, path: str) -> str:
        if self.turn.files is None:
            raise PermissionError("this server has no project files to read")
        code = await asyncio.to_thread(self.turn.files.read, path)
        return code.text

    async def suggest(self, code: str, *, title: str, mode: str) -> dict[str, Any] | None:
        ctx = self.turn.context
        source = ctx.active_cell or ""
        target = CodeTarget(
            "the active cell", source, ctx.notebook_path, ctx.cell_index, ctx.cell_id
        )
        if mode == "replace" and ctx.cell_index is None and ctx.cell_id is None:
            await self.turn.answer(
                "\n\n(No active cell to change: open a notebook and put the cursor in a cell.)"
            )
            return None
        suggestion = await self.turn.suggest(
            target=target, proposed=code.rstrip("\n"), title=title, mode=mode
        )
        return suggestion.to_json() if suggestion is not None else None


class PluginCommandEngine:
    """One plugin command, answered by running it under the registry's guard."""

    def __init__(self, spec: PluginSpec, cmd: CommandSpec, run: RunCommand) -> None:
        self.spec = spec
        self.command = cmd
        self._run = run
        self.info = EngineInfo(
            name=engine_name(spec.name, cmd.name),
            # The badge on its answers: "doc plugin", or "lint (tools plugin)".
            title=f"{spec.name} plugin"
            if cmd.name == spec.name
            else f"{cmd.name} ({spec.name} plugin)",
            description=cmd.help,
            commands=(f"/{cmd.name}",),
        )

    async def run(self, turn: Turn) -> None:
        ctx = CommandContext(
            plugin=self.spec.name,
            permissions=self.spec.permissions,
            services=TurnServices(turn),
            text=turn.text,
            context=turn.context.to_json(),
            has_model=turn.has_model,
            user=turn.user.name,
        )
        try:
            result = await self._run(self.command.name, ctx, split_args(turn.text, self.command))
        except CommandError as exc:
            await turn.answer(f"⚠️ {exc}")
            return
        if isinstance(result, str) and result:
            await turn.answer(result)
        elif not turn.answer_parts and not turn.suggestions:
            await turn.answer(f"`/{self.command.name}` finished without an answer.")
