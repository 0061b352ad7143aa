"""The /metrics collector: one registration per process, sources that vanish, and health's
figures under Prometheus names."""

from __future__ import annotations

import gc
from typing import Any

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rubberduck_jupyter.llm.latency import LatencyBoard
from rubberduck_jupyter.runtime import metrics


def _health(**overrides: Any) -> dict[str, Any]:
    latency = LatencyBoard()
    latency.first_token("gpt", 0.3)
    latency.first_token("gpt", 1.5)
    latency.total("gpt", 2.0)
    health = {
        "status": "ok",
        "version": "0.1.0",
        "protocol_version": 1,
        "uptime_s": 12.5,
        "subsystems": {
            "llm": {
                "breakers": {
                    "openai@default": {
                        "state": "open",
                        "times_opened": 2,
                        "consecutive_failures": 5,
                    }
                },
                "rate_limits": {"queued": 3, "max_queue": 64, "admitted": 10, "refused": 1},
                "latency": latency.snapshot(),
            },
            "sessions": {"actors": 2, "active_turns": 1, "waiting": 4, "deepest_mailbox": 3},
            "supervisor": {
                "children": {"ollama_probe": {"state": "failed", "restarts": 5, "failures": 1}},
                "groups": {
                    "session_actors": {"states": {"running": 2}, "restarts": 7, "failed": 1}
                },
            },
            "event_loop": {
                "lag_ms": 4.0,
                "max_lag_ms": 250.0,
                "sum_ms": 30.0,
                "buckets_ms": [1, 10, "inf"],
                "counts": [5, 2, 1],
            },
            "index": {"state": "indexing", "open": True},
            "process": {"rss_bytes": 123_456_789},
        },
    }
    health.update(overrides)
    return health


def _samples(health: dict[str, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = "".join(generate_latest_family(family) for family in metrics.families(health))
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def generate_latest_family(family: Any) -> str:
    class One:
        def collect(self) -> Any:
            return [family]

    return generate_latest(One()).decode()  # type: ignore[arg-type]


def test_health_figures_get_prometheus_names_units_and_labels() -> None:
    s = _samples(_health())
    assert s[("rubberduck_health_ok", ())] == 1
    assert s[("rubberduck_uptime_seconds", ())] == 12.5
    gpt = (("model", "gpt"),)
    assert s[("rubberduck_llm_time_to_first_token_seconds_count", gpt)] == 2
    assert s[("rubberduck_llm_time_to_first_token_seconds_sum", gpt)] == 1.8
    assert s[("rubberduck_llm_time_to_first_token_seconds_bucket", (("le", "0.5"), *gpt))] == 1
    assert s[("rubberduck_llm_time_to_first_token_seconds_bucket", (("le", "+Inf"), *gpt))] == 2
    assert s[("rubberduck_llm_response_seconds_count", gpt)] == 1
    breaker = ("breaker", "openai@default")
    assert s[("rubberduck_llm_breaker_state", (breaker, ("state", "open")))] == 1
    assert s[("rubberduck_llm_breaker_state", (breaker, ("state", "closed")))] == 0
    assert s[("rubberduck_llm_breaker_opened_total", (breaker,))] == 2
    assert s[("rubberduck_llm_ratelimit_queued", ())] == 3
    assert s[("rubberduck_llm_ratelimit_refused_total", ())] == 1
    probe = ("child", "ollama_probe")
    assert s[("rubberduck_supervisor_children", (probe, ("state", "failed")))] == 1
    assert s[("rubberduck_supervisor_children", (probe, ("state", "running")))] == 0
    assert s[("rubberduck_supervisor_restarts_total", (probe,))] == 5
    actors = ("child", "session_actors")
    assert s[("rubberduck_supervisor_children", (actors, ("state", "running")))] == 2
    assert s[("rubberduck_supervisor_restarts_total", (actors,))] == 7
    assert s[("rubberduck_supervisor_failures_total", (actors,))] == 1
    assert s[("rubberduck_event_loop_lag_seconds_bucket", (("le", "0.001"),))] == 5
    assert s[("rubberduck_event_loop_lag_seconds_bucket", (("le", "0.01"),))] == 7
    assert s[("rubberduck_event_loop_lag_seconds_count", ())] == 8
    assert s[("rubberduck_event_loop_lag_seconds_sum", ())] == 0.03
    assert s[("rubberduck_event_loop_lag_max_seconds", ())] == 0.25
    assert s[("rubberduck_session_mailbox_waiting", ())] == 4
    assert s[("rubberduck_session_mailbox_deepest", ())] == 3
    assert s[("rubberduck_index_state", (("state", "indexing"),))] == 1
    assert s[("rubberduck_process_resident_memory_bytes", ())] == 123_456_789


def test_one_registration_per_process_and_stopped_sources_vanish() -> None:
    first = metrics.collector()
    assert metrics.collector() is first  # no second REGISTRY.register (it would raise)

    class App:
        def __init__(self, version: str) -> None:
            self.version = version

        def health(self) -> dict[str, Any]:
            return _health(version=self.version)

    kept, dropped, stopped = App("kept"), App("dropped"), App("stopped")
    keys = [metrics.register(app.health) for app in (kept, dropped, stopped)]
    text = generate_latest(REGISTRY).decode()
    assert all(f'version="{v}"' in text for v in ("kept", "dropped", "stopped"))
    metrics.unregister(keys[2])  # stop_extension
    del dropped  # gone without a stop: held weakly
    gc.collect()
    text = generate_latest(REGISTRY).decode()
    assert 'version="kept"' in text
    assert 'version="dropped"' not in text and 'version="stopped"' not in text
    metrics.unregister(keys[0])
    assert 'version="kept"' not in generate_latest(REGISTRY).decode()


def test_a_failing_source_does_not_break_the_scrape() -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("health failed")

    key = metrics.register(broken)
    try:
        assert b"python_info" in generate_latest(REGISTRY)  # the rest still answers
    finally:
        metrics.unregister(key)
