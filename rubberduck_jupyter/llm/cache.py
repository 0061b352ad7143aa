"""Answers to recent identical requests, kept to serve while a provider's breaker is open."""

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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
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
        if self.max_entries <= 0 or not text:
            return
        self._items[key] = CachedAnswer(text, model_name, usage, self._clock())
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
