"""Per-plugin call accounting: calls, failures, time spent, and when to give up on a plugin.

One `PluginHealth` per loaded plugin. The hook dispatcher reports every call's outcome here;
`record_failure` returns True the moment a plugin crosses `max_consecutive_failures`, and the
registry then disables it. Consecutive, not total: a plugin that fails once a day under real
load is flaky, not broken, and one success resets the count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Three in a row: one failure can be a bad input, two a coincidence; three consecutive ones on
# different turns mean every user is paying for this plugin, so it is switched off.
DEFAULT_MAX_CONSECUTIVE_FAILURES = 3


@dataclass
class PluginHealth:
    """Counters for one plugin; plain data so `as_dict` can feed a health endpoint."""

    max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES
    calls: int = 0
    failures: int = 0
    timeouts: int = 0
    consecutive_failures: int = 0
    # Wall time spent inside the plugin's hooks; for sync hooks this is time the event loop
    # was blocked, which cannot be pre-empted in-process (see hooks.py).
    total_time_s: float = 0.0
    max_time_s: float = 0.0
    last_error: str = ""
    by_hook: dict[str, int] = field(default_factory=dict)

    def record_time(self, hook: str, elapsed_s: float) -> None:
        self.calls += 1
        self.by_hook[hook] = self.by_hook.get(hook, 0) + 1
        self.total_time_s += elapsed_s
        self.max_time_s = max(self.max_time_s, elapsed_s)

    def record_success(self) -> None:
        self.consecutive_failures = 0

    def record_failure(self, error: str, *, timeout: bool = False) -> bool:
        """Count a failure; True when this one crosses the limit (disable the plugin now)."""
        self.failures += 1
        self.timeouts += int(timeout)
        self.consecutive_failures += 1
        self.last_error = error
        return self.consecutive_failures == self.max_consecutive_failures

    def as_dict(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "failures": self.failures,
            "timeouts": self.timeouts,
            "consecutive_failures": self.consecutive_failures,
            "total_time_s": round(self.total_time_s, 6),
            "max_time_s": round(self.max_time_s, 6),
            "last_error": self.last_error,
            "calls_by_hook": dict(self.by_hook),
        }
