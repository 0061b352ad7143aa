"""Where an answer is shown while it streams: in place in the cell's output, or as text.

`RichOutput` publishes one display (`display_id`) and updates it, at most `MAX_RATE` times
a second: a model streaming 200 chunks a second must not send the front end 200 re-renders
of a growing answer. The last state is always published at once, so the cell ends showing
the whole answer. `PlainOutput` is for a terminal `ipython`: the text as it comes, on stdout.

`follow` drives either from a `ChatStream` on the kernel's main thread, waking when a frame
arrives or a held-back update falls due, and staying interruptible (Ctrl-C, the notebook's
stop button) the whole time.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from .answer import ERROR, AnswerState
from .client import ChatStream, DuckError

MAX_RATE = 20  # display updates per second while streaming (docs/benchmarks.md)
MIN_INTERVAL_S = 1.0 / MAX_RATE
# With nothing due, how long to wait for a frame before looking again: short enough that
# an interrupt is seen at once on platforms where a blocked wait is not interruptible.
IDLE_WAIT_S = 0.5


class Output(Protocol):
    def start(self) -> None: ...
    def changed(self, now: float) -> None: ...
    def due_in(self, now: float) -> float | None: ...
    def tick(self, now: float) -> None: ...
    def finish(self) -> None: ...


class RichOutput:
    """The answer as one display, updated in place (`update_display_data`)."""

    def __init__(
        self,
        state: AnswerState,
        *,
        publish: Callable[[dict[str, Any], str, bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.display_id = f"rubberduck-{uuid.uuid4().hex}"
        self._publish = publish or _ipython_publish
        self._clock = clock
        self._last = float("-inf")
        self._dirty = False
        self.updates = 0  # update_display_data messages sent (not counting the first)

    def start(self) -> None:
        self._publish(self.state.bundle(), self.display_id, False)
        self._last = self._clock()

    def changed(self, now: float) -> None:
        self._dirty = True
        self.tick(now)

    def due_in(self, now: float) -> float | None:
        if not self._dirty:
            return None
        return max(0.0, self._last + MIN_INTERVAL_S - now)

    def tick(self, now: float) -> None:
        if self._dirty and now - self._last >= MIN_INTERVAL_S:
            self._flush(now)

    def finish(self) -> None:
        self._flush(self._clock())

    def _flush(self, now: float) -> None:
        self._publish(self.state.bundle(), self.display_id, True)
        self.updates += 1
        self._last = now
        self._dirty = False


def _ipython_publish(bundle: dict[str, Any], display_id: str, update: bool) -> None:
    from IPython.display import display, update_display

    if update:
        update_display(bundle, raw=True, display_id=display_id)
    else:
        display(bundle, raw=True, display_id=display_id)


class PlainOutput:
    """Text for a terminal: the answer on stdout as it arrives; everything else on stderr."""

    def __init__(self, state: AnswerState, *, out: Any = None, err: Any = None) -> None:
        self.state = state
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self._written = 0
        self._steps_told: set[str] = set()
        self._notices_told = 0
        self._suggestions_told = 0

    def start(self) -> None:
        if self.state.title:
            self._err.write(self.state.title + "\n")

    def changed(self, now: float) -> None:
        state = self.state
        for step in state.steps:
            if step.step not in self._steps_told:
                self._steps_told.add(step.step)
                self._err.write(f"[{step.title}…]\n")
        for notice in state.notices[self._notices_told :]:
            self._err.write(f"RubberDuck: {notice['message']}\n")
        self._notices_told = len(state.notices)
        if len(state.markdown) > self._written:
            self._out.write(state.markdown[self._written :])
            self._written = len(state.markdown)
            self._out.flush()
        for suggestion in state.suggestions[self._suggestions_told :]:
            title = suggestion.get("title") or "a change"
            self._err.write(f"\n[suggestion {suggestion.get('id')}: {title}; `%duck apply`]\n")
        self._suggestions_told = len(state.suggestions)

    def due_in(self, now: float) -> float | None:
        return None

    def tick(self, now: float) -> None:
        return None

    def finish(self) -> None:
        self.changed(0.0)
        state = self.state
        if self._written:
            self._out.write("\n")
            self._out.flush()
        if state.citations:
            from .answer import _citation_line

            self._err.write(
                "Sources: " + "; ".join(_citation_line(c, plain=True) for c in state.citations)
            )
            self._err.write("\n")
        if state.status == ERROR and state.error:
            self._err.write(f"RubberDuck: {state.error['message']}\n")
        elif state.status == "stopped":
            self._err.write("[stopped]\n")


def follow(
    stream: ChatStream,
    state: AnswerState,
    output: Output,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Shows `stream`'s frames through `output` until the turn ends, fails or is stopped."""
    output.start()
    stream.start()
    try:
        while not state.finished:
            due = output.due_in(clock())
            try:
                frame = stream.next(IDLE_WAIT_S if due is None else due)
            except StopIteration:
                break
            if frame is None:
                output.tick(clock())
            elif state.apply(frame):
                output.changed(clock())
        if not state.finished:
            state.fail(
                "incomplete",
                "The server closed the answer before it ended; what arrived is shown, and "
                "`%duck history` has what was saved.",
            )
    except KeyboardInterrupt:
        # Closing the response makes the server stop the model call.
        state.stop()
    except DuckError as exc:
        state.fail("connection", str(exc))
    finally:
        stream.close()
        output.finish()
