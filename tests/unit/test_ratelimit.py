"""FairRateLimiter on a real event loop: buckets, deadlines, refusals, cancellation, fairness.

Waiting tests use real time with a token limit of 6,000 per minute, which refills at 100
tokens per second, so a wait of a few tenths of a second is set by the size of the request.
Tests that never wait use a fake clock so their arithmetic is exact.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time

import pytest

from rubberduck_jupyter.llm.errors import LLMError
from rubberduck_jupyter.llm.ratelimit import (
    FairRateLimiter,
    Grant,
    Limits,
    RateLimited,
    TokenBucket,
)
from rubberduck_jupyter.protocol import ErrorCode

UNLIMITED = Limits()
# 100 tokens per second: 10 tokens take 0.1 s to refill.
TIGHT_TOKENS = Limits(tokens_per_minute=6000)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def drain_global(limiter: FairRateLimiter, user: str = "drain") -> Grant:
    """Empty the global token bucket, leaving the given user otherwise unaffected."""
    grant = await limiter.acquire(user, 6000, deadline_s=0)
    assert limiter.snapshot()["global"]["tokens"]["available"] < 1
    return grant


async def until(predicate: object, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def cancel_all(tasks: list[asyncio.Task[object]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- TokenBucket and Limits ---------------------------------------------------------------


def test_bucket_starts_full_and_refills_continuously_up_to_capacity() -> None:
    bucket = TokenBucket(60, now=0.0)
    assert bucket.available(0.0) == 60
    assert bucket.try_take(60, 0.0)
    assert not bucket.try_take(1, 0.0)
    assert bucket.time_until(3, 0.0) == pytest.approx(3.0)
    assert bucket.available(1.5) == pytest.approx(1.5)
    assert bucket.try_take(1, 1.5)
    assert bucket.available(1000.0) == 60
    assert bucket.time_until(61, 1000.0) == math.inf
    assert bucket.time_until(60, 1000.0) == 0


def test_bucket_give_back_is_capped_and_debit_goes_negative_until_repaid() -> None:
    bucket = TokenBucket(600, now=0.0)
    bucket.give_back(100, 0.0)
    assert bucket.available(0.0) == 600
    bucket.debit(700, 0.0)
    assert bucket.available(0.0) == pytest.approx(-100)
    # 10 per second: 10 s to repay the debt, 1 s more for one unit.
    assert bucket.time_until(10, 0.0) == pytest.approx(11.0)
    assert not bucket.is_full(59.0)
    assert bucket.is_full(70.0)


def test_limits_are_frozen_and_reject_negative_values() -> None:
    limits = Limits(requests_per_minute=30, tokens_per_minute=60_000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.requests_per_minute = 1  # type: ignore[misc]
    with pytest.raises(ValueError):
        Limits(requests_per_minute=-1)


def test_rate_limited_is_an_llm_error_with_the_rate_limited_code() -> None:
    error = RateLimited(2.5, "user", "You have reached your limit; try again in 3 s.")
    assert isinstance(error, LLMError)
    assert error.code is ErrorCode.RATE_LIMITED
    assert (error.retry_after, error.scope, error.retryable) == (2.5, "user", True)
    assert str(error) == error.message


# --- admission and refusal (fake clock: nothing waits) ------------------------------------


async def test_admits_at_once_and_debits_user_and_global_buckets() -> None:
    clock = FakeClock()
    limiter = FairRateLimiter(
        global_limits=Limits(requests_per_minute=600, tokens_per_minute=400_000),
        user_limits=Limits(requests_per_minute=30, tokens_per_minute=60_000),
        clock=clock,
    )
    grant = await limiter.acquire(user="alice", tokens=1200, deadline_s=10.0)
    assert (grant.user, grant.tokens, grant.waited_s) == ("alice", 1200, 0.0)
    snap = limiter.snapshot()
    assert snap["global"]["requests"] == {"per_minute": 600, "available": 599}
    assert snap["global"]["tokens"] == {"per_minute": 400_000, "available": 398_800}
    assert (snap["queued"], snap["tracked_users"], snap["admitted"]) == (0, 1, 1)
    # The user's own bucket was debited too: 29 more requests fit, the 31st does not.
    for _ in range(29):
        await limiter.acquire("alice", 1, deadline_s=0)
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire("alice", 1, deadline_s=0)
    assert refused.value.scope == "user"


async def test_unlimited_dimensions_never_refuse() -> None:
    limiter = FairRateLimiter(global_limits=UNLIMITED, user_limits=UNLIMITED, clock=FakeClock())
    for _ in range(1000):
        await limiter.acquire("alice", 10**9, deadline_s=0)
    snap = limiter.snapshot()
    assert snap["global"] == {"requests": None, "tokens": None}
    assert snap["admitted"] == 1000


async def test_user_limit_refuses_that_user_while_others_still_pass() -> None:
    clock = FakeClock()
    limiter = FairRateLimiter(
        global_limits=Limits(requests_per_minute=600),
        user_limits=Limits(requests_per_minute=2),
        clock=clock,
    )
    await limiter.acquire("alice", 10, deadline_s=0)
    await limiter.acquire("alice", 10, deadline_s=0)
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire("alice", 10, deadline_s=0)
    assert refused.value.scope == "user"
    # Two per minute refill one request every 30 s.
    assert refused.value.retry_after == pytest.approx(30.0)
    assert refused.value.message == (
        "You have reached your limit of 2 requests per minute; try again in 30 s."
    )
    assert (await limiter.acquire("bob", 10, deadline_s=0)).user == "bob"
    clock.advance(30.0)
    assert (await limiter.acquire("alice", 10, deadline_s=0)).user == "alice"
    assert limiter.snapshot()["queued"] == 0


async def test_global_limit_applies_across_users() -> None:
    clock = FakeClock()
    limiter = FairRateLimiter(
        global_limits=Limits(requests_per_minute=3),
        user_limits=Limits(requests_per_minute=30),
        clock=clock,
    )
    for user in ("alice", "bob", "carol"):
        await limiter.acquire(user, 10, deadline_s=0)
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire("dave", 10, deadline_s=0)
    assert refused.value.scope == "global"
    assert refused.value.retry_after == pytest.approx(20.0)
    assert refused.value.message == (
        "RubberDuck is busy for everyone right now (3 requests per minute); try again in 20 s."
    )
    assert limiter.snapshot()["refused"] == 1


@pytest.mark.parametrize(
    ("user_tpm", "global_tpm", "scope", "phrase"),
    [
        (1000, 400_000, "user", "more than your limit of 1,000 tokens per minute"),
        (60_000, 5000, "global", "more than RubberDuck allows for everyone (5,000 tokens"),
    ],
)
async def test_request_bigger_than_a_whole_bucket_is_refused_at_once(
    user_tpm: int, global_tpm: int, scope: str, phrase: str
) -> None:
    limiter = FairRateLimiter(
        global_limits=Limits(tokens_per_minute=global_tpm),
        user_limits=Limits(tokens_per_minute=user_tpm),
    )
    started = time.monotonic()
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire("alice", 6000, deadline_s=10.0)
    assert time.monotonic() - started < 0.05
    assert refused.value.scope == scope
    assert not refused.value.retryable
    assert refused.value.retry_after > 0
    assert phrase in refused.value.message
    assert "6,000 tokens" in refused.value.message
    assert limiter.snapshot()["queued"] == 0


async def test_settle_refunds_or_debits_the_difference_once() -> None:
    clock = FakeClock()
    limiter = FairRateLimiter(
        global_limits=Limits(tokens_per_minute=6000),
        user_limits=Limits(tokens_per_minute=600),
        clock=clock,
    )
    grant = await limiter.acquire("alice", 500, deadline_s=0)
    limiter.settle(grant, actual_tokens=100)
    assert limiter.snapshot()["global"]["tokens"]["available"] == 5900
    limiter.settle(grant, actual_tokens=0)  # second settle of the same grant is ignored
    assert limiter.snapshot()["global"]["tokens"]["available"] == 5900

    heavy = await limiter.acquire("alice", 100, deadline_s=0)
    limiter.settle(heavy, actual_tokens=700)
    # Alice's bucket is now 600 - 100 - 700 = -200: she repays 200 at 10/s before 1 more.
    assert limiter.snapshot()["global"]["tokens"]["available"] == 5200
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire("alice", 1, deadline_s=0)
    assert refused.value.scope == "user"
    assert refused.value.retry_after == pytest.approx(20.1)
    assert "600 tokens per minute; try again in 21 s." in refused.value.message
    assert (await limiter.acquire("bob", 1, deadline_s=0)).user == "bob"


async def test_snapshot_is_json_and_counts_users_and_queue() -> None:
    clock = FakeClock()
    limiter = FairRateLimiter(
        global_limits=Limits(requests_per_minute=600, tokens_per_minute=6000),
        user_limits=Limits(requests_per_minute=30),
        max_queue=8,
        clock=clock,
    )
    await limiter.acquire("alice", 10, deadline_s=0)
    await limiter.acquire("bob", 10, deadline_s=0)
    snap = json.loads(json.dumps(limiter.snapshot()))
    assert snap == {
        "queued": 0,
        "queued_users": 0,
        "max_queue": 8,
        "tracked_users": 2,
        "admitted": 2,
        "refused": 0,
        "global": {
            "requests": {"per_minute": 600, "available": 598},
            "tokens": {"per_minute": 6000, "available": 5980},
        },
    }


async def test_idle_users_are_forgotten_once_full_and_tracking_is_bounded() -> None:
    clock = FakeClock()
    limiter = FairRateLimiter(
        global_limits=UNLIMITED,
        user_limits=Limits(requests_per_minute=60),
        max_users=3,
        clock=clock,
    )
    for n in range(5):
        await limiter.acquire(f"user{n}", 1, deadline_s=0)
        assert limiter.snapshot()["tracked_users"] <= 3
    # After a minute every bucket has refilled; full and idle users are dropped.
    clock.advance(61.0)
    await limiter.acquire("newcomer", 1, deadline_s=0)
    assert limiter.snapshot()["tracked_users"] == 1


# --- waiting (real time) ------------------------------------------------------------------


async def test_waits_for_refill_then_admits() -> None:
    limiter = FairRateLimiter(global_limits=TIGHT_TOKENS, user_limits=UNLIMITED)
    await drain_global(limiter)
    started = time.monotonic()
    grant = await limiter.acquire("alice", 20, deadline_s=2.0)
    waited = time.monotonic() - started
    # 20 tokens at 100 per second.
    assert 0.15 <= waited < 0.6
    assert grant.waited_s == pytest.approx(waited, abs=0.05)
    assert limiter.snapshot()["queued"] == 0


async def test_global_deadline_raises_with_time_until_admission() -> None:
    limiter = FairRateLimiter(global_limits=TIGHT_TOKENS, user_limits=UNLIMITED)
    await drain_global(limiter)
    started = time.monotonic()
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire("alice", 300, deadline_s=0.2)
    assert 0.18 <= time.monotonic() - started < 0.6
    # 300 tokens need 3 s of refill, 0.2 s of which have passed.
    assert refused.value.scope == "global"
    assert 2.4 <= refused.value.retry_after <= 2.85
    assert refused.value.message == (
        "RubberDuck is busy for everyone right now (6,000 tokens per minute); try again in 3 s."
    )
    assert limiter.snapshot()["queued"] == 0


async def test_user_deadline_names_the_users_own_limit() -> None:
    limiter = FairRateLimiter(
        global_limits=Limits(tokens_per_minute=400_000),
        user_limits=Limits(tokens_per_minute=600),
    )
    await limiter.acquire("alice", 600, deadline_s=0)
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire("alice", 30, deadline_s=0.2)
    assert refused.value.scope == "user"
    assert 2.4 <= refused.value.retry_after <= 2.85
    assert refused.value.message == (
        "You have reached your limit of 600 tokens per minute; try again in 3 s."
    )


async def test_full_queue_refuses_at_once() -> None:
    limiter = FairRateLimiter(global_limits=TIGHT_TOKENS, user_limits=UNLIMITED, max_queue=2)
    await drain_global(limiter)
    waiting = [
        asyncio.create_task(limiter.acquire(user, 1000, deadline_s=5.0)) for user in ("a", "b")
    ]
    await until(lambda: limiter.snapshot()["queued"] == 2)
    started = time.monotonic()
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire("carol", 10, deadline_s=5.0)
    assert time.monotonic() - started < 0.05
    assert refused.value.scope == "global"
    assert refused.value.retry_after > 0
    assert "busy for everyone right now (2 requests already waiting)" in refused.value.message
    assert limiter.snapshot()["queued"] == 2
    await cancel_all(waiting)
    assert limiter.snapshot()["queued"] == 0


async def test_full_queue_still_admits_a_request_that_fits_right_now() -> None:
    # The queue is full of alice's requests held by her own limit; bob is not held by anything.
    limiter = FairRateLimiter(
        global_limits=UNLIMITED, user_limits=Limits(requests_per_minute=1), max_queue=2
    )
    await limiter.acquire("alice", 1, deadline_s=0)
    waiting = [asyncio.create_task(limiter.acquire("alice", 1, deadline_s=5.0)) for _ in "ab"]
    await until(lambda: limiter.snapshot()["queued"] == 2)
    assert (await limiter.acquire("bob", 1, deadline_s=5.0)).user == "bob"
    await cancel_all(waiting)


async def test_settle_refund_lets_a_waiter_in_early() -> None:
    limiter = FairRateLimiter(global_limits=TIGHT_TOKENS, user_limits=UNLIMITED)
    big = await drain_global(limiter, user="alice")
    # 3,000 tokens would take 30 s of refill.
    waiter = asyncio.create_task(limiter.acquire("bob", 3000, deadline_s=5.0))
    await until(lambda: limiter.snapshot()["queued"] == 1)
    await asyncio.sleep(0.05)
    assert not waiter.done()
    started = time.monotonic()
    limiter.settle(big, actual_tokens=100)
    grant = await asyncio.wait_for(waiter, 0.5)
    assert time.monotonic() - started < 0.1
    assert grant.user == "bob"
    assert limiter.snapshot()["global"]["tokens"]["available"] == pytest.approx(2900, abs=20)


async def test_cancelled_waiter_leaves_cleanly_and_unblocks_those_behind_it() -> None:
    limiter = FairRateLimiter(global_limits=TIGHT_TOKENS, user_limits=UNLIMITED)
    await drain_global(limiter)
    # Alice is first in turn and needs 30 s of refill, so bob's small request waits behind her.
    alice = asyncio.create_task(limiter.acquire("alice", 3000, deadline_s=5.0))
    await until(lambda: limiter.snapshot()["queued"] == 1)
    bob = asyncio.create_task(limiter.acquire("bob", 10, deadline_s=5.0))
    await until(lambda: limiter.snapshot()["queued"] == 2)
    await asyncio.sleep(0.2)
    assert not bob.done()
    alice.cancel()
    with pytest.raises(asyncio.CancelledError):
        await alice
    assert (await asyncio.wait_for(bob, 0.3)).user == "bob"
    snap = limiter.snapshot()
    assert (snap["queued"], snap["queued_users"]) == (0, 0)
    # Alice's place is gone without a trace: her next request is served like anyone's.
    assert (await limiter.acquire("alice", 10, deadline_s=1.0)).user == "alice"


async def test_cancelling_a_waiter_mid_queue_keeps_the_rest_in_order() -> None:
    limiter = FairRateLimiter(global_limits=TIGHT_TOKENS, user_limits=UNLIMITED)
    await drain_global(limiter)
    admitted: list[int] = []

    async def ask(n: int) -> None:
        await limiter.acquire("alice", 5, deadline_s=5.0)
        admitted.append(n)

    tasks = [asyncio.create_task(ask(n)) for n in range(3)]
    await until(lambda: limiter.snapshot()["queued"] == 3)
    tasks[1].cancel()
    await until(lambda: limiter.snapshot()["queued"] == 2)
    await asyncio.wait_for(asyncio.gather(tasks[0], tasks[2]), 1.0)
    assert admitted == [0, 2]
    assert limiter.snapshot()["queued"] == 0


async def test_cancel_right_after_admission_returns_the_grant() -> None:
    limiter = FairRateLimiter(
        global_limits=Limits(requests_per_minute=60, tokens_per_minute=6000),
        user_limits=UNLIMITED,
    )
    big = await drain_global(limiter, user="alice")
    waiter = asyncio.create_task(limiter.acquire("bob", 1000, deadline_s=5.0))
    await until(lambda: limiter.snapshot()["queued"] == 1)
    # The refund admits bob synchronously; cancelling before his task resumes means nobody
    # will ever settle that grant, so it must be handed back.
    limiter.settle(big, actual_tokens=0)
    assert limiter.snapshot()["queued"] == 0
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    snap = limiter.snapshot()
    assert snap["global"]["tokens"]["available"] == 6000
    assert snap["global"]["requests"]["available"] == pytest.approx(59, abs=0.1)
    assert snap["admitted"] == 1


async def test_light_user_is_not_stuck_behind_a_heavy_users_backlog() -> None:
    limiter = FairRateLimiter(global_limits=TIGHT_TOKENS, user_limits=UNLIMITED)
    await drain_global(limiter)
    admitted: list[str] = []

    async def ask(user: str, label: str) -> None:
        await limiter.acquire(user, 5, deadline_s=5.0)  # one admission per 50 ms
        admitted.append(label)

    heavy = [asyncio.create_task(ask("heavy", f"heavy{n}")) for n in range(20)]
    await until(lambda: len(admitted) >= 2)
    arrived_after = len(admitted)
    light = asyncio.create_task(ask("light", "light"))
    await asyncio.wait_for(light, 1.0)
    assert admitted.index("light") - arrived_after < 2, admitted
    # Within a user, requests keep their order.
    heavies = [label for label in admitted if label.startswith("heavy")]
    assert heavies == [f"heavy{n}" for n in range(len(heavies))]
    await cancel_all(heavy)  # type: ignore[arg-type]
    assert limiter.snapshot()["queued"] == 0


async def test_two_backlogged_users_alternate() -> None:
    limiter = FairRateLimiter(global_limits=TIGHT_TOKENS, user_limits=UNLIMITED)
    # A small debt on top holds everyone for 0.2 s, long enough to queue both backlogs.
    limiter.settle(await drain_global(limiter), actual_tokens=6020)
    admitted: list[str] = []

    async def ask(user: str) -> None:
        await limiter.acquire(user, 3, deadline_s=5.0)
        admitted.append(user)

    tasks = [asyncio.create_task(ask("a")) for _ in range(6)]
    await until(lambda: limiter.snapshot()["queued"] == 6)
    tasks += [asyncio.create_task(ask("b")) for _ in range(6)]
    await asyncio.wait_for(asyncio.gather(*tasks), 2.0)
    # Whoever is first, no user gets two turns in a row while the other still waits.
    assert admitted[:10] in (["a", "b"] * 5, ["b", "a"] * 5), admitted


async def test_user_asking_again_the_moment_it_is_served_does_not_jump_the_queue() -> None:
    # No per-user limit, so the eager user's buckets are always full; it must still lose its
    # turn to the waiting user after each admission rather than return as a newcomer.
    limiter = FairRateLimiter(global_limits=TIGHT_TOKENS, user_limits=UNLIMITED)
    limiter.settle(await drain_global(limiter), actual_tokens=6010)
    admitted: list[str] = []

    async def eager() -> None:
        for _ in range(4):
            await limiter.acquire("eager", 3, deadline_s=5.0)
            admitted.append("eager")

    async def patient() -> None:
        await limiter.acquire("patient", 3, deadline_s=5.0)
        admitted.append("patient")

    tasks = [asyncio.create_task(eager())]
    tasks += [asyncio.create_task(patient()) for _ in range(4)]
    await asyncio.wait_for(asyncio.gather(*tasks), 2.0)
    assert admitted == ["eager", "patient"] * 4, admitted


async def test_user_held_by_own_limit_does_not_delay_others_when_global_is_free() -> None:
    limiter = FairRateLimiter(
        global_limits=Limits(tokens_per_minute=60_000),
        user_limits=Limits(tokens_per_minute=600),
    )
    await limiter.acquire("alice", 600, deadline_s=0)
    # Bob was served after alice, so alice is first in turn from here on.
    await limiter.acquire("bob", 10, deadline_s=0)
    alice = asyncio.create_task(limiter.acquire("alice", 100, deadline_s=5.0))
    await until(lambda: limiter.snapshot()["queued"] == 1)
    started = time.monotonic()
    assert (await limiter.acquire("bob", 10, deadline_s=5.0)).user == "bob"
    assert time.monotonic() - started < 0.05
    assert not alice.done()
    await cancel_all([alice])  # type: ignore[list-item]


async def test_user_held_by_own_limit_does_not_hold_scarce_global_capacity() -> None:
    limiter = FairRateLimiter(global_limits=TIGHT_TOKENS, user_limits=Limits(tokens_per_minute=600))
    await limiter.acquire("alice", 600, deadline_s=0)
    await limiter.acquire("bob", 10, deadline_s=0)
    # Carol empties the global bucket by using far more than she reserved.
    limiter.settle(await limiter.acquire("carol", 10, deadline_s=0), actual_tokens=5390)
    assert limiter.snapshot()["global"]["tokens"]["available"] < 1
    # Alice is first in turn but held by her own limit for 10 s; bob needs 0.2 s of global
    # refill and must get it rather than wait behind her.
    alice = asyncio.create_task(limiter.acquire("alice", 100, deadline_s=5.0))
    await until(lambda: limiter.snapshot()["queued"] == 1)
    started = time.monotonic()
    assert (await limiter.acquire("bob", 20, deadline_s=2.0)).user == "bob"
    assert time.monotonic() - started < 0.6
    assert not alice.done()
    await cancel_all([alice])  # type: ignore[list-item]
    assert limiter.snapshot()["queued"] == 0
