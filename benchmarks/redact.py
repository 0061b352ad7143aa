"""What redaction costs, and whether it stays linear.

    python benchmarks/redact.py [--rounds 5]

1. Throughput on real text: the source of every cell of the pdsh notebooks
   (../shared/corpora/pdsh, ~725k characters), redacted whole by `redact()`, against the
   baseline of detect-secrets scanning the same text the way it is built to, line by line
   with all its default plugins (`scan_line`), in the same process. Both find secrets; only
   ours also rewrites the text. Ratio < 1 means ours is faster.
2. Recall on the test corpus (tests/security/secret_corpus.py): planted shapes found by
   ours vs by detect-secrets' default plugins, and clean texts left alone.
3. The finding of issue 9: one long URL-ish word. The old password-in-URL pattern (kept
   here as the baseline) against today's redact() at growing lengths; a linear cost grows
   4x for 4x the length, the old one ~16x.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "security"))
PDSH = ROOT.parent / "shared" / "corpora" / "pdsh"

# The pattern issue 9 found quadratic (what redact() ran before), as the baseline of part 3.
OLD_URL_CREDENTIALS = re.compile(r"([a-z][a-z0-9+.\-]*://[^\s:/@]+:)([^\s@/]+)(@)", re.IGNORECASE)


def pdsh_text() -> str:
    parts = []
    for path in sorted(PDSH.glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        parts.extend("".join(cell["source"]) for cell in notebook["cells"])
    return "\n".join(parts)


def detect_secrets_scan(text: str) -> int:
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import default_settings

    found = 0
    with default_settings():
        for line in text.splitlines():
            found += sum(1 for _ in scan_line(line))
    return found


def timed(fn, *args) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from secret_corpus import CLEAN, PLANTED

    from rubberduck_jupyter.context.redact import redact

    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")
    text = pdsh_text()
    redact("warm up", [])
    detect_secrets_scan("warm up")
    ours, theirs = [], []
    for _ in range(args.rounds):  # interleaved, so load on the machine hits both alike
        ours.append(timed(redact, text, []))
        theirs.append(timed(detect_secrets_scan, text))
    o, t = statistics.median(ours), statistics.median(theirs)
    print(f"1. pdsh cell sources, {len(text):,} characters, median of {args.rounds}:")
    print(f"   redact():                      {o * 1e3:8.1f} ms  ({len(text) / o / 1e6:.1f} MB/s)")
    print(f"   detect-secrets scan_line (all): {t * 1e3:8.1f} ms  ({len(text) / t / 1e6:.1f} MB/s)")
    print(f"   ratio ours / detect-secrets:    {o / t:.3f}")

    ours_found = sum(secret not in redact(case, []) for _, case, secret in PLANTED)
    theirs_found = sum(detect_secrets_scan(case) > 0 for _, case, _ in PLANTED)
    clean_kept = sum(redact(case, []) == case for case in CLEAN)
    clean_flagged = sum(detect_secrets_scan(case) > 0 for case in CLEAN)
    print(f"2. corpus: {len(PLANTED)} planted, {len(CLEAN)} clean")
    print(f"   redact() removed {ours_found}/{len(PLANTED)}, left {clean_kept}/{len(CLEAN)} clean")
    print(
        f"   detect-secrets flagged {theirs_found}/{len(PLANTED)} planted "
        f"and {clean_flagged}/{len(CLEAN)} clean"
    )

    print("3. one long word 'postgres://aaaa...':")
    for size in (2_000, 4_000, 8_000):
        word = "postgres://" + "a" * size
        old = timed(lambda w: OLD_URL_CREDENTIALS.sub("", w), word)
        new = timed(redact, word, [])
        print(f"   {size:6,} chars: old pattern {old * 1e3:8.1f} ms, redact() {new * 1e3:6.2f} ms")
    for size in (20_000, 80_000, 320_000):
        word = "postgres://" + "a" * size
        print(f"   {size:6,} chars: redact() {timed(redact, word, []) * 1e3:6.2f} ms")


if __name__ == "__main__":
    main()
