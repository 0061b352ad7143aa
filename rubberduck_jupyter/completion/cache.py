"""Recent completions per user, found by prefix: the same request, or one typed into.

`get` answers two cases without a model call: the same prefix, suffix and context as an
earlier request (its completion, even an empty one: asking again would get the same), and
a prefix that extends an earlier one by text that the earlier completion starts with (the
user is typing what the ghost text shows: the rest of it). Entries are per user (a
completion holds the user's own code) and bounded (`MAX_KEYS` keys of user, context and
suffix, the last `PER_KEY` prefixes each); a lookup compares at most `PER_KEY` prefixes.
"""

from __future__ import annotations

from collections import OrderedDict, deque

MAX_KEYS = 512
PER_KEY = 8


class CompletionCache:
    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self._max_keys = max_keys
        self._entries: OrderedDict[tuple[str, str, str], deque[tuple[str, str]]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, user: str, context_key: str, prefix: str, suffix: str) -> str | None:
        recent = self._entries.get((user, context_key, suffix))
        if recent is not None:
            for earlier, text in reversed(recent):
                if prefix == earlier:
                    self.hits += 1
                    return text
                if text and len(prefix) > len(earlier) and prefix.startswith(earlier):
                    typed = prefix[len(earlier) :]
                    if text.startswith(typed) and len(text) > len(typed):
                        self.hits += 1
                        return text[len(typed) :]
        self.misses += 1
        return None

    def put(self, user: str, context_key: str, prefix: str, suffix: str, text: str) -> None:
        key = (user, context_key, suffix)
        recent = self._entries.get(key)
        if recent is None:
            recent = self._entries[key] = deque(maxlen=PER_KEY)
        self._entries.move_to_end(key)
        recent.append((prefix, text))
        while len(self._entries) > self._max_keys:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
