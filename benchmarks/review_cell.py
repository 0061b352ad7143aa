"""Review on the cell: how fast static findings come back.

    python benchmarks/review_cell.py [--rounds 30] [--passes 3] [--cells 100]

1. One 50-line cell through `POST /rubberduck/api/review/cell` of a real `jupyter server`
   (a subprocess on 127.0.0.1, no model configured: static review needs none), against
   the same review in process (`review_cell`, the baseline): the ratio is what the
   REST round trip (HTTP, auth, JSON, the thread hop) adds. Target: under 150 ms.
2. A 100-cell notebook's static pass, two ways, in the same process and server:
   - old: as the front end ran it until now, one `POST /review/cell` per code cell, in
     order, each with the cells above, then one `POST /review/notebook` for the cross-cell
     findings;
   - new: one `POST /review/notebook` with `"static": true` (review/batch.py), which
     answers both.
   Each is also timed in process (the old: `review_cell` per cell + `analyze_notebook`;
   the new: `review_notebook`). Target: the REST pass under 3 s. The cells are the first
   100 code cells of the pdsh notebooks in /work/shared/corpora/pdsh (or --corpus), read
   at run time; the new path's findings are checked equal to the old path's.

Medians of `--rounds` (cell) and of `--passes` passes (notebook); the arms alternate so the
machine's load falls on all of them alike. The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rubberduck_jupyter.review.batch import review_notebook  # noqa: E402
from rubberduck_jupyter.review.cellfix import review_cell  # noqa: E402
from rubberduck_jupyter.review.notebook import NotebookCell, analyze_notebook  # noqa: E402

TOKEN = "review-bench"
CELL_TARGET_MS = 150.0
NOTEBOOK_TARGET_S = 3.0


def fifty_line_cell() -> str:
    """A realistic cell: imports, a helper, a loop, some pandas-like calls, a few bugs."""
    lines = [
        "import os",
        "import json",
        "from collections import defaultdict",
        "",
        "def load(path, cache={}):",
        "    if path in cache:",
        "        return cache[path]",
        "    with open(path) as handle:",
        "        rows = [json.loads(line) for line in handle]",
        "    cache[path] = rows",
        "    return rows",
        "",
    ]
    n = 0
    while len(lines) < 48:
        lines += [
            f"totals_{n} = defaultdict(int)",
            f"for row in load('data_{n}.jsonl'):",
            f"    totals_{n}[row['key']] += row.get('value', 0)",
            f"ordered_{n} = sorted(totals_{n}.items())",
            f"ordered_{n} = ordered_{n}.sort()",
            f"print(f'{{len(totals_{n})}} keys')",
        ]
        n += 1
    lines = [*lines[:48], "summary = {k: v for k, v in totals_0.items()}", "summary"]
    assert len(lines) == 50
    return "\n".join(lines)


def corpus_cells(corpus: Path, count: int) -> list[str]:
    cells: list[str] = []
    for path in sorted(corpus.glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        for cell in notebook.get("cells", []):
            if cell.get("cell_type") == "code":
                source = cell.get("source", "")
                cells.append("".join(source) if isinstance(source, list) else source)
                if len(cells) == count:
                    return cells
    raise SystemExit(f"only {len(cells)} code cells in {corpus}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    (workdir / "root").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUBBERDUCK_")}
    env.update(
        {
            "JUPYTER_CONFIG_DIR": str(workdir / "config"),
            "JUPYTER_DATA_DIR": str(workdir / "data"),
            "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
        }
    )
    command = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={workdir / 'root'}",
        "--ServerApp.jpserver_extensions={'rubberduck_jupyter': True}",
        "--RubberDuckApp.index_watch=False",
    ]
    log = (workdir / "server.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError((workdir / "server.log").read_text()[-3000:])
        try:
            request = urllib.request.Request(
                f"{base}/api/status", headers={"Authorization": f"token {TOKEN}"}
            )
            with urllib.request.urlopen(request, timeout=1):
                return server, base
        except OSError:
            time.sleep(0.05)
    server.terminate()
    raise RuntimeError("server did not start within 60 s")


def post(base: str, what: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base}/rubberduck/api/review/{what}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def rest_review(base: str, source: str, above: list[str]) -> dict[str, Any]:
    return post(base, "cell", {"source": source, "above": above})


def timed(function: object, *args: object) -> float:
    started = time.perf_counter()
    function(*args)  # type: ignore[operator]
    return time.perf_counter() - started


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=Path("/work/shared/corpora/pdsh"))
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument(
        "--slice", type=int, default=25, help="cells per request of the sliced new pass"
    )
    args = parser.parse_args()

    load_before = load()
    cell = fifty_line_cell()
    notebook = corpus_cells(args.corpus, args.cells)
    cells = [NotebookCell(n, source) for n, source in enumerate(notebook)]
    wire_cells = [{"index": n, "source": source} for n, source in enumerate(notebook)]
    with tempfile.TemporaryDirectory(prefix="rd-review-bench-") as tmp:
        server, base = start_server(Path(tmp))
        try:
            rest_review(base, "x = 1", [])  # warm: the first request imports and starts ruff
            post(base, "notebook", {"cells": wire_cells[:2], "static": True})
            review_cell("x = 1")
            local, remote = [], []
            for _ in range(args.rounds):
                local.append(timed(lambda: review_cell(cell)))
                remote.append(timed(rest_review, base, cell, []))
            findings = len(rest_review(base, cell, [])["findings"])

            def old_local() -> None:
                for n, source in enumerate(notebook):
                    review_cell(source, above=notebook[:n])
                analyze_notebook(cells)

            def old_remote() -> tuple[list[Any], Any]:
                out = [rest_review(base, source, notebook[:n]) for n, source in enumerate(notebook)]
                return out, post(base, "notebook", {"cells": wire_cells})["findings"]

            def new_local() -> None:
                review_notebook(cells)

            def new_remote() -> dict[str, Any]:
                return post(base, "notebook", {"cells": wire_cells, "static": True})

            def sliced_remote() -> list[Any]:
                # What a front end with progress and Cancel between slices would send.
                out: list[Any] = []
                for start in range(0, len(wire_cells), args.slice):
                    stop = min(start + args.slice, len(wire_cells))
                    body = {
                        "cells": wire_cells,
                        "static": {"start": start, "stop": stop},
                        "cross_cell": stop == len(wire_cells),  # once, with the last slice
                    }
                    out += post(base, "notebook", body)["static"]
                return out

            # The new path must answer what the old one did, or its speed means nothing.
            old_cells, old_cross = old_remote()
            new: Any = new_remote()
            assert new["findings"] == old_cross
            assert [e["findings"] for e in new["static"]] == [c["findings"] for c in old_cells]
            n_findings = sum(len(e["findings"]) for e in new["static"])
            assert sliced_remote() == new["static"]

            arms: dict[str, list[float]] = {k: [] for k in ("ol", "or", "nl", "nr", "ns")}
            for _ in range(args.passes):
                arms["ol"].append(timed(old_local))
                arms["or"].append(timed(old_remote))
                arms["nl"].append(timed(new_local))
                arms["nr"].append(timed(new_remote))
                arms["ns"].append(timed(sliced_remote))
        finally:
            server.terminate()
            server.wait(timeout=15)

    cell_local = statistics.median(local) * 1000
    cell_remote = statistics.median(remote) * 1000
    med = {k: statistics.median(v) for k, v in arms.items()}
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d')}; "
        f"load average (1/5/15 min) before {load_before}, after {load()}"
    )
    print(f"50-line cell ({findings} findings), median of {args.rounds}:")
    print(
        f"  in process {cell_local:.1f} ms, REST {cell_remote:.1f} ms, "
        f"ratio {cell_remote / cell_local:.3f}; target < {CELL_TARGET_MS:.0f} ms: "
        f"{'met' if cell_remote < CELL_TARGET_MS else 'MISSED'}"
    )
    print(
        f"{len(notebook)}-cell notebook static pass + cross-cell findings (pdsh cells, "
        f"{n_findings} static findings, equal on both paths), median of {args.passes}:"
    )
    print(f"  old, a request per cell: in process {med['ol']:.3f} s, REST {med['or']:.3f} s")
    print(f"  new, one request:        in process {med['nl']:.3f} s, REST {med['nr']:.3f} s")
    n_slices = -(-len(notebook) // args.slice)
    print(f"  new, {n_slices} requests of {args.slice} cells: REST {med['ns']:.3f} s")
    print(
        f"  REST old / new {med['or'] / med['nr']:.1f}x, in process old / new "
        f"{med['ol'] / med['nl']:.1f}x; target < {NOTEBOOK_TARGET_S:.0f} s through REST: "
        f"new {'met' if med['nr'] < NOTEBOOK_TARGET_S else 'MISSED'}, "
        f"old {'met' if med['or'] < NOTEBOOK_TARGET_S else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
