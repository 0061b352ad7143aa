"""RubberDuck's figures on jupyter_server's `/metrics`, from the same snapshot as health.

jupyter_server serves prometheus_client's default REGISTRY at `/metrics` (token required
unless `ServerApp.authenticate_prometheus = False`). One custom Collector is registered
there once per process; each live RubberDuckApp registers its health callable with it
and unregisters at stop. Sources are held weakly (a bound method through WeakMethod), so
an app that is gone without stopping also drops out: tests start many server apps in one
process, and neither a duplicate registration nor a stopped app's figures may remain.

Nothing is computed at import or between scrapes: a scrape calls `health()` (~0.2 ms with
a few models and breakers; docs/monitoring.md) and turns it into metric families. Names
follow Prometheus conventions: a `rubberduck_` prefix, base units in the name
(`_seconds`, `_bytes`), `_total` on counters, states as a label with one series per
known state (1 for the current one). This module knows the shape of health's dict, not
the modules behind it: runtime/ imports no session, engine or handler.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from collections.abc import Callable, Iterator
from itertools import count
from typing import Any

from prometheus_client.core import (
    REGISTRY,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .supervisor import ChildState

log = logging.getLogger(__name__)

Source = Callable[[], dict[str, Any]]

CHILD_STATES = [str(s) for s in ChildState]
BREAKER_STATES = ["closed", "open", "half_open"]
INDEX_STATES = ["idle", "indexing", "error", "locked"]


class RubberDuckCollector(Collector):
    """Collects every registered app's health snapshot into metric families."""

    def __init__(self) -> None:
        self._sources: dict[int, Callable[[], Source | None]] = {}
        self._ids = count()
        self._lock = threading.Lock()  # a scrape may run while an app stops

    def add(self, source: Source) -> int:
        ref: Callable[[], Source | None]
        if hasattr(source, "__self__") and hasattr(source, "__func__"):
            ref = weakref.WeakMethod(source)  # type: ignore[arg-type]
        else:
            ref = lambda: source  # noqa: E731
        with self._lock:
            key = next(self._ids)
            self._sources[key] = ref
        return key

    def remove(self, key: int) -> None:
        with self._lock:
            self._sources.pop(key, None)

    def __len__(self) -> int:
        return len(self._live())

    def _live(self) -> list[Source]:
        with self._lock:
            pairs = list(self._sources.items())
        live = []
        for key, ref in pairs:
            source = ref()
            if source is None:
                self.remove(key)
            else:
                live.append(source)
        return live

    def describe(self) -> list[Metric]:
        # Empty: the registry then skips collecting at registration time (no app yet).
        return []

    def collect(self) -> Iterator[Metric]:
        for source in self._live():
            try:
                health = source()
            except Exception:  # a scrape must answer whatever one app does
                log.exception("RubberDuck: health for /metrics failed")
                continue
            yield from families(health)


_collector: RubberDuckCollector | None = None
_collector_lock = threading.Lock()


def collector() -> RubberDuckCollector:
    """The process's collector, registered with prometheus_client's REGISTRY on first use."""
    global _collector
    with _collector_lock:
        if _collector is None:
            _collector = RubberDuckCollector()
            REGISTRY.register(_collector)
        return _collector


def register(source: Source) -> int:
    """Adds an app's health callable to /metrics; returns the key `unregister` takes."""
    return collector().add(source)


def unregister(key: int) -> None:
    collector().remove(key)


# --- health -> metric families ------------------------------------------------------------


def families(health: dict[str, Any]) -> Iterator[Metric]:
    sub = health.get("subsystems", {})
    info = GaugeMetricFamily(
        "rubberduck_info", "RubberDuck's version", labels=["version", "protocol_version"]
    )
    info.add_metric([str(health.get("version")), str(health.get("protocol_version"))], 1)
    yield info
    yield _gauge(
        "rubberduck_health_ok",
        "1 when health's status is ok, 0 when degraded (a supervised task failed)",
        1 if health.get("status") == "ok" else 0,
    )
    yield _gauge(
        "rubberduck_uptime_seconds", "Seconds since the extension started", health.get("uptime_s")
    )
    if "supervisor" in sub:
        yield from _supervisor(sub["supervisor"])
    if "event_loop" in sub:
        yield from _event_loop(sub["event_loop"])
    if "sessions" in sub:
        yield from _sessions(sub["sessions"])
    if "llm" in sub:
        yield from _llm(sub["llm"])
    if "index" in sub:
        yield from _index(sub["index"])
    memory = sub.get("process", {})
    if memory.get("rss_bytes") is not None:
        yield _gauge(
            "rubberduck_process_resident_memory_bytes",
            "Resident memory of the server process (/proc/self/statm)",
            memory["rss_bytes"],
        )


def _gauge(name: str, doc: str, value: Any) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value or 0))


def _supervisor(snap: dict[str, Any]) -> Iterator[Metric]:
    children = GaugeMetricFamily(
        "rubberduck_supervisor_children",
        "Supervised tasks per state: 0 or 1 for a named task, a count for a group",
        labels=["child", "state"],
    )
    restarts = CounterMetricFamily(
        "rubberduck_supervisor_restarts",
        "Restarts of a supervised task (or of any member of a group) after a crash",
        labels=["child"],
    )
    failures = CounterMetricFamily(
        "rubberduck_supervisor_failures",
        "Times a supervised task crashed too often and was left down",
        labels=["child"],
    )
    for name, child in snap.get("children", {}).items():
        state = child.get("state")
        for known in CHILD_STATES:
            children.add_metric([name, known], 1 if state == known else 0)
        restarts.add_metric([name], child.get("restarts") or 0)
        failures.add_metric([name], child.get("failures") or (1 if state == "failed" else 0))
    for name, group in snap.get("groups", {}).items():
        # Only the live states: a group member that ended leaves the group (its end is
        # counted in failures_total when it failed).
        for known, n in group.get("states", {}).items():
            children.add_metric([name, known], n)
        restarts.add_metric([name], group.get("restarts", 0))
        failures.add_metric([name], group.get("failed", 0))
    yield children
    yield restarts
    yield failures


def _histogram(
    family: HistogramMetricFamily,
    labels: list[str],
    bounds: list[Any],
    counts: list[int],
    total: float,
    scale: float = 1.0,
) -> None:
    buckets = []
    running = 0
    for bound, n in zip(bounds, counts, strict=True):
        running += n
        finite = bound != "inf" and math.isfinite(float(bound))
        buckets.append((f"{float(bound) * scale:g}" if finite else "+Inf", running))
    family.add_metric(labels, buckets, sum_value=total)


def _event_loop(snap: dict[str, Any]) -> Iterator[Metric]:
    if "counts" in snap:
        lag = HistogramMetricFamily(
            "rubberduck_event_loop_lag_seconds",
            "How late the event loop woke up from a 0.1 s sleep (anything blocking it)",
            labels=[],
        )
        _histogram(
            lag, [], snap["buckets_ms"], snap["counts"], snap.get("sum_ms", 0) / 1000, 1 / 1000
        )
        yield lag
    yield _gauge(
        "rubberduck_event_loop_lag_last_seconds",
        "The latest event-loop lag sample",
        (snap.get("lag_ms") or 0) / 1000,
    )
    yield _gauge(
        "rubberduck_event_loop_lag_max_seconds",
        "The worst event-loop lag since start",
        (snap.get("max_lag_ms") or 0) / 1000,
    )


def _sessions(snap: dict[str, Any]) -> Iterator[Metric]:
    yield _gauge("rubberduck_session_actors", "Live conversation actors", snap.get("actors"))
    yield _gauge(
        "rubberduck_session_active_turns", "Turns being answered now", snap.get("active_turns")
    )
    yield _gauge(
        "rubberduck_session_mailbox_waiting",
        "Messages waiting in all conversations' mailboxes",
        snap.get("waiting"),
    )
    yield _gauge(
        "rubberduck_session_mailbox_deepest",
        "Messages waiting in the fullest conversation mailbox",
        snap.get("deepest_mailbox"),
    )
    yield _gauge(
        "rubberduck_session_mailbox_capacity",
        "Messages one conversation may queue before 'busy'",
        snap.get("mailbox_size"),
    )
    yield _gauge(
        "rubberduck_websockets_open", "Open chat WebSocket connections", snap.get("open_sockets")
    )


def _llm(snap: dict[str, Any]) -> Iterator[Metric]:
    limits = snap.get("rate_limits", {})
    yield _gauge(
        "rubberduck_llm_ratelimit_queued",
        "Model requests waiting for rate-limit capacity",
        limits.get("queued"),
    )
    yield _gauge(
        "rubberduck_llm_ratelimit_queue_capacity",
        "Model requests that may wait before 'rate_limited'",
        limits.get("max_queue"),
    )
    for name, key, doc in (
        ("admitted", "admitted", "Model requests admitted by the rate limiter"),
        ("refused", "refused", "Model requests refused by the rate limiter"),
    ):
        counter = CounterMetricFamily(f"rubberduck_llm_ratelimit_{name}", doc)
        counter.add_metric([], limits.get(key) or 0)
        yield counter
    state = GaugeMetricFamily(
        "rubberduck_llm_breaker_state",
        "Circuit breaker per provider endpoint: 1 for its current state",
        labels=["breaker", "state"],
    )
    opened = CounterMetricFamily(
        "rubberduck_llm_breaker_opened", "Times a circuit breaker opened", labels=["breaker"]
    )
    failing = GaugeMetricFamily(
        "rubberduck_llm_breaker_consecutive_failures",
        "Consecutive failures counted by a circuit breaker",
        labels=["breaker"],
    )
    for key, breaker in snap.get("breakers", {}).items():
        for known in BREAKER_STATES:
            state.add_metric([key, known], 1 if breaker.get("state") == known else 0)
        opened.add_metric([key], breaker.get("times_opened") or 0)
        failing.add_metric([key], breaker.get("consecutive_failures") or 0)
    yield state
    yield opened
    yield failing
    first = HistogramMetricFamily(
        "rubberduck_llm_time_to_first_token_seconds",
        "Seconds from sending a request to a model until its first token",
        labels=["model"],
    )
    total = HistogramMetricFamily(
        "rubberduck_llm_response_seconds",
        "Seconds from sending a request to a model until its answer ended",
        labels=["model"],
    )
    for model, series in snap.get("latency", {}).items():
        for family, key in ((first, "time_to_first_token"), (total, "total")):
            s = series[key]
            _histogram(family, [model], s["buckets_s"], s["counts"], s["sum_s"])
    yield first
    yield total


def _index(snap: dict[str, Any]) -> Iterator[Metric]:
    state = GaugeMetricFamily(
        "rubberduck_index_state", "The project index: 1 for its current state", labels=["state"]
    )
    for known in INDEX_STATES:
        state.add_metric([known], 1 if snap.get("state") == known else 0)
    yield state
    yield _gauge(
        "rubberduck_index_open", "1 when the index is open in this process", snap.get("open")
    )
