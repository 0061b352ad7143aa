"""MultiStepConversation: a larger task worked through over several turns. The task (its
goal, steps and which one is current) is part of the conversation and persisted, so it
survives a restart; each turn works on the current step and can move to the next."""

from __future__ import annotations

import re
from typing import Any

from ..context.prompt import BASE_PROMPT
from .base import EngineInfo, Turn
from .common import retrieve, say_no_model

PLAN_PROMPT = BASE_PROMPT + (
    " Break the user's goal into 3 to 8 concrete steps that can each be done in one "
    "notebook session. Answer with the numbered steps only, one line each, no code."
)
STEP_PROMPT = BASE_PROMPT + (
    " You are helping the user through a multi-step task. Work on the current step only: "
    "give the code or explanation it needs, grounded in the notebook context, and end with "
    "what the user should check before moving on."
)
MAX_STEPS = 12
_ADVANCE = re.compile(r"^\s*(next|continue|go on|done|finished|proceed|next step|ok(ay)?)\b", re.I)
_SKIP = re.compile(r"^\s*skip\b", re.I)
_GOTO = re.compile(r"^\s*step (\d+)\b", re.I)
_CANCEL = re.compile(r"^\s*(cancel|stop|abandon|clear)\b", re.I)


def parse_steps(text: str) -> list[str]:
    """Numbered or bulleted lines ("1. x", "2) y", "- z"), else `;`-separated items."""
    steps = [
        m.group(1).strip()
        for m in re.finditer(r"^\s*(?:\d+[.)]|[-*•])\s+(.+)$", text, re.MULTILINE)
    ]
    if not steps and ";" in text:
        steps = [s.strip() for s in text.split(";") if s.strip()]
    return [s.rstrip(".") for s in steps][:MAX_STEPS]


def new_task(goal: str, steps: list[str]) -> dict[str, Any]:
    return {
        "goal": goal,
        "steps": [{"title": s, "status": "todo"} for s in steps],
        "current": 0,
    }


def task_markdown(task: dict[str, Any]) -> str:
    marks = {"done": "✅", "skipped": "⏭️", "todo": "⬜"}
    lines = [f"**Task:** {task['goal']}"]
    for i, step in enumerate(task["steps"]):
        here = " ← current" if i == task["current"] and step["status"] == "todo" else ""
        lines.append(f"{i + 1}. {marks.get(step['status'], '⬜')} {step['title']}{here}")
    return "\n".join(lines)


def _advance(task: dict[str, Any], status: str) -> dict[str, Any]:
    steps = [dict(s) for s in task["steps"]]
    current = task["current"]
    if current < len(steps):
        steps[current]["status"] = status
    following = [i for i in range(current + 1, len(steps)) if steps[i]["status"] == "todo"]
    return {**task, "steps": steps, "current": following[0] if following else len(steps)}


class MultiStepConversation:
    info = EngineInfo(
        name="multi_step",
        title="Task",
        description="Work through a larger task over several turns; the plan is remembered.",
        commands=("/plan", "/next", "/task"),
        context_type="feature_request",
    )

    async def run(self, turn: Turn) -> None:
        task = turn.conversation.task
        text = turn.text.strip()
        if turn.command == "plan" or task is None:
            await self._plan(turn, text)
            return
        if turn.command == "task" and not text:
            await turn.set_task(task)
            await turn.answer(task_markdown(task))
            return
        if _CANCEL.match(text):
            await turn.set_task(None)
            await turn.answer(f"Stopped the task “{task['goal']}”.")
            return
        if turn.command == "next" or _ADVANCE.match(text):
            task = _advance(task, "done")
        elif _SKIP.match(text):
            task = _advance(task, "skipped")
        elif (goto := _GOTO.match(text)) and 1 <= int(goto.group(1)) <= len(task["steps"]):
            task = {**task, "current": int(goto.group(1)) - 1}
        await turn.set_task(task)
        if task["current"] >= len(task["steps"]):
            await turn.answer(task_markdown(task) + "\n\nEvery step is done. 🎉")
            await turn.set_task(None)
            return
        await self._work_on_current(turn, task, text)

    async def _plan(self, turn: Turn, goal: str) -> None:
        if not goal:
            await turn.answer(
                "Give the goal after `/plan`, e.g. `/plan clean and model the sales data`."
            )
            return
        title, _, listed = goal.partition(":") if ":" in goal.splitlines()[0] else ("", "", goal)
        steps = parse_steps(listed)
        title = (title.strip() or goal.splitlines()[0])[:200]
        if len(steps) < 2:
            if not turn.has_model:
                await say_no_model(turn)
                await turn.answer(
                    "Without a model RubberDuck cannot plan the task for you. List the steps "
                    "yourself, e.g. `/plan load data; clean columns; fit model; plot`."
                )
                return
            found = await retrieve(turn, goal, top_k=3)
            async with turn.step("plan", "Planning the steps") as record:
                call = await turn.ask(turn.messages(PLAN_PROMPT, goal, retrieved=found), to=record)
            steps = parse_steps(call.text)
            if len(steps) < 2:
                await turn.answer(call.text)
                return
        task = new_task(title, steps)
        await turn.set_task(task)
        await turn.answer(
            task_markdown(task)
            + "\n\nSay **next** when a step is done, **skip** to skip it, **step N** to jump, "
            "or **cancel** to stop. Let's start with step 1."
        )
        if turn.has_model:
            await turn.answer("\n\n")
            await self._work_on_current(turn, task, "")

    async def _work_on_current(self, turn: Turn, task: dict[str, Any], text: str) -> None:
        step = task["steps"][task["current"]]
        header = f"**Step {task['current'] + 1} of {len(task['steps'])}: {step['title']}**\n\n"
        if not turn.has_model:
            await say_no_model(turn)
            await turn.answer(header + "Work on this step, then say **next**.")
            return
        await turn.answer(header)
        question = f"{task_markdown(task)}\n\nCurrent step: {step['title']}" + (
            f"\n\nThe user says: {text}" if text else ""
        )
        found = await retrieve(turn, f"{task['goal']} {step['title']}", top_k=3)
        await turn.ask(turn.messages(STEP_PROMPT, question, retrieved=found))
