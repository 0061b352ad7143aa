from __future__ import annotations

from rubberduck_jupyter.llm.settings import resolve_model_settings
from rubberduck_jupyter.sessions.memory import ConversationMemory


def test_traitlets_win_over_environment() -> None:
    env = {"RUBBERDUCK_MODEL": "ollama/llama3.1", "RUBBERDUCK_API_BASE": "http://x:1"}
    settings = resolve_model_settings(model="openai/gpt-4o-mini", env=env)
    assert settings.model == "openai/gpt-4o-mini"
    assert settings.api_base == "http://x:1"


def test_empty_everywhere_means_not_configured() -> None:
    settings = resolve_model_settings(env={"RUBBERDUCK_MODEL": "  "})
    assert not settings.configured


def test_key_is_hidden_from_repr_and_public_base() -> None:
    settings = resolve_model_settings(
        model="openai/m",
        api_base="https://user:pw@proxy.example:4000/v1",
        api_key="sk-secret-1",
        env={},
    )
    assert "sk-secret-1" not in repr(settings)
    assert settings.public_api_base() == "https://proxy.example:4000/v1"


def test_memory_is_per_user_and_bounded() -> None:
    memory = ConversationMemory(max_messages=3, max_conversations=2)
    for i in range(5):
        memory.append("alice", "c1", "user", f"q{i}")
    assert [t[1] for t in memory.history("alice", "c1")] == ["q2", "q3", "q4"]
    assert memory.history("bob", "c1") == []
    memory.append("bob", "c1", "user", "hi")
    memory.append("carol", "c1", "user", "hi")
    assert len(memory) == 2
    assert memory.history("alice", "c1") == []
