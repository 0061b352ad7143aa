from __future__ import annotations

import random

from rubberduck_jupyter.llm.breaker import BreakerState, CircuitBreaker
from rubberduck_jupyter.llm.retry import RetryBudget, RetryPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_walks_closed_open_half_open_closed() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_in() == 10
    clock.now += 10
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the single probe
    assert not breaker.allow()  # nobody else while it is out
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_failed_probe_reopens_and_cancelled_probe_frees_the_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=5, clock=clock)
    breaker.record_failure()
    clock.now += 5
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.times_opened == 2
    clock.now += 5
    assert breaker.allow()
    breaker.release_probe()
    assert breaker.allow()


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=5, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_backoff_is_jittered_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4, max_retry_after=10)
    rng = random.Random(1)
    delays = [policy.delay(attempt, None, rng) for attempt in range(8)]
    assert all(d is not None and 0 <= d <= 4 for d in delays)
    assert max(d for d in delays if d is not None) > 0.5  # grows beyond the base
    assert policy.delay(0, 3.0, rng) == 3.0
    assert policy.delay(0, 60.0, rng) is None  # too long: fail over instead


def test_retry_budget_caps_retries_to_a_share_of_requests() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.5, min_per_window=1, window_s=60, clock=clock)
    for _ in range(4):
        budget.record_request()
    spent = sum(budget.try_spend() for _ in range(10))
    assert spent == 3  # 1 + 0.5 * 4
    clock.now += 61
    assert budget.try_spend()
