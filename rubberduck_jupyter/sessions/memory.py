"""Recent turns of each user's conversations, in memory and bounded."""

from __future__ import annotations

from collections import OrderedDict, deque

Turn = tuple[str, str]


class ConversationMemory:
    """Keyed by (user, conversation), so one user can never read another's history."""

    def __init__(self, *, max_messages: int = 20, max_conversations: int = 256) -> None:
        self.max_messages = max_messages
        self.max_conversations = max_conversations
        self._conversations: OrderedDict[tuple[str, str], deque[Turn]] = OrderedDict()

    def history(self, user: str, conversation_id: str) -> list[Turn]:
        return list(self._conversations.get((user, conversation_id), ()))

    def append(self, user: str, conversation_id: str, role: str, content: str) -> None:
        key = (user, conversation_id)
        turns = self._conversations.get(key)
        if turns is None:
            turns = self._conversations[key] = deque(maxlen=self.max_messages)
            while len(self._conversations) > self.max_conversations:
                self._conversations.popitem(last=False)
        self._conversations.move_to_end(key)
        turns.append((role, content))

    def __len__(self) -> int:
        return len(self._conversations)
