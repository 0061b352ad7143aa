"""The engine tests' harness: a SessionManager wired as the server wires it (a real
SQLite file, the real LLMService and litellm talking to the fake provider on 127.0.0.1,
the real engines and router)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from rubberduck_jupyter.context.redact import Redactor
from rubberduck_jupyter.context.rules import ProjectRules
from rubberduck_jupyter.domain.actions import ProjectFiles
from rubberduck_jupyter.domain.models import Project
from rubberduck_jupyter.engines.registry import build_engines
from rubberduck_jupyter.llm.config import build_models_config
from rubberduck_jupyter.llm.retry import RetryPolicy
from rubberduck_jupyter.llm.service import LLMService, ServiceSettings
from rubberduck_jupyter.protocol import ChatContext, ChatRequest
from rubberduck_jupyter.sessions.manager import SessionManager
from rubberduck_jupyter.sessions.preferences import PreferenceBook
from rubberduck_jupyter.sessions.store import AsyncConversationStore, ConversationStore

API_KEY = "sk-harness-key-0123456789abcdef"
_ids = itertools.count(1)


class Harness:
    def __init__(
        self,
        db_path: Path,
        root: Path,
        fake_llm: Any,
        *,
        with_model: bool = True,
        memory_tokens: int = 4000,
        correction_rounds: int = 2,
        rules: bool = False,
        rules_max_chars: int = 8_000,
        engine_overrides: dict[str, Any] | None = None,
        model: str = "openai/fake-model",
        direct_openai_streaming: bool = True,
    ) -> None:
        """`engine_overrides`: engines by name put over the built ones (an agent with
        small bounds)."""
        if with_model:
            config = build_models_config(
                model=model, api_base=fake_llm.base_url, api_key=API_KEY, env={}
            )
        else:
            config = build_models_config(env={})
        self.fake = fake_llm
        self.llm = LLMService(
            config,
            settings=ServiceSettings(
                retry=RetryPolicy(max_attempts=1, base_delay=0.01),
                direct_openai_streaming=direct_openai_streaming,
            ),
            redactor=Redactor(lambda: [API_KEY]),
        )
        self.store = AsyncConversationStore(ConversationStore(db_path))
        self.root = root
        self.project = Project.for_root(str(root.resolve()), "alice")
        preferences = PreferenceBook(self.store)
        self.manager = SessionManager(
            store=self.store,
            model=self.llm,
            has_model=lambda: config.configured,
            engines={**build_engines(preferences=preferences), **(engine_overrides or {})},
            preferences=preferences,
            project=self.project,
            history_tokens=lambda _model: memory_tokens,
            files=ProjectFiles(self.project),
            correction_rounds=correction_rounds,
            rules=ProjectRules(root, max_chars=rules_max_chars) if rules else None,
        )
        self.closed = False
        # Every turn the recorder persisted, for asserting what a turn kept (its transcript).
        self.turns: list[Any] = []
        persist = self.manager.recorder.persist_answer

        async def keep_turn(answer_id: str, turn: Any, *args: Any, **kwargs: Any) -> Any:
            self.turns.append(turn)
            return await persist(answer_id, turn, *args, **kwargs)

        self.manager.recorder.persist_answer = keep_turn  # type: ignore[method-assign]

    async def chat(
        self,
        text: str,
        *,
        conversation: str = "conv-1",
        user: str = "alice",
        context: ChatContext | None = None,
        engine: str | None = None,
    ) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []

        async def emit(frame: dict[str, Any]) -> None:
            frames.append(frame)

        request = ChatRequest(
            id=f"turn-{next(_ids)}",
            conversation_id=conversation,
            text=text,
            context=context or ChatContext(),
            engine=engine,
        )
        await self.manager.run_turn(user, request, emit)
        return frames

    def prompts(self) -> list[list[dict[str, str]]]:
        return [r["messages"] for r in self.fake.requests]

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.manager.close()
            await self.llm.aclose()
            await self.store.aclose()


def frames_of(frames: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] == kind]


def answer_text(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "chunk" and "step" not in f)


def joined(messages: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in messages)
