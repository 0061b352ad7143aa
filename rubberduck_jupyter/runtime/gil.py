"""Lets the event loop win the GIL back quickly from busy worker threads.

The loop thread gives up the GIL at every system call (each WebSocket frame it sends,
each select) and must wait to get it back. While a worker thread runs Python code (an
index pass: chunking, BM25 stemming, nbformat validation; litellm's import; its logging
workers), CPython hands the GIL over only when the holder reaches its switch interval,
5 ms by default. A loop doing hundreds of short system calls per second then waits 5 ms
after many of them: measured with py-spy during an index pass, the loop spent ~25% of
its samples in `socket.send` returning, and sampled loop lag reached 0.2-1 s with 8 users.

A 1 ms interval cuts each such wait to at most ~1 ms; the cost is more GIL hand-overs
between worker threads, which the load benchmark (benchmarks/load.py) measures as part
of the index pass's time. `RUBBERDUCK_SWITCH_INTERVAL_MS` overrides it (0: keep Python's).
"""

from __future__ import annotations

import os
import sys

SWITCH_INTERVAL_ENV = "RUBBERDUCK_SWITCH_INTERVAL_MS"
DEFAULT_SWITCH_INTERVAL_S = 0.001


def favour_event_loop() -> float:
    """Shortens the interpreter's switch interval (never lengthens it); returns the new one."""
    interval = DEFAULT_SWITCH_INTERVAL_S
    raw = os.environ.get(SWITCH_INTERVAL_ENV, "").strip()
    if raw:
        try:
            interval = float(raw) / 1000
        except ValueError:
            interval = DEFAULT_SWITCH_INTERVAL_S
    current = sys.getswitchinterval()
    if 0 < interval < current:
        sys.setswitchinterval(interval)
    return sys.getswitchinterval()
