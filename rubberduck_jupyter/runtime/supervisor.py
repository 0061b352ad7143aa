"""A one-for-one supervisor for the server's long-lived asyncio tasks (the OTP idea).

Each child is a coroutine function registered by name with a restart policy:
`permanent` children are restarted whatever ended them; `transient` ones only after a
crash, and a normal return ends them (`done`). A crash restarts only that child, after an
exponential, jittered backoff; more than `max_restarts` crashes within `period_s` seconds
mark it `failed`: it stays down and the last error is logged once. `stop()` cancels every
child and waits for them, bounded.

Children come in two kinds:
- named (the Ollama probe, the index refresh): one record per name, shown one by one in
  health and /metrics. Starting a name again after it ended reuses the record, so its
  restart count is cumulative over the process.
- grouped (the conversation actors): many short-lived children under one group name,
  shown only as counts per state and cumulative restarts/failures. Per-child names would
  be user names and conversation ids (other users' data in health) and an unbounded label
  set in Prometheus. A group child's record goes away when it ends.

Why a child per actor rather than actors reporting their own crashes: the wrapper task
the supervisor runs *is* the actor's drain loop (the factory is awaited inside it, not in
another task), so a child costs one small record and no extra task: 200 actors started,
given a job each and stopped took ~7-9 ms (~40 µs each) and 1.3 KiB each more than
unsupervised ones (benchmarks/supervision.py, docs/benchmarks.md). The restart logic
then lives in one place for every kind of task.

What is not an asyncio task is reported, not run: `report(name, snapshot)` adds a child
whose state comes from a callable (the index watcher's thread restarts itself with its
own backoff; health shows it in the same shape).

Error messages in snapshots pass through `scrub` (app.py injects the redactor) and are
cut to `MAX_ERROR_CHARS`; group children keep only the exception's type.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)

# The first restart comes quickly: a conversation actor has a user waiting on its mailbox,
# and a crash that repeats at once still costs only ~10 wake-ups a second.
BASE_BACKOFF_S = 0.1
# A child that keeps crashing is retried at least twice a minute until intensity trips.
MAX_BACKOFF_S = 30.0
# More than 5 crashes within 60 s: with the backoff above that is a child crashing as soon
# as it starts (0.1 + 0.2 + 0.4 + 0.8 + 1.6 s of backoff), not one crashing now and then,
# which a supervisor should keep restarting (OTP's default is 1 in 5 s, without backoff).
MAX_RESTARTS = 5
PERIOD_S = 60.0
# Bounded wait for children to end at stop(), so a server stop never hangs.
STOP_TIMEOUT_S = 10.0
MAX_ERROR_CHARS = 200

Factory = Callable[[], Coroutine[Any, Any, Any]]


class Restart(StrEnum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"


class ChildState(StrEnum):
    RUNNING = "running"
    BACKING_OFF = "backing_off"
    FAILED = "failed"
    STOPPED = "stopped"
    DONE = "done"


ENDED = frozenset({ChildState.FAILED, ChildState.STOPPED, ChildState.DONE})


@dataclass(frozen=True)
class Policy:
    """Backoff and restart intensity; tests inject tiny values."""

    base_backoff_s: float = BASE_BACKOFF_S
    max_backoff_s: float = MAX_BACKOFF_S
    max_restarts: int = MAX_RESTARTS
    period_s: float = PERIOD_S


@dataclass(eq=False)  # hashed by identity: group members live in a set
class Child:
    """One supervised task and what health says about it."""

    name: str
    factory: Factory
    restart: Restart
    group: str | None = None
    on_exit: Callable[[Child], None] | None = None
    state: ChildState = ChildState.RUNNING
    restarts: int = 0
    failures: int = 0  # times marked failed (a named child may be started again)
    last_error: str | None = None
    last_error_type: str | None = None
    last_start: float | None = None  # wall-clock time.time() of the last start
    task: asyncio.Task[None] | None = None
    crashes: deque[float] = field(default_factory=deque)  # monotonic times, within period

    @property
    def alive(self) -> bool:
        return self.state not in ENDED

    def done(self) -> bool:
        """The task has ended (lets a Child stand in where a task was checked)."""
        return self.task is None or self.task.done()

    def snapshot(self) -> dict[str, Any]:
        return {
            "state": str(self.state),
            "restart": str(self.restart),
            "restarts": self.restarts,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_start": None if self.last_start is None else round(self.last_start, 3),
        }


@dataclass
class _Group:
    restarts: int = 0
    failed: int = 0
    last_error_type: str | None = None
    children: set[Child] = field(default_factory=set)


class Supervisor:
    def __init__(
        self,
        *,
        policy: Policy | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        scrub: Callable[[str], str] | None = None,
    ) -> None:
        self.policy = policy or Policy()
        self._rng = rng or random.Random()
        self._clock = clock
        self._scrub = scrub
        self._named: dict[str, Child] = {}
        self._groups: dict[str, _Group] = {}
        self._reported: dict[str, Callable[[], dict[str, Any]]] = {}
        self._stopping = False

    # --- children -----------------------------------------------------------------------

    def start_child(
        self,
        name: str,
        factory: Factory,
        *,
        restart: Restart = Restart.PERMANENT,
        group: str | None = None,
        on_exit: Callable[[Child], None] | None = None,
    ) -> Child:
        """Runs `factory()` under supervision, now. A named child that is still alive is
        returned as it is; one that ended starts again keeping its restart count.
        `on_exit(child)` runs once when the child ends for good (done, failed, stopped)."""
        if self._stopping:
            raise RuntimeError("the supervisor is stopping")
        if group is None:
            child = self._named.get(name)
            if child is not None and child.alive:
                return child
            if child is None:
                child = self._named[name] = Child(name, factory, restart)
            child.factory, child.restart, child.on_exit = factory, restart, on_exit
            child.crashes.clear()
        else:
            child = Child(name, factory, restart, group=group, on_exit=on_exit)
            self._groups.setdefault(group, _Group()).children.add(child)
        child.state = ChildState.RUNNING
        child.task = asyncio.get_running_loop().create_task(
            self._supervise(child), name=f"rubberduck:{group or name}"
        )
        return child

    def child(self, name: str) -> Child | None:
        return self._named.get(name)

    def report(self, name: str, snapshot: Callable[[], dict[str, Any]]) -> None:
        """A child run elsewhere (a thread with its own restarts): `snapshot()` returns the
        same shape as a supervised child's (state, restarts, last_error, last_start)."""
        self._reported[name] = snapshot

    async def stop_child(self, child: Child, grace_s: float = STOP_TIMEOUT_S) -> bool:
        """Cancels one child and waits for it (bounded); True if it ended."""
        task = child.task
        if task is None or task.done():
            return True
        task.cancel()
        await asyncio.wait({task}, timeout=grace_s)
        return task.done()

    async def stop(self, grace_s: float = STOP_TIMEOUT_S) -> None:
        """Cancels every child and waits for them all, at most `grace_s` seconds."""
        self._stopping = True
        children = list(self._named.values())
        for group in self._groups.values():
            children.extend(group.children)
        tasks = {c.task for c in children if c.task is not None and not c.task.done()}
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
            if pending:
                log.warning("RubberDuck: %d supervised task(s) did not stop in time", len(pending))

    # --- the supervision loop -------------------------------------------------------------

    async def _supervise(self, child: Child) -> None:
        try:
            while True:
                child.state = ChildState.RUNNING
                child.last_start = time.time()
                try:
                    await child.factory()
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        child.state = ChildState.STOPPED  # stop() or stop_child()
                        raise
                    # The child cancelled itself (an inner task's cancel leaked): a crash.
                    error: BaseException | None = asyncio.CancelledError("cancelled itself")
                except Exception as exc:
                    error = exc
                else:
                    error = None
                if error is None:
                    if child.restart is Restart.TRANSIENT:
                        child.state = ChildState.DONE
                        return
                    error = None  # a permanent child that returned: restart it, counted
                if not self._may_restart(child, error):
                    return
                child.state = ChildState.BACKING_OFF
                await asyncio.sleep(self._backoff(child))
                child.restarts += 1
                if child.group is not None:
                    self._groups[child.group].restarts += 1
        except asyncio.CancelledError:
            child.state = ChildState.STOPPED
            raise
        finally:
            self._ended(child)

    def _may_restart(self, child: Child, error: BaseException | None) -> bool:
        """Records the crash; False (and the child marked failed) past the intensity."""
        now = self._clock()
        child.crashes.append(now)
        while child.crashes and now - child.crashes[0] > self.policy.period_s:
            child.crashes.popleft()
        if error is not None:
            child.last_error_type = type(error).__name__
            child.last_error = self._describe(error)
            if child.group is not None:
                self._groups[child.group].last_error_type = child.last_error_type
            log.warning(
                "RubberDuck: %s crashed (%s); restarting",
                child.group or child.name,
                child.last_error_type,
                exc_info=(type(error), error, error.__traceback__),
            )
        else:
            log.warning("RubberDuck: %s returned; restarting (permanent)", child.name)
        if len(child.crashes) <= self.policy.max_restarts:
            return True
        child.state = ChildState.FAILED
        child.failures += 1
        if child.group is not None:
            self._groups[child.group].failed += 1
        log.error(
            "RubberDuck: %s crashed %d times within %.0f s and stays down; last error: %s",
            child.group or child.name,
            len(child.crashes),
            self.policy.period_s,
            child.last_error,
        )
        return False

    def _backoff(self, child: Child) -> float:
        """base * 2^(recent crashes - 1), capped, jittered down to half: children that
        crashed together do not all come back in the same tick."""
        recent = max(1, len(child.crashes))
        delay = min(self.policy.max_backoff_s, self.policy.base_backoff_s * 2 ** (recent - 1))
        return delay * self._rng.uniform(0.5, 1.0)

    def _describe(self, error: BaseException) -> str:
        text = f"{type(error).__name__}: {error}"
        if self._scrub is not None:
            with contextlib.suppress(Exception):
                text = self._scrub(text)
        return text[:MAX_ERROR_CHARS]

    def _ended(self, child: Child) -> None:
        if child.group is not None:
            group = self._groups.get(child.group)
            if group is not None:
                group.children.discard(child)
        if child.on_exit is not None:
            try:
                child.on_exit(child)
            except Exception:
                log.exception("RubberDuck: the exit handler of %s failed", child.name)

    # --- health ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Per named or reported child its state; per group the counts by state."""
        children = {name: child.snapshot() for name, child in self._named.items()}
        for name, report in self._reported.items():
            try:
                children[name] = report()
            except Exception as exc:  # health must answer whatever a reporter does
                children[name] = {"state": "unknown", "last_error": type(exc).__name__}
        groups = {}
        for name, group in self._groups.items():
            states = dict.fromkeys((str(s) for s in ChildState if s not in ENDED), 0)
            for child in group.children:
                states[str(child.state)] = states.get(str(child.state), 0) + 1
            groups[name] = {
                "children": len(group.children),
                "states": states,
                "restarts": group.restarts,
                "failed": group.failed,
                "last_error_type": group.last_error_type,
            }
        failed = [n for n, c in children.items() if c.get("state") == ChildState.FAILED]
        return {
            "state": "degraded" if failed else "ok",
            "failed": failed,
            "children": children,
            "groups": groups,
        }
