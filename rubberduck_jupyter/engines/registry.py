"""The engines a server offers, by name. Plugins add theirs to the same mapping.

Built first, from the narrow ports the engines need (today only a `PreferenceSaver` for
`/prefs`), and handed to the `SessionManager`; it used to be built from the manager itself,
so `app.py` made the manager with an empty engine map and filled it in afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..domain.preferences import PreferenceSaver
from .agent import AgentConversation
from .analysis import AnalysisConversation
from .base import Engine, EngineInfo
from .complex import ComplexConversation
from .generation import GenerationConversation
from .help import HelpEngine, PreferencesEngine
from .multi_step import MultiStepConversation
from .problem_solver import ProblemSolver
from .rules import RulesEngine
from .simple import SimpleConversation


def build_engines(
    *,
    preferences: PreferenceSaver,
    infos: Callable[[], Sequence[EngineInfo]] | None = None,
    agent: Mapping[str, Any] | None = None,
) -> dict[str, Engine]:
    """`infos` is what `/help` lists (the plugin host's catalog: plugins' commands too);
    by default these engines. `agent`: the agent's bounds (AgentConversation's keyword
    arguments: max_steps, max_tokens, max_seconds, tool_timeout_s)."""
    engines: dict[str, Engine] = {}
    for engine in (
        SimpleConversation(),
        ComplexConversation(),
        AnalysisConversation(),
        GenerationConversation(),
        ProblemSolver(),
        MultiStepConversation(),
        AgentConversation(**(agent or {})),
    ):
        engines[engine.info.name] = engine

    def own_infos() -> list[EngineInfo]:
        return [e.info for e in engines.values()]

    engines["help"] = HelpEngine(infos or own_infos)
    engines["preferences"] = PreferencesEngine(preferences)
    engines["rules"] = RulesEngine()
    return engines


def engine_list(engines: dict[str, Engine]) -> list[dict[str, Any]]:
    return [e.info.to_json() for e in engines.values()]
