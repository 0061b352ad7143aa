"""The server process's memory, for health and /metrics, with no dependency.

On Linux the resident set comes from `/proc/self/statm` (its second field, in pages):
one small read, ~10 µs, no psutil. Elsewhere (macOS, BSD) the standard library only
offers the peak resident set (`getrusage`), reported as such so nobody reads it as the
current size.
"""

from __future__ import annotations

import os
import sys
from typing import Any

STATM = "/proc/self/statm"


def memory() -> dict[str, Any]:
    """{"rss_bytes": current resident set, or None, "peak_rss_bytes": ..., "source": ...}."""
    rss = _statm_rss()
    return {"rss_bytes": rss, "peak_rss_bytes": _peak_rss(), "source": "statm" if rss else "peak"}


def _statm_rss() -> int | None:
    try:
        with open(STATM, "rb") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _peak_rss() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Kilobytes on Linux and the BSDs, bytes on macOS.
    return int(peak if sys.platform == "darwin" else peak * 1024)
