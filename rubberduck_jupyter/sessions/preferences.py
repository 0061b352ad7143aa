"""Where a user's preferences are kept: the preferences table of the conversation store.

The preferences themselves (the value, its validation, the `/prefs` syntax, the prompt
sentences) are domain data in `domain/preferences.py`. This is the persisting half, built
before the engines and handed to them as their `PreferenceSaver` (the `/prefs` engine saves
through it) and to the `SessionManager` (which loads them for each turn and keeps what a
message taught). It was `SessionManager.save_preferences`, which made the engine registry
need the manager, built after the engines.
"""

from __future__ import annotations

from ..domain.models import User
from ..domain.preferences import Preferences, learn_from_message
from .store import AsyncConversationStore


class PreferenceBook:
    """Loads and saves each user's `Preferences` (a `domain.preferences.PreferenceSaver`)."""

    def __init__(self, store: AsyncConversationStore) -> None:
        self.store = store

    async def load(self, user: User) -> Preferences:
        return Preferences.from_json(await self.store.preferences(user.name))

    async def save(self, user: User, prefs: Preferences) -> None:
        await self.store.set_preferences(user.name, prefs.to_json())

    async def for_message(self, user: User, text: str) -> Preferences:
        """The user's preferences for a turn, with what `text` says ("I prefer polars")
        learnt and saved."""
        prefs = await self.load(user)
        learned = learn_from_message(text, prefs)
        if learned != prefs:
            await self.save(user, learned)
        return learned
