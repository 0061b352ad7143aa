"""Tokens and money spent, per user, conversation and model, since the server started."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

from ..protocol import Usage


@dataclass
class UsageTotals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    # Answers from models litellm does not price (local servers, proxies): cost unknown.
    unpriced_requests: int = 0

    def add(self, usage: Usage, cost_usd: float | None) -> None:
        self.requests += 1
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.total_tokens += usage.total_tokens
        if cost_usd is None:
            self.unpriced_requests += 1
        else:
            self.cost_usd += cost_usd

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost_usd"] = round(self.cost_usd, 6)
        return data


class _UserUsage:
    def __init__(self) -> None:
        self.totals = UsageTotals()
        self.by_model: dict[str, UsageTotals] = {}
        self.conversations: OrderedDict[str, UsageTotals] = OrderedDict()


class UsageLedger:
    def __init__(self, *, max_conversations_per_user: int = 500) -> None:
        self.max_conversations_per_user = max_conversations_per_user
        self._users: dict[str, _UserUsage] = {}
        self.totals = UsageTotals()

    def record(
        self,
        user: str,
        conversation_id: str | None,
        model_name: str,
        usage: Usage,
        cost_usd: float | None,
    ) -> None:
        account = self._users.setdefault(user, _UserUsage())
        account.totals.add(usage, cost_usd)
        account.by_model.setdefault(model_name, UsageTotals()).add(usage, cost_usd)
        if conversation_id:
            conversation = account.conversations.setdefault(conversation_id, UsageTotals())
            conversation.add(usage, cost_usd)
            account.conversations.move_to_end(conversation_id)
            while len(account.conversations) > self.max_conversations_per_user:
                account.conversations.popitem(last=False)
        self.totals.add(usage, cost_usd)

    def for_user(self, user: str) -> dict[str, Any]:
        account = self._users.get(user) or _UserUsage()
        return {
            "user": user,
            "totals": account.totals.to_json(),
            "by_model": {name: t.to_json() for name, t in account.by_model.items()},
            "conversations": {cid: t.to_json() for cid, t in account.conversations.items()},
        }
