"""Answers to recent identical requests, kept to serve while a provider's breaker is open.

Keys are SHA-256 digests of the request, never the prompt itself. Answers longer than
`max_text_chars` are not kept: 128 entries of a megabyte each would hold 128 MB for a
fallback that is rarely used (a 100k-character message once produced answers that long).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..protocol import Usage


@dataclass(frozen=True)
class CachedAnswer:
    text: str
    model_name: str
    usage: Usage
    stored_at: float


class ResponseCache:
    def __init__(
        self,
        *,
        max_entries: int = 128,
        ttl_s: float = 600.0,
        max_text_chars: int = 32_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.max_text_chars = max_text_chars
        self._clock = clock
        self._items: OrderedDict[str, CachedAnswer] = OrderedDict()

    @staticmethod
    def key(model_name: str, messages: list[dict[str, str]]) -> str:
        payload = json.dumps([model_name, messages], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def get(self, key: str) -> CachedAnswer | None:
        answer = self._items.get(key)
        if answer is None:
            return None
        if self._clock() - answer.stored_at > self.ttl_s:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return answer

    def put(self, key: str, text: str, model_name: str, usage: Usage) -> None:
        if self.max_entries <= 0 or not text or len(text) > self.max_text_chars:
            return
        self._items[key] = CachedAnswer(text, model_name, usage, self._clock())
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
