from __future__ import annotations

from rubberduck_jupyter.sessions.memory import ConversationMemory


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
