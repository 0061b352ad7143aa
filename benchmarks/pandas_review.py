"""The bundled pandas-review hook on real notebooks, against parsing the same cells.

    python benchmarks/pandas_review.py [--corpus ../shared/corpora/pdsh] [--passes 3]

Every code cell of every notebook in the corpus (read at run time, nothing copied) goes
through `analysis_augment(source, [], {"kind": "cell"})`, the sync hook a cell review
calls. The baseline, in the same run, is `ast.parse` of the same cells (IPython lines
masked the same way): the least any ast-based check must pay. Printed: the best pass of
each, their ratio, the hook's per-cell p50/p99/max (the guard's sync budget is 0.25 s a
call), and the findings per code.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rubberduck_jupyter.contrib import pandas_review

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "pdsh"


def code_cells(corpus: Path) -> tuple[int, list[str]]:
    notebooks = sorted(corpus.glob("**/*.ipynb"))
    cells = []
    for path in notebooks:
        for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
            if cell.get("cell_type") == "code":
                source = cell.get("source", "")
                cells.append("".join(source) if isinstance(source, list) else source)
    return len(notebooks), cells


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    n_notebooks, cells = code_cells(args.corpus)
    parse_best = hook_best = float("inf")
    per_cell: list[float] = []
    found: list[dict[str, object]] = []
    for _ in range(args.passes):
        started = time.perf_counter()
        for source in cells:
            with contextlib.suppress(SyntaxError, ValueError):
                ast.parse(pandas_review._mask(source))
        parse_best = min(parse_best, time.perf_counter() - started)
        times, found = [], []
        started = time.perf_counter()
        for source in cells:
            t0 = time.perf_counter()
            found.extend(pandas_review.analysis_augment(source, [], {"kind": "cell"}) or [])
            times.append(time.perf_counter() - t0)
        total = time.perf_counter() - started
        if total < hook_best:
            hook_best, per_cell = total, times
    ordered = sorted(per_cell)
    codes = Counter(str(f["code"]) for f in found)
    fixes = Counter(str(f["code"]) for f in found if f.get("replacement"))
    print(f"{n_notebooks} notebooks, {len(cells)} code cells (best of {args.passes})")
    print(
        f"ast.parse alone {parse_best * 1000:.1f} ms, pandas-review hook {hook_best * 1000:.1f}"
        f" ms, ratio {hook_best / parse_best:.2f}"
    )
    print(
        f"hook per cell: p50 {statistics.median(ordered) * 1e6:.0f} us, p99 "
        f"{ordered[int(len(ordered) * 0.99)] * 1e6:.0f} us, max {ordered[-1] * 1e3:.2f} ms"
    )
    print(
        "findings: "
        + (
            ", ".join(f"{c} x{n} ({fixes[c]} with a fix)" for c, n in sorted(codes.items()))
            or "none"
        )
    )


if __name__ == "__main__":
    main()
