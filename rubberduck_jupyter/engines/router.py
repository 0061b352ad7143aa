"""ConversationRouter: picks the engine for each message and records why.

Order: a forced engine (the frame's `engine` field or a slash command) wins; then fast
rules over the text and its context; only when the best rule is unsure, and a model is
configured, a short classification call to the model. Every decision carries its reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ..protocol import ChatContext

SIMPLE = "simple"
COMPLEX = "complex"
ANALYSIS = "analysis"
GENERATION = "generation"
PROBLEM_SOLVER = "problem_solver"
MULTI_STEP = "multi_step"
AGENT = "agent"
HELP = "help"
PREFERENCES = "preferences"

# Slash command -> (engine, mode the engine may read from Turn.engine_args' prefix).
COMMANDS: Mapping[str, str] = {
    "ask": SIMPLE,
    "explain": SIMPLE,
    "think": COMPLEX,
    "design": COMPLEX,
    "review": ANALYSIS,
    "analyze": ANALYSIS,
    "architecture": ANALYSIS,
    "fix": PROBLEM_SOLVER,
    "debug": PROBLEM_SOLVER,
    "generate": GENERATION,
    "plan": MULTI_STEP,
    "next": MULTI_STEP,
    "task": MULTI_STEP,
    "agent": AGENT,
    "help": HELP,
    "prefs": PREFERENCES,
}

# What the classification prompt offers the model; a plugin's engine is reached by its
# command (or a route_hint hook), not by the model's guess.
CLASSIFIABLE = frozenset({SIMPLE, COMPLEX, ANALYSIS, GENERATION, PROBLEM_SOLVER, MULTI_STEP})

# Below this, rules defer to the model (when there is one).
CONFIDENT = 0.6

_COMMAND_RE = re.compile(r"^\s*/([A-Za-z][\w-]*)\b[ \t]*(.*)$", re.DOTALL)
_TRACEBACK_RE = re.compile(
    r"Traceback \(most recent call last\)|^\w+(Error|Exception): |Cell In\[\d+\]", re.MULTILINE
)
_FIX_WORDS = re.compile(
    r"\b(fix|error|errors|fails?|failing|failed|broken|crash\w*|exception|traceback|bug|"
    r"wrong|doesn'?t work|not working)\b",
    re.IGNORECASE,
)
_REVIEW_WORDS = re.compile(
    r"\b(review|refactor|improve|clean ?up|code smell|smells|best practices?|"
    r"architecture|structure of|analy[sz]e|critique|readab\w+|maintainab\w+)\b",
    re.IGNORECASE,
)
_GENERATE_WORDS = re.compile(
    r"\b(write|generate|create|implement|build|make) (me )?(a|an|the|some)?\s*"
    r"(function|class|script|code|cell|test|tests|plot|chart|pipeline|query|method|"
    r"snippet|notebook|module|loader|parser)\b|\bcode (to|that|for)\b|\bunit tests? for\b",
    re.IGNORECASE,
)
_COMPLEX_WORDS = re.compile(
    r"\b(design|trade-?offs?|step by step|end[- ]to[- ]end|from scratch|architect\w*|"
    r"compare (approaches|options)|strategy|system for)\b",
    re.IGNORECASE,
)
_CONTINUE_WORDS = re.compile(
    r"^\s*(next|continue|go on|done|ok(ay)?|proceed|next step|step \d+|skip|finished)\b",
    re.IGNORECASE,
)
_MULTI_WORDS = re.compile(
    r"\b(help me (build|through|with a project)|walk me through|let'?s (build|do) this "
    r"(together|step by step)|multi-?step|project plan)\b",
    re.IGNORECASE,
)

# A change or a build that spans cells: the agent's job (it reads the notebook and
# proposes one suggestion per cell). Both an action and a many-cells scope must appear:
# "what is in every cell?" is a question, "rename df in the cell" is one cell's fix.
_AGENT_ACTIONS = re.compile(
    r"\b(change|rename|update|refactor|replace|convert|migrate|restructure|reorgani[sz]e|"
    r"split|merge|build|add|apply|fix|move|clean ?up|standardi[sz]e)\b",
    re.IGNORECASE,
)
_AGENT_SCOPE = re.compile(
    r"\b(across|throughout)\s+(all\s+|every\s+|each\s+|the\s+|my\s+|this\s+)*"
    r"(cells?|notebooks?)\b|\b(in|to|of)\s+(all|every|each)\s+(the\s+|my\s+)?"
    r"(cells?|notebooks?)\b|\b(several|multiple|many|all the|all my) cells\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Route:
    engine: str
    reason: str
    confidence: float
    forced: bool = False
    command: str | None = None  # the slash command used, without the slash
    text: str = ""  # the message without the command

    def to_json(self) -> dict[str, object]:
        return {
            "engine": self.engine,
            "reason": self.reason,
            "confidence": round(self.confidence, 2),
            "forced": self.forced,
            "command": self.command,
        }


Classifier = Callable[[str, ChatContext], Awaitable[tuple[str, str] | None]]
Hint = Callable[[str, ChatContext], Awaitable[str | None]]


def parse_command(text: str) -> tuple[str, str] | None:
    match = _COMMAND_RE.match(text)
    if not match:
        return None
    return match.group(1).lower(), match.group(2).strip()


class EngineSource(Protocol):
    def names(self) -> set[str]: ...
    def commands(self) -> dict[str, str]: ...


class ConversationRouter:
    """`engines`: a fixed set of names (the commands are then `COMMANDS`), or a catalog
    read on every message (engines/catalog.py: the plugin registry's engines)."""

    def __init__(self, engines: set[str] | EngineSource) -> None:
        self._catalog = None if isinstance(engines, (set, frozenset)) else engines
        self._names = set(engines) if isinstance(engines, (set, frozenset)) else set()

    @property
    def engine_names(self) -> set[str]:
        return self._catalog.names() if self._catalog is not None else self._names

    def command_map(self) -> Mapping[str, str]:
        return self._catalog.commands() if self._catalog is not None else COMMANDS

    def forced(self, text: str, engine: str | None) -> Route | None:
        if engine:
            if engine not in self.engine_names:
                return Route(HELP, f"unknown engine {engine!r}", 1.0, True, None, text)
            return Route(engine, f"engine {engine!r} chosen by the client", 1.0, True, None, text)
        parsed = parse_command(text)
        if parsed is None:
            return None
        command, rest = parsed
        target = self.command_map().get(command)
        if target is None:
            return Route(HELP, f"unknown command /{command}", 1.0, True, command, rest)
        return Route(target, f"/{command} command", 1.0, True, command, rest)

    def by_rules(self, text: str, context: ChatContext, *, has_task: bool) -> Route:
        """Fast rules; the confidence says how sure the rule is."""
        if _TRACEBACK_RE.search(text):
            return Route(PROBLEM_SOLVER, "the message contains a traceback", 0.9, text=text)
        if context.error and _FIX_WORDS.search(text):
            return Route(
                PROBLEM_SOLVER,
                "an error is in context and the message asks about it",
                0.9,
                text=text,
            )
        if has_task and _CONTINUE_WORDS.match(text):
            return Route(MULTI_STEP, "continues the running task", 0.85, text=text)
        if AGENT in self.engine_names and _AGENT_SCOPE.search(text) and _AGENT_ACTIONS.search(text):
            return Route(AGENT, "asks to change or build across cells", 0.75, text=text)
        if _REVIEW_WORDS.search(text):
            return Route(ANALYSIS, "asks for a review or analysis", 0.8, text=text)
        if _MULTI_WORDS.search(text):
            return Route(MULTI_STEP, "asks to work through a larger task", 0.7, text=text)
        if _GENERATE_WORDS.search(text):
            confidence = 0.55 if _COMPLEX_WORDS.search(text) else 0.75
            return Route(GENERATION, "asks for new code", confidence, text=text)
        if _COMPLEX_WORDS.search(text) or len(text) > 1200:
            return Route(COMPLEX, "an open design question", 0.65, text=text)
        if context.error and len(text) < 80:
            return Route(
                PROBLEM_SOLVER, "a short message with an error in context", 0.55, text=text
            )
        if _FIX_WORDS.search(text):
            return Route(PROBLEM_SOLVER, "mentions a failure", 0.55, text=text)
        if len(text) < 400:
            return Route(SIMPLE, "a direct question", 0.7, text=text)
        return Route(SIMPLE, "no rule matched", 0.4, text=text)

    async def route(
        self,
        text: str,
        context: ChatContext,
        *,
        engine: str | None = None,
        has_task: bool = False,
        classify: Classifier | None = None,
        hint: Hint | None = None,
    ) -> Route:
        forced = self.forced(text, engine)
        if forced is not None:
            return forced
        if hint is not None:
            # A plugin's route_hint hook: the first engine name it gives wins over the
            # rules; a name no engine has is ignored (the plugin may be out of date).
            hinted = await hint(text, context)
            if hinted is not None and hinted in self.engine_names:
                return Route(hinted, f"plugin hint: {hinted}", 0.9, text=text)
        guess = self.by_rules(text, context, has_task=has_task)
        if guess.confidence >= CONFIDENT or classify is None:
            return guess
        try:
            answer = await classify(text, context)
        except Exception:  # a failed classification falls back to the rule's guess
            answer = None
        if answer is None or answer[0] not in CLASSIFIABLE & self.engine_names:
            return Route(
                guess.engine,
                f"{guess.reason} (the model could not decide)",
                guess.confidence,
                text=text,
            )
        name, why = answer
        return Route(name, f"model: {why}" if why else "model's choice", 0.7, text=text)


CLASSIFY_PROMPT = """Pick the assistant mode for the user's message. Modes:
- simple: a direct question with a short answer
- complex: an open design or multi-part problem that needs requirements and a plan
- analysis: review, critique or explain the structure of existing code
- generation: write new code
- problem_solver: find the cause of an error or failure and fix it
- multi_step: a larger task the user wants to work through over several turns
Answer with JSON only: {"mode": "<mode>", "reason": "<at most 12 words>"}"""


def parse_classification(text: str) -> tuple[str, str] | None:
    # The outermost braces, found by two scans (a `\{.*\}` regex rescans the text from
    # every "{": quadratic on a reply full of braces).
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(text[start : end + 1])
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("mode"), str):
        return None
    return data["mode"].strip().lower(), str(data.get("reason", ""))[:200]
