"""The sidebar's turns in flight, with their outgoing frames, so a dropped WebSocket resumes.

A turn's task no longer belongs to the socket that asked for it: it lives here, per user,
and the socket is only its current *sink*. Every frame the turn emits gets ``n`` (1, 2, ...
per turn), is kept, and goes to the sink if one is attached. When the socket closes, the
turn runs on detached for ``grace_s``; a new socket of the same user sends
``resume {id, after}`` and gets every kept frame with ``n > after``, then the live ones.
Replay and attach happen in one synchronous step on the event loop, so no frame can slip
between them: each frame reaches the client exactly once (the client also drops an ``n``
it has seen, for frames that crossed the drop). A turn nobody resumes within the grace
period is cancelled, as a closed socket's turn was before; a finished turn's frames are
kept for ``grace_s`` after its end, since its last frames may have been lost in the drop.

Per-user buffers: a resume looks only in its own user's turns, so another user's id is
simply unknown (the same answer as a turn that is gone, so existence does not leak).

Bounded memory, per user: at most ``max_turns`` turns, ``max_frames`` frames and
``max_bytes`` bytes of serialized frames are kept. An answer of 4,000 tokens streams about
4,000 chunk frames of ~80 bytes (~320 KiB), so the defaults (8 turns, 20,000 frames, 4 MiB)
keep a few long answers of one user whole. Past a limit the oldest finished turn goes
first, then the oldest frames of the oldest turn; a resume that needs a dropped frame gets
``resume_unavailable``, never a gap. A detached running turn evicted for the turn limit is
cancelled (nobody could ever see it again); an attached one is never evicted, it is already
bounded by the per-socket turn limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# Sends one serialized frame to a socket; False when that socket is gone.
Sink = Callable[[str], bool]
Emit = Callable[[dict[str, Any]], Awaitable[None]]
Runner = Callable[[Emit], Coroutine[Any, Any, None]]


class TurnRunning(Exception):
    """A turn with this id is running for this user."""


class ResumeRefused(Exception):
    """The turn, or a frame the resume needs, is no longer kept."""


@dataclass(frozen=True)
class ReplayLimits:
    grace_s: float = 60.0
    max_frames: int = 20_000
    max_bytes: int = 4 * 1024 * 1024
    max_turns: int = 8


@dataclass(eq=False)
class LiveTurn:
    user: str
    id: str
    task: asyncio.Task[None] | None = None
    # (n, serialized frame), oldest first; n runs without gaps from `first_n`.
    frames: deque[tuple[int, str]] = field(default_factory=deque)
    first_n: int = 1
    last_n: int = 0
    bytes: int = 0
    finished: bool = False  # its done or error was emitted (or its task ended)
    evicted: bool = False
    owner: object | None = None  # the socket handler the frames go to now
    sink: Sink | None = None
    timer: asyncio.TimerHandle | None = None


class _UserTurns:
    def __init__(self) -> None:
        self.turns: OrderedDict[str, LiveTurn] = OrderedDict()
        self.frames = 0
        self.bytes = 0


class ReplayHub:
    """Every user's live and recently finished WebSocket turns (see the module docstring)."""

    def __init__(self, limits: ReplayLimits | None = None) -> None:
        self.limits = limits or ReplayLimits()
        self._users: dict[str, _UserTurns] = {}
        self._closing = False

    # --- lookups ----------------------------------------------------------------------

    def get(self, user: str, turn_id: str) -> LiveTurn | None:
        users = self._users.get(user)
        return None if users is None else users.turns.get(turn_id)

    def running(self, user: str, turn_id: str) -> LiveTurn | None:
        turn = self.get(user, turn_id)
        return turn if turn is not None and not turn.finished else None

    def attached_running(self, owner: object) -> int:
        """Turns streaming to `owner` now (its per-socket limit counts these)."""
        return sum(
            1
            for users in self._users.values()
            for t in users.turns.values()
            if t.owner is owner and not t.finished
        )

    def snapshot(self) -> dict[str, int]:
        turns = [t for u in self._users.values() for t in u.turns.values()]
        return {
            "turns": len(turns),
            "running": sum(1 for t in turns if not t.finished),
            "detached": sum(1 for t in turns if not t.finished and t.sink is None),
            "frames": sum(u.frames for u in self._users.values()),
            "bytes": sum(u.bytes for u in self._users.values()),
        }

    # --- turns ------------------------------------------------------------------------

    def start(self, user: str, turn_id: str, run: Runner, owner: object, sink: Sink) -> LiveTurn:
        """Runs `run(emit)` as the turn `turn_id`, its frames going to `sink`.

        Raises TurnRunning if this user already runs a turn with that id; a finished one
        with the id is forgotten (its frames were for a resume that can no longer need
        them: the client has reused the id)."""
        users = self._users.setdefault(user, _UserTurns())
        old = users.turns.get(turn_id)
        if old is not None:
            if not old.finished:
                raise TurnRunning(turn_id)
            self._drop(users, old)
        self._make_room(users)
        # Dropping a user's last turn forgets the user: register again.
        users = self._users.setdefault(user, users)
        turn = LiveTurn(user=user, id=turn_id, owner=owner, sink=sink)
        users.turns[turn_id] = turn

        async def emit(frame: dict[str, Any]) -> None:
            self._emit(turn, frame)

        turn.task = asyncio.get_running_loop().create_task(run(emit))
        # A done callback, not a `finally`: it also runs for a task cancelled before its
        # first step.
        turn.task.add_done_callback(lambda _: self._finished(turn))
        return turn

    def _finished(self, turn: LiveTurn) -> None:
        turn.finished = True
        self._cancel_timer(turn)
        if not turn.evicted and not self._closing:
            # Kept a while after its end: its last frames may be what the drop lost.
            turn.timer = asyncio.get_running_loop().call_later(
                self.limits.grace_s, self._expire_finished, turn
            )

    def _emit(self, turn: LiveTurn, frame: dict[str, Any]) -> None:
        if frame.get("type") in ("done", "error"):
            # Over for the client from its last frame on, though the task may still be
            # saving the answer: the id is free again and a cancel finds nothing to stop.
            turn.finished = True
        turn.last_n += 1
        text = json.dumps({**frame, "n": turn.last_n})
        users = self._users.get(turn.user)
        if not turn.evicted and users is not None:
            turn.frames.append((turn.last_n, text))
            turn.bytes += len(text)
            users.frames += 1
            users.bytes += len(text)
            self._trim(users, turn)
        if turn.sink is not None and not turn.sink(text):
            self._detach_turn(turn)

    def cancel(self, user: str, turn_id: str) -> bool:
        turn = self.running(user, turn_id)
        if turn is None or turn.task is None:
            return False
        turn.task.cancel()
        return True

    # --- sockets ----------------------------------------------------------------------

    def resume(self, user: str, turn_id: str, after: int, owner: object, sink: Sink) -> LiveTurn:
        """Sends `user`'s kept frames of `turn_id` with n > `after` to `sink`, then attaches
        it to the turn if the turn still runs. Raises ResumeRefused when the turn or a
        needed frame is gone, ValueError when `after` is past the turn's last frame."""
        turn = self.get(user, turn_id)
        if turn is None:
            raise ResumeRefused(turn_id)
        if after > turn.last_n:
            raise ValueError(f"'after' is {after} but the turn's last frame is {turn.last_n}")
        first_kept = turn.frames[0][0] if turn.frames else turn.last_n + 1
        if turn.evicted or after + 1 < first_kept:
            raise ResumeRefused(turn_id)
        for n, text in turn.frames:
            if n > after and not sink(text):
                return turn  # this socket is gone too; the turn stays as it was
        if not turn.finished:
            self._cancel_timer(turn)
            turn.owner, turn.sink = owner, sink
        return turn

    def detach(self, owner: object) -> None:
        """`owner`'s socket closed: its running turns go on, for the grace period."""
        for users in list(self._users.values()):
            for turn in list(users.turns.values()):
                if turn.owner is owner:
                    self._detach_turn(turn)

    def _detach_turn(self, turn: LiveTurn) -> None:
        turn.owner = turn.sink = None
        if turn.finished or turn.evicted or self._closing:
            return
        self._cancel_timer(turn)
        turn.timer = asyncio.get_running_loop().call_later(
            self.limits.grace_s, self._expire_detached, turn
        )

    def _expire_detached(self, turn: LiveTurn) -> None:
        turn.timer = None
        if turn.sink is None and not turn.finished and turn.task is not None:
            log.info("RubberDuck: nobody resumed turn %r in time; stopping it", turn.id)
            turn.task.cancel()  # it ends with done(cancelled), kept like any other frame

    def _expire_finished(self, turn: LiveTurn) -> None:
        turn.timer = None
        users = self._users.get(turn.user)
        if users is not None and users.turns.get(turn.id) is turn:
            self._drop(users, turn)

    # --- limits -----------------------------------------------------------------------

    def _make_room(self, users: _UserTurns) -> None:
        """Room for one more turn: the oldest finished turns first, then the oldest
        detached running ones (cancelled: no socket will ever see them)."""
        while len(users.turns) >= self.limits.max_turns:
            victim = next((t for t in users.turns.values() if t.finished), None)
            if victim is None:
                victim = next((t for t in users.turns.values() if t.sink is None), None)
                if victim is None:
                    return  # all stream to open sockets; the per-socket limit bounds them
                if victim.task is not None:
                    victim.task.cancel()
            self._drop(users, victim)

    def _trim(self, users: _UserTurns, current: LiveTurn) -> None:
        """Under the frame and byte limits again: other finished turns go whole first,
        then the oldest frames of the oldest turns (`current`, just appended to, keeps
        its newest frames at least)."""
        limits = self.limits
        while users.frames > limits.max_frames or users.bytes > limits.max_bytes:
            finished = next(
                (t for t in users.turns.values() if t.finished and t.frames and t is not current),
                None,
            )
            if finished is not None:
                self._drop(users, finished)
                continue
            oldest = next((t for t in users.turns.values() if t.frames), None)
            if oldest is None:
                return
            _, text = oldest.frames.popleft()
            oldest.bytes -= len(text)
            users.frames -= 1
            users.bytes -= len(text)

    def _drop(self, users: _UserTurns, turn: LiveTurn) -> None:
        self._cancel_timer(turn)
        users.turns.pop(turn.id, None)
        users.frames -= len(turn.frames)
        users.bytes -= turn.bytes
        turn.frames.clear()
        turn.bytes = 0
        turn.evicted = True
        if not users.turns:
            self._users.pop(turn.user, None)

    @staticmethod
    def _cancel_timer(turn: LiveTurn) -> None:
        if turn.timer is not None:
            turn.timer.cancel()
            turn.timer = None

    # --- stop -------------------------------------------------------------------------

    async def close(self, grace_s: float = 5.0) -> None:
        """Server stop: every running turn is cancelled (it records its answer so far)."""
        self._closing = True
        tasks = []
        for users in self._users.values():
            for turn in users.turns.values():
                self._cancel_timer(turn)
                if turn.task is not None and not turn.task.done():
                    turn.task.cancel()
                    tasks.append(turn.task)
        if tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait(tasks, timeout=grace_s)
        self._users.clear()
