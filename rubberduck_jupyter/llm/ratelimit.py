"""Per-user and global token buckets in front of the model, with a bounded, fair wait queue.

Every model request first calls `FairRateLimiter.acquire`, which debits one request and an
estimated token count from the caller's own buckets and from the shared global buckets, and
afterwards `FairRateLimiter.settle`, which corrects the token estimate with the real usage.
Requests that cannot be admitted at once wait in a queue that serves users round-robin, so one
user's backlog cannot starve everyone else. All methods must be called from the event loop's
thread; nothing here is thread-safe.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count, islice
from typing import Any, Literal

from ..protocol import ErrorCode
from .errors import LLMError

Scope = Literal["user", "global"]

# Continuous refill in floating point leaves a level a hair below a whole amount; without this
# tolerance a waiter woken exactly on time would be put back to sleep for a few nanoseconds.
_EPSILON = 1e-6
# Timers may fire slightly early; the floor stops a near-zero deficit from spinning the loop.
_MIN_SLEEP_S = 0.001
# Forgetting a user also forgets its round-robin turn. Without a quiet period, a user whose
# own buckets are always full (no per-user limit) and who asks again the moment it is served
# would come back as a newcomer every time and go first forever.
_FORGET_AFTER_IDLE_S = 60.0
# Callers sleep for retry_after before retrying; zero would make them retry in a hot loop.
_MIN_RETRY_AFTER_S = 0.1
# A request bigger than a whole bucket never fits; there is no honest wait to report, so the
# refusal says "retryable=False" and this is only a placeholder for clients that ignore it.
_NEVER_FITS_RETRY_AFTER_S = 60.0


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-minute ceilings for one scope; 0 leaves that dimension unlimited."""

    requests_per_minute: int = 0
    tokens_per_minute: int = 0

    def __post_init__(self) -> None:
        if self.requests_per_minute < 0 or self.tokens_per_minute < 0:
            raise ValueError(f"rate limits cannot be negative: {self!r}")


class RateLimited(LLMError):
    """A request refused by the limiter; `message` is meant for the person who sent it.

    It is an `LLMError` with code `rate_limited`, so the chat handler reports it like a
    provider's 429. `retryable` is False when sending the same request again can never succeed
    (it needs more tokens than a whole minute allows).
    """

    def __init__(
        self, retry_after: float, scope: Scope, message: str, *, retryable: bool = True
    ) -> None:
        super().__init__(ErrorCode.RATE_LIMITED, message, retry_after=retry_after)
        self.retry_after: float = retry_after
        self.scope: Scope = scope
        self.retryable = retryable


@dataclass(slots=True, eq=False)
class Grant:
    """Permission for one model request; hand it back to `FairRateLimiter.settle`."""

    user: str
    tokens: int
    waited_s: float
    settled: bool = False


class TokenBucket:
    """Holds up to `per_minute` units and refills continuously at per_minute/60 per second.

    A fresh bucket starts full. The level may go negative through `debit`, which is how a
    request that used more than it reserved is paid back out of future refill.
    """

    __slots__ = ("_level", "_stamp", "capacity", "rate")

    def __init__(self, per_minute: float, now: float) -> None:
        if per_minute <= 0:
            raise ValueError("a token bucket needs a positive per-minute limit")
        self.capacity = float(per_minute)
        self.rate = self.capacity / 60.0
        self._level = self.capacity
        self._stamp = now

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
            self._stamp = now

    def available(self, now: float) -> float:
        self._refill(now)
        return self._level

    def try_take(self, amount: float, now: float) -> bool:
        self._refill(now)
        if self._level + _EPSILON < amount:
            return False
        self._level -= amount
        return True

    def time_until(self, amount: float, now: float) -> float:
        """Seconds until `amount` is available: 0 if it is now, inf if it exceeds capacity."""
        if amount > self.capacity + _EPSILON:
            return math.inf
        return self.refill_time(amount, now)

    def refill_time(self, amount: float, now: float) -> float:
        """Seconds of refill needed to reach `amount`, even beyond capacity (for estimates)."""
        self._refill(now)
        shortfall = amount - self._level
        return 0.0 if shortfall <= _EPSILON else shortfall / self.rate

    def give_back(self, amount: float, now: float) -> None:
        self._refill(now)
        self._level = min(self.capacity, self._level + amount)

    def debit(self, amount: float, now: float) -> None:
        """Take `amount` unconditionally; the level may go negative."""
        self._refill(now)
        self._level -= amount

    def is_full(self, now: float) -> bool:
        return self.available(now) >= self.capacity - _EPSILON


class _Buckets:
    """The request bucket and token bucket of one scope; an unlimited dimension has none."""

    __slots__ = ("requests", "tokens")

    def __init__(self, limits: Limits, now: float) -> None:
        rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
        self.requests = TokenBucket(rpm, now) if rpm else None
        self.tokens = TokenBucket(tpm, now) if tpm else None

    def wait(self, tokens: int, now: float) -> float:
        wait = 0.0
        if self.requests is not None:
            wait = self.requests.time_until(1, now)
        if self.tokens is not None:
            wait = max(wait, self.tokens.time_until(tokens, now))
        return wait

    def take(self, tokens: int, now: float) -> None:
        # Only called after wait() returned 0, so debit cannot overdraw beyond float noise.
        if self.requests is not None:
            self.requests.debit(1, now)
        if self.tokens is not None:
            self.tokens.debit(tokens, now)

    def give_back(self, requests: int, tokens: int, now: float) -> None:
        if self.requests is not None:
            self.requests.give_back(requests, now)
        if self.tokens is not None:
            self.tokens.give_back(tokens, now)

    def adjust_tokens(self, delta: int, now: float) -> None:
        if self.tokens is None:
            return
        if delta < 0:
            self.tokens.give_back(-delta, now)
        else:
            self.tokens.debit(delta, now)

    def is_full(self, now: float) -> bool:
        return all(b is None or b.is_full(now) for b in (self.requests, self.tokens))


class _UserState:
    __slots__ = ("buckets", "last_seen", "last_served", "name", "queue")

    def __init__(self, name: str, buckets: _Buckets, now: float) -> None:
        self.name = name
        self.buckets = buckets
        self.last_seen = now
        self.queue: deque[_Waiter] = deque()
        # Admission sequence number of this user's latest grant; -1 puts users who have not
        # been served (or were forgotten while idle) first in the round-robin.
        self.last_served = -1


@dataclass(slots=True, eq=False)
class _Waiter:
    state: _UserState
    tokens: int
    arrived_at: float
    deadline: float
    arrival: int
    future: asyncio.Future[Grant]
    queued: bool = False


def _turn_key(state: _UserState) -> tuple[int, int]:
    return (state.last_served, state.queue[0].arrival)


def _format_wait(seconds: float) -> str:
    whole = max(1, math.ceil(seconds))
    return f"{whole} s" if whole < 120 else f"{math.ceil(seconds / 60)} min"


class FairRateLimiter:
    """Admits model requests within per-user and global limits, queueing fairly when over.

    Waiters are kept per user (FIFO within a user). Whenever capacity frees up, the user
    served least recently goes first, so a user with one queued request is admitted at the
    next opportunity rather than after another user's backlog. A user held back only by its
    own limit is skipped, never holding up others. The first user in turn that is held back
    by the global limit does hold everyone after it, so large requests are not starved by a
    stream of small ones.
    """

    def __init__(
        self,
        *,
        global_limits: Limits,
        user_limits: Limits,
        max_queue: int = 64,
        max_queue_per_user: int | None = None,
        max_users: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_queue < 0 or max_users < 1:
            raise ValueError("max_queue must be >= 0 and max_users >= 1")
        if max_queue_per_user is not None and max_queue_per_user < 0:
            raise ValueError("max_queue_per_user must be >= 0")
        self.global_limits = global_limits
        self.user_limits = user_limits
        self._max_queue = max_queue
        self._max_queue_per_user = max_queue_per_user
        self._max_users = max_users
        self._clock = clock
        self._global = _Buckets(global_limits, clock())
        # Ordered by last acquire, oldest first, so idle users are found at the front.
        self._users: OrderedDict[str, _UserState] = OrderedDict()
        self._waiting: dict[str, _UserState] = {}
        self._queued = 0
        self._arrivals = count()
        self._admissions = count()
        self._admitted = 0
        self._refused = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    # --- public API -----------------------------------------------------------------------

    async def acquire(self, user: str, tokens: int, deadline_s: float = 30.0) -> Grant:
        """Wait until `user` may send a request of about `tokens` tokens, then debit it.

        Raises `RateLimited` if that cannot happen within `deadline_s` seconds (0 means do not
        wait), at once if the queue is full, and at once if `tokens` exceeds a whole bucket.
        """
        if tokens < 0:
            raise ValueError("tokens must be >= 0")
        loop = self._loop = asyncio.get_running_loop()
        self._refuse_if_never_fits(tokens)
        now = self._clock()
        self._forget_idle_users(now)
        state = self._touch_user(user, now)
        waiter = _Waiter(
            state=state,
            tokens=tokens,
            arrived_at=now,
            deadline=now + max(deadline_s, 0.0),
            arrival=next(self._arrivals),
            future=loop.create_future(),
        )
        # Even an idle limiter goes through the queue, so a newcomer can never overtake
        # waiters whose turn it is; with nobody waiting the dispatch admits it right here.
        self._enqueue(waiter)
        self._dispatch()
        if not waiter.future.done():
            refusal = self._refusal_when_full(waiter, now)
            if refusal is not None:
                self._remove(waiter)
                # The newcomer may have been first in turn, holding everyone after it.
                self._dispatch()
                self._refused += 1
                raise refusal
        try:
            return await waiter.future
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise

    def settle(self, grant: Grant, actual_tokens: int) -> None:
        """Replace the grant's token estimate with `actual_tokens` in both token buckets.

        Using fewer tokens refunds the difference (never above capacity) and may admit waiters
        at once; using more debits it, possibly below zero, so the excess is paid back before
        the same user (and, globally, anyone) is admitted again. Requests are not refunded.
        Settling a grant twice does nothing the second time.
        """
        if actual_tokens < 0:
            raise ValueError("actual_tokens must be >= 0")
        if grant.settled:
            return
        grant.settled = True
        delta = actual_tokens - grant.tokens
        if delta == 0:
            return
        now = self._clock()
        # Gone if forgotten meanwhile (full and idle for a minute): a refund is moot then, and
        # a debit on a request that ran that long is forgiven.
        state = self._users.get(grant.user)
        if state is not None:
            state.buckets.adjust_tokens(delta, now)
        self._global.adjust_tokens(delta, now)
        if delta < 0:
            self._dispatch()

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state for the health endpoint."""
        now = self._clock()

        def view(bucket: TokenBucket | None, per_minute: int) -> dict[str, float] | None:
            if bucket is None:
                return None
            return {"per_minute": per_minute, "available": round(bucket.available(now), 1)}

        limits = self.global_limits
        return {
            "queued": self._queued,
            "queued_users": len(self._waiting),
            "max_queue": self._max_queue,
            "tracked_users": len(self._users),
            "admitted": self._admitted,
            "refused": self._refused,
            "global": {
                "requests": view(self._global.requests, limits.requests_per_minute),
                "tokens": view(self._global.tokens, limits.tokens_per_minute),
            },
        }

    # --- users ----------------------------------------------------------------------------

    def _touch_user(self, user: str, now: float) -> _UserState:
        state = self._users.get(user)
        if state is not None:
            self._users.move_to_end(user)
            state.last_seen = now
            return state
        if len(self._users) >= self._max_users:
            excess = len(self._users) - self._max_users + 1
            # Over the cap, idle users go even if still refilling: forgiving a little debt
            # beats unbounded memory. Users with waiters must stay, their queue lives here.
            idle = (name for name, s in self._users.items() if not s.queue)
            for name in list(islice(idle, excess)):
                del self._users[name]
        state = self._users[user] = _UserState(user, _Buckets(self.user_limits, now), now)
        return state

    def _forget_idle_users(self, now: float) -> None:
        # A full bucket is indistinguishable from a fresh one, so dropping it loses nothing
        # but the turn. Users are ordered by last acquire, so stopping at the first one seen
        # recently or still refilling keeps this O(dropped) per call.
        doomed = []
        for name, state in self._users.items():
            if state.queue:
                continue
            if now - state.last_seen < _FORGET_AFTER_IDLE_S or not state.buckets.is_full(now):
                break
            doomed.append(name)
        for name in doomed:
            del self._users[name]

    # --- queue ----------------------------------------------------------------------------

    def _enqueue(self, waiter: _Waiter) -> None:
        state = waiter.state
        state.queue.append(waiter)
        waiter.queued = True
        self._waiting[state.name] = state
        self._queued += 1

    def _remove(self, waiter: _Waiter) -> None:
        state = waiter.state
        if state.queue[0] is waiter:
            state.queue.popleft()
        else:
            state.queue.remove(waiter)
        waiter.queued = False
        self._queued -= 1
        if not state.queue:
            del self._waiting[state.name]

    def _abandon(self, waiter: _Waiter) -> None:
        """Undo a cancelled acquire: leave the queue, or return a grant nobody received."""
        future = waiter.future
        if waiter.queued:
            self._remove(waiter)
        elif future.done() and not future.cancelled() and future.exception() is None:
            # Admitted in the same loop iteration the caller was cancelled: the grant was
            # debited but will never be settled, so give it all back.
            grant = future.result()
            grant.settled = True
            now = self._clock()
            state = self._users.get(grant.user)
            if state is not None:
                state.buckets.give_back(1, grant.tokens, now)
            self._global.give_back(1, grant.tokens, now)
            self._admitted -= 1
        else:
            return
        self._dispatch()

    # --- dispatch -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Admit every waiter whose turn it is, expire the overdue, and re-arm the one timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._queued:
            return
        now = self._clock()
        blocker = self._admit_ready(now)
        if self._expire(now):
            blocker = self._admit_ready(now)
        self._arm_timer(now, blocker)

    def _admit_ready(self, now: float) -> _UserState | None:
        """Serve users least recently served first; return the one held by the global limit."""
        order = sorted(self._waiting.values(), key=_turn_key)
        i = 0
        while i < len(order):
            state = order[i]
            head = state.queue[0]
            if head.future.done():
                # Cancelled, and its acquire has not resumed to clean up yet; the user keeps
                # its turn for the next request in its queue.
                self._remove(head)
                if not state.queue:
                    del order[i]
                continue
            if state.buckets.wait(head.tokens, now) > 0:
                i += 1
                continue
            if self._global.wait(head.tokens, now) > 0:
                return state
            self._admit(head, now)
            # Just served, this user now has the latest turn: it moves to the end.
            del order[i]
            if state.queue:
                order.append(state)
        return None

    def _admit(self, waiter: _Waiter, now: float) -> None:
        self._remove(waiter)
        state = waiter.state
        state.buckets.take(waiter.tokens, now)
        self._global.take(waiter.tokens, now)
        state.last_served = next(self._admissions)
        self._admitted += 1
        waiter.future.set_result(
            Grant(user=state.name, tokens=waiter.tokens, waited_s=now - waiter.arrived_at)
        )

    def _expire(self, now: float) -> bool:
        overdue = [w for s in self._waiting.values() for w in s.queue if w.deadline <= now]
        # Estimate while everyone is still queued: the position of each waiter matters.
        refusals = [self._refusal_for(w, now) for w in overdue]
        for waiter, refusal in zip(overdue, refusals, strict=True):
            self._remove(waiter)
            if not waiter.future.done():
                waiter.future.set_exception(refusal)
                self._refused += 1
        return bool(overdue)

    def _arm_timer(self, now: float, blocker: _UserState | None) -> None:
        # Wake for the earliest of: a user-blocked head reaching its own refill, the head
        # first in turn reaching the global refill, or any deadline. Users waiting behind the
        # global blocker need no timer: they move when it does, which dispatches again.
        wake = math.inf
        for state in self._waiting.values():
            own = state.buckets.wait(state.queue[0].tokens, now)
            if own > 0:
                wake = min(wake, own)
            wake = min(wake, min(w.deadline for w in state.queue) - now)
        if blocker is not None:
            wake = min(wake, self._global.wait(blocker.queue[0].tokens, now))
        if math.isfinite(wake) and self._loop is not None:
            self._timer = self._loop.call_later(max(wake, _MIN_SLEEP_S), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()

    # --- refusals -------------------------------------------------------------------------

    def _refuse_if_never_fits(self, tokens: int) -> None:
        user_cap = self.user_limits.tokens_per_minute
        if user_cap and tokens > user_cap:
            raise RateLimited(
                _NEVER_FITS_RETRY_AFTER_S,
                "user",
                f"This request needs about {tokens:,} tokens, more than your limit of "
                f"{user_cap:,} tokens per minute; shorten the question or attach less "
                "context and send it again.",
                retryable=False,
            )
        global_cap = self.global_limits.tokens_per_minute
        if global_cap and tokens > global_cap:
            raise RateLimited(
                _NEVER_FITS_RETRY_AFTER_S,
                "global",
                f"This request needs about {tokens:,} tokens, more than RubberDuck allows "
                f"for everyone ({global_cap:,} tokens per minute); shorten the question or "
                "attach less context and send it again.",
                retryable=False,
            )

    def _refusal_when_full(self, waiter: _Waiter, now: float) -> RateLimited | None:
        state = waiter.state
        # The newcomer is already counted, hence ">".
        if self._queued > self._max_queue:
            others = [s for s in self._waiting.values() if s is not state or len(s.queue) > 1]
            retry = self._next_departure_s(others, now)
            return RateLimited(
                retry,
                "global",
                f"RubberDuck is busy for everyone right now ({self._queued - 1} requests "
                f"already waiting); try again in {_format_wait(retry)}.",
            )
        cap = self._max_queue_per_user
        if cap is not None and len(state.queue) > cap:
            retry = self._next_departure_s([state], now)
            return RateLimited(
                retry,
                "user",
                f"You already have {len(state.queue) - 1} requests waiting; let them finish "
                f"or try again in {_format_wait(retry)}.",
            )
        return None

    def _next_departure_s(self, states: list[_UserState], now: float) -> float:
        """Seconds until some waiter among `states` is admitted or gives up, freeing a slot."""
        soonest = math.inf
        for state in states:
            head = state.queue[0]
            soonest = min(
                soonest,
                max(state.buckets.wait(head.tokens, now), self._global.wait(head.tokens, now)),
                min(w.deadline for w in state.queue) - now,
            )
        return max(soonest if math.isfinite(soonest) else 1.0, _MIN_RETRY_AFTER_S)

    def _refusal_for(self, waiter: _Waiter, now: float) -> RateLimited:
        """Estimate when `waiter` could be admitted and say which limit is in the way."""
        state = waiter.state
        position = state.queue.index(waiter)
        own = list(islice(state.queue, position + 1))
        # Each turn of the round-robin admits about one request per queued user, so roughly
        # this many of every other user's requests are admitted before this one.
        ahead = own + [
            w
            for s in self._waiting.values()
            if s is not state
            for w in islice(s.queue, position + 1)
        ]
        user_scope = self._scope_wait(state.buckets, self.user_limits, own, now)
        global_scope = self._scope_wait(self._global, self.global_limits, ahead, now)
        if user_scope[0] > 0 and user_scope[0] >= global_scope[0]:
            scope: Scope = "user"
            wait, dimension, per_minute = user_scope
        else:
            scope = "global"
            wait, dimension, per_minute = global_scope
        retry = max(wait, _MIN_RETRY_AFTER_S)
        when = _format_wait(retry)
        if scope == "user":
            message = (
                f"You have reached your limit of {per_minute:,} {dimension} per minute; "
                f"try again in {when}."
            )
        elif per_minute:
            message = (
                f"RubberDuck is busy for everyone right now ({per_minute:,} {dimension} per "
                f"minute); try again in {when}."
            )
        else:
            message = f"RubberDuck is busy for everyone right now; try again in {when}."
        return RateLimited(retry, scope, message)

    @staticmethod
    def _scope_wait(
        buckets: _Buckets, limits: Limits, waiters: list[_Waiter], now: float
    ) -> tuple[float, str, int]:
        """Refill time for `waiters` in one scope, with the dimension that takes longest."""
        best = (0.0, "requests", 0)
        if buckets.requests is not None:
            wait = buckets.requests.refill_time(len(waiters), now)
            best = (wait, "requests", limits.requests_per_minute)
        if buckets.tokens is not None:
            wait = buckets.tokens.refill_time(sum(w.tokens for w in waiters), now)
            if wait > best[0] or buckets.requests is None:
                best = (wait, "tokens", limits.tokens_per_minute)
        return best
