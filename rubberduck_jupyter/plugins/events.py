"""An in-process event bus: typed events, ordered per subscriber, bounded, never blocking.

Publishers (the watcher, the session store, engines, the registry) call `publish(event)`,
a plain function that only appends to each matching subscriber's queue and returns: it never
awaits, so a publisher inside a chat turn cannot be slowed down by a subscriber.

Each subscriber has its own bounded queue and its own worker task, which delivers events in
publication order, one at a time. That gives the two guarantees subscribers rely on:

- ordered delivery per subscriber (no two events to one subscriber ever run concurrently);
- isolation: a slow, hanging or failing subscriber only delays its own queue. A handler that
  raises is counted and the next event is delivered; one that runs longer than
  `handler_timeout_s` is cancelled, counted, and the next event is delivered.

Overflow policy: drop-OLDEST. When a subscriber's queue is full the oldest undelivered event
is discarded and counted in `stats()`. Chosen because every event here describes recent
state (a file changed, the index was updated, a plugin's state changed): a subscriber that
has fallen behind is better served by the latest events than by a backlog it will act on
too late, and the publisher must never be the one who waits.

Must be used from the event loop's thread (from another thread, use
`loop.call_soon_threadsafe(bus.publish, event)`).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger(__name__)

# 256 events is minutes of normal traffic (one per saved file, stored message, answer) and a
# few KB of memory per subscriber; a subscriber further behind than that is not keeping up.
DEFAULT_QUEUE_SIZE = 256
# A subscriber that needs more than 5 s for one event blocks its own later events that long.
DEFAULT_HANDLER_TIMEOUT_S = 5.0


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event; `at` is the publication time (time.time())."""

    at: float = field(default_factory=time.time)


@dataclass(frozen=True, kw_only=True)
class FileChanged(Event):
    root: str
    path: str
    change: Literal["added", "modified", "deleted"]


@dataclass(frozen=True, kw_only=True)
class MessageStored(Event):
    user: str
    conversation_id: str
    message_id: str
    role: str


@dataclass(frozen=True, kw_only=True)
class AnswerDone(Event):
    user: str
    conversation_id: str
    message_id: str
    engine: str


@dataclass(frozen=True, kw_only=True)
class AnalysisDone(Event):
    path: str
    findings: int


@dataclass(frozen=True, kw_only=True)
class IndexUpdated(Event):
    root: str
    files: int
    chunks: int


@dataclass(frozen=True, kw_only=True)
class PluginStateChanged(Event):
    name: str
    state: str
    reason: str = ""


Handler = Callable[[Any], Awaitable[None] | None]


@dataclass
class _Subscriber:
    name: str
    handler: Handler
    types: tuple[type[Event], ...]
    maxsize: int
    queue: deque[Event] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Set while the queue is empty and no handler runs; `join` waits on it.
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    delivered: int = 0
    dropped: int = 0
    failed: int = 0
    timeouts: int = 0
    last_error: str = ""


class Subscription:
    """Returned by `subscribe`; `cancel()` stops delivery to that subscriber."""

    def __init__(self, bus: EventBus, name: str) -> None:
        self._bus = bus
        self.name = name

    def cancel(self) -> None:
        self._bus.unsubscribe(self.name)


class EventBus:
    """Typed publish/subscribe on one event loop; see the module docstring for guarantees."""

    def __init__(self, *, handler_timeout_s: float = DEFAULT_HANDLER_TIMEOUT_S) -> None:
        self.handler_timeout_s = handler_timeout_s
        self._subs: dict[str, _Subscriber] = {}
        self._published = 0
        self._ids = itertools.count(1)

    def subscribe(
        self,
        handler: Handler,
        *,
        types: tuple[type[Event], ...] = (Event,),
        name: str | None = None,
        maxsize: int = DEFAULT_QUEUE_SIZE,
    ) -> Subscription:
        """Deliver events of `types` to `handler` (async preferred) from its own worker task.

        Must be called with a running event loop. A sync handler runs on the loop thread and
        must be quick; it cannot be timed out.
        """
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        name = name or f"{getattr(handler, '__qualname__', 'subscriber')}#{next(self._ids)}"
        if name in self._subs:
            raise ValueError(f"a subscriber named {name!r} exists; pass another name=")
        sub = _Subscriber(name=name, handler=handler, types=types, maxsize=maxsize)
        sub.task = asyncio.get_running_loop().create_task(self._run(sub), name=f"bus:{name}")
        self._subs[name] = sub
        return Subscription(self, name)

    def unsubscribe(self, name: str) -> None:
        sub = self._subs.pop(name, None)
        if sub is not None and sub.task is not None:
            sub.task.cancel()

    def publish(self, event: Event) -> None:
        """Queue `event` for every matching subscriber; never waits, never raises for them."""
        if not isinstance(event, Event):
            raise TypeError(f"publish() takes an Event, not {type(event).__name__}")
        self._published += 1
        for sub in self._subs.values():
            if not isinstance(event, sub.types):
                continue
            if len(sub.queue) >= sub.maxsize:
                sub.queue.popleft()
                sub.dropped += 1
            sub.queue.append(event)
            sub.idle.clear()
            sub.wakeup.set()

    async def _run(self, sub: _Subscriber) -> None:
        while True:
            if not sub.queue:
                sub.idle.set()
                sub.wakeup.clear()
                await sub.wakeup.wait()
                continue
            await self._deliver(sub, sub.queue.popleft())

    async def _deliver(self, sub: _Subscriber, event: Event) -> None:
        try:
            result = sub.handler(event)
            if inspect.isawaitable(result):
                async with asyncio.timeout(self.handler_timeout_s):
                    await result
            sub.delivered += 1
        except TimeoutError:
            sub.timeouts += 1
            sub.failed += 1
            sub.last_error = f"timed out after {self.handler_timeout_s:g} s"
            log.warning("event subscriber %r: %s", sub.name, sub.last_error)
        except Exception as exc:
            sub.failed += 1
            sub.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("event subscriber %r failed on %s: %s", sub.name, event, exc)

    async def join(self, timeout_s: float = 5.0) -> None:
        """Wait until every queue is empty and no handler is running (tests, shutdown)."""
        async with asyncio.timeout(timeout_s):
            for sub in list(self._subs.values()):
                await sub.idle.wait()

    async def aclose(self) -> None:
        """Stop every worker; undelivered events are discarded."""
        tasks = [s.task for s in self._subs.values() if s.task is not None]
        self._subs.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stats(self) -> dict[str, Any]:
        """Counters for a health endpoint: per subscriber delivered/dropped/failed/queued."""
        return {
            "published": self._published,
            "subscribers": {
                s.name: {
                    "delivered": s.delivered,
                    "dropped": s.dropped,
                    "failed": s.failed,
                    "timeouts": s.timeouts,
                    "queued": len(s.queue),
                    "maxsize": s.maxsize,
                    "last_error": s.last_error,
                }
                for s in self._subs.values()
            },
        }


# Attribute `@on_event` leaves on a plugin's handler, so the server can find it.
ON_EVENT_ATTR = "__rubberduck_events__"


def on_event(*types: type[Event]) -> Callable[[Any], Any]:
    """Mark a plugin's module-level `async def handler(event)` for events of `types`.

    The server subscribes it while the plugin is loaded (one queue per handler, named
    `plugin:function`, with the bus's ordering, bound and timeout) and unsubscribes it when
    the plugin is disabled, reloaded or removed. In-process plugins only.
    """
    if not types or not all(isinstance(t, type) and issubclass(t, Event) for t in types):
        raise TypeError("on_event() takes event classes, e.g. @on_event(IndexUpdated)")

    def mark(handler: Any) -> Any:
        setattr(handler, ON_EVENT_ATTR, tuple(types))
        return handler

    return mark


def event_handlers(module: object) -> list[tuple[str, Any, tuple[type[Event], ...]]]:
    """(function name, handler, types) for each `@on_event` function of a plugin module."""
    out = []
    for name, value in vars(module).items():
        types = getattr(value, ON_EVENT_ATTR, None) if callable(value) else None
        if isinstance(types, tuple):
            out.append((name, value, types))
    return out
