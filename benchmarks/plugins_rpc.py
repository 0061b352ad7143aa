"""What isolation costs per call: a no-op command and a no-op hook through the worker RPC,
against the same plugin loaded in-process, both through `PluginRegistry` and its guard.

    python benchmarks/plugins_rpc.py [--calls 2000]

The plugin is tests/plugin_fixtures/untrusted/noop.py (`/noop` returns None, an async
`post_response` returns None). Calls alternate in-process / isolated one by one so both see
the same machine state; each call's wall time is measured, p50 and p95 printed, and the
ratio of the medians. The goal for the RPC is under 2 ms p50.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rubberduck_jupyter.plugins import CommandContext, PluginRegistry  # noqa: E402
from rubberduck_jupyter.plugins.discovery import folder_candidates  # noqa: E402
from rubberduck_jupyter.plugins.isolation import (  # noqa: E402
    PluginSupervisor,
    PluginTarget,
    admit_isolated,
)

FIXTURES = ROOT / "tests" / "plugin_fixtures" / "untrusted"


class NoServices:
    """The no-op command never touches ctx; a CommandContext still needs a Services."""


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


async def main(calls: int) -> None:
    local = PluginRegistry()
    cand = next(c for c in folder_candidates(FIXTURES) if c.name == "noop")
    assert local.admit(cand).state == "loaded"
    remote = PluginRegistry()
    sup = PluginSupervisor(PluginTarget.from_path(FIXTURES / "noop.py"))
    assert (await admit_isolated(remote, sup)).state == "loaded", sup.reason
    ctx = CommandContext(plugin="noop", permissions=frozenset(), services=NoServices())  # type: ignore[arg-type]
    try:
        for label, call in (
            ("command /noop", lambda reg: reg.run_command("noop", ctx, [])),
            ("hook post_response", lambda reg: reg.hooks.post_response("x", {"k": 1})),
        ):
            for reg in (local, remote):  # warm up
                for _ in range(50):
                    await call(reg)
            times: dict[str, list[float]] = {"in-process": [], "isolated": []}
            for _ in range(calls):
                for name, reg in (("in-process", local), ("isolated", remote)):
                    started = time.perf_counter()
                    await call(reg)
                    times[name].append(time.perf_counter() - started)
            a, b = times["in-process"], times["isolated"]
            ma, mb = statistics.median(a), statistics.median(b)
            print(
                f"{label}: in-process p50 {ma * 1e6:.1f} us, p95 {pct(a, 95) * 1e6:.1f} us; "
                f"isolated p50 {mb * 1e6:.1f} us, p95 {pct(b, 95) * 1e6:.1f} us; "
                f"ratio {mb / ma:.1f}x ({calls} calls each)"
            )
        health = sup.health()
        print(f"  worker: {health['calls']} calls, {health['rpc_errors']} rpc errors")
    finally:
        await sup.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    opts = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}")
    asyncio.run(main(opts.calls))
