"""The engines a server offers, by name. Plugins add theirs to the same mapping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .analysis import AnalysisConversation
from .base import Engine, EngineInfo
from .complex import ComplexConversation
from .generation import GenerationConversation
from .help import HelpEngine, PreferencesEngine
from .multi_step import MultiStepConversation
from .problem_solver import ProblemSolver
from .simple import SimpleConversation

if TYPE_CHECKING:
    from ..sessions.manager import SessionManager


def build_engines(manager: SessionManager) -> dict[str, Engine]:
    engines: dict[str, Engine] = {}
    for engine in (
        SimpleConversation(),
        ComplexConversation(),
        AnalysisConversation(),
        GenerationConversation(),
        ProblemSolver(),
        MultiStepConversation(),
    ):
        engines[engine.info.name] = engine

    def infos() -> list[EngineInfo]:
        return [e.info for e in engines.values()]

    async def save(user: Any, prefs: Any) -> None:
        await manager.save_preferences(user, prefs)

    engines["help"] = HelpEngine(infos)
    engines["preferences"] = PreferencesEngine(save)
    return engines


def engine_list(engines: dict[str, Engine]) -> list[dict[str, Any]]:
    return [e.info.to_json() for e in engines.values()]
