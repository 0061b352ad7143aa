"""Response times per model: time to first token and total time of each answered stream.

Two bounded views of the same observations, per model:
- a cumulative histogram with fixed buckets (like runtime/loop_lag.py), which /metrics
  exports as a Prometheus histogram: histograms from many user servers on a hub add up
  (`sum by (le)`), summaries' quantiles do not;
- the last `RING_SIZE` values, from which health reports exact p50/p90/p99 of recent
  answers (sorting 512 floats at a health request costs ~40 µs).

Recorded twice per stream (first token, end), never per chunk. The model is the
configured model_name that answered (after failover), so the label set is bounded by the
configuration; `MAX_MODELS` guards against a config swapped many times at run time.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import Any

# Seconds. First tokens of local models come in ~50-500 ms, hosted ones 0.3-3 s; totals
# of long answers run to minutes (request_timeout defaults to 600 s).
BUCKETS_S: tuple[float, ...] = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    math.inf,
)
# Recent answers behind health's percentiles: at a chat a minute, the last ~8 hours.
RING_SIZE = 512
MAX_MODELS = 64
QUANTILES = (0.5, 0.9, 0.99)


class LatencySeries:
    """One kind of duration for one model."""

    def __init__(self) -> None:
        self.counts = [0] * len(BUCKETS_S)
        self.count = 0
        self.sum_s = 0.0
        self.recent: deque[float] = deque(maxlen=RING_SIZE)

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS_S, seconds)] += 1
        self.count += 1
        self.sum_s += seconds
        self.recent.append(seconds)

    def snapshot(self) -> dict[str, Any]:
        ordered = sorted(self.recent)
        out: dict[str, Any] = {f"p{round(q * 100)}_s": _nearest_rank(ordered, q) for q in QUANTILES}
        out.update(
            count=self.count,
            sum_s=round(self.sum_s, 6),
            # "inf" rather than Infinity: JSON has no infinity.
            buckets_s=[b if math.isfinite(b) else "inf" for b in BUCKETS_S],
            counts=list(self.counts),
        )
        return out


def _nearest_rank(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return round(ordered[rank - 1], 4)


class LatencyBoard:
    """Per model: `first_token` and `total` series."""

    def __init__(self) -> None:
        self._models: dict[str, tuple[LatencySeries, LatencySeries]] = {}

    def _series(self, model: str) -> tuple[LatencySeries, LatencySeries] | None:
        pair = self._models.get(model)
        if pair is None:
            if len(self._models) >= MAX_MODELS:
                return None
            pair = self._models[model] = (LatencySeries(), LatencySeries())
        return pair

    def first_token(self, model: str, seconds: float) -> None:
        pair = self._series(model)
        if pair is not None:
            pair[0].observe(seconds)

    def total(self, model: str, seconds: float) -> None:
        pair = self._series(model)
        if pair is not None:
            pair[1].observe(seconds)

    def snapshot(self) -> dict[str, Any]:
        return {
            model: {"time_to_first_token": first.snapshot(), "total": total.snapshot()}
            for model, (first, total) in self._models.items()
        }
