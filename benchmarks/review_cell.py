"""Review on the cell: how fast static findings come back.

    python benchmarks/review_cell.py [--rounds 30]

1. One 50-line cell through `POST /rubberduck/api/review/cell` of a real `jupyter server`
   (a subprocess on 127.0.0.1, no model configured: static review needs none), against
   the same review in process (`review_cell`, the baseline): the ratio is what the
   REST round trip (HTTP, auth, JSON, the thread hop) adds. Target: under 150 ms.
2. A 100-cell notebook's static pass, as the front end runs it (one request per code cell,
   in order, each with the cells above), against the in-process pass over the same cells.
   Target: under 3 s. The cells are the first 100 code cells of the pdsh notebooks in
   /work/shared/corpora/pdsh (or --corpus), read at run time.

Medians of `--rounds` (cell) and of 3 passes (notebook); rounds of REST and in-process
alternate so the machine's load falls on both arms alike.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rubberduck_jupyter.review.cellfix import review_cell  # noqa: E402

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


def rest_review(base: str, source: str, above: list[str]) -> dict[str, object]:
    request = urllib.request.Request(
        f"{base}/rubberduck/api/review/cell",
        data=json.dumps({"source": source, "above": above}).encode(),
        method="POST",
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def timed(function: object, *args: object) -> float:
    started = time.perf_counter()
    function(*args)  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--corpus", type=Path, default=Path("/work/shared/corpora/pdsh"))
    parser.add_argument("--cells", type=int, default=100)
    args = parser.parse_args()

    cell = fifty_line_cell()
    notebook = corpus_cells(args.corpus, args.cells)
    with tempfile.TemporaryDirectory(prefix="rd-review-bench-") as tmp:
        server, base = start_server(Path(tmp))
        try:
            rest_review(base, "x = 1", [])  # warm: the first request imports and starts ruff
            review_cell("x = 1")
            local, remote = [], []
            for _ in range(args.rounds):
                local.append(timed(lambda: review_cell(cell)))
                remote.append(timed(rest_review, base, cell, []))
            findings = len(rest_review(base, cell, [])["findings"])  # type: ignore[arg-type]

            def local_pass() -> None:
                for n, source in enumerate(notebook):
                    review_cell(source, above=notebook[:n])

            def remote_pass() -> None:
                for n, source in enumerate(notebook):
                    rest_review(base, source, notebook[:n])

            nb_local, nb_remote = [], []
            for _ in range(3):
                nb_local.append(timed(local_pass))
                nb_remote.append(timed(remote_pass))
        finally:
            server.terminate()
            server.wait(timeout=15)

    cell_local = statistics.median(local) * 1000
    cell_remote = statistics.median(remote) * 1000
    pass_local = statistics.median(nb_local)
    pass_remote = statistics.median(nb_remote)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d')}"
    )
    print(f"50-line cell ({findings} findings), median of {args.rounds}:")
    print(
        f"  in process {cell_local:.1f} ms, REST {cell_remote:.1f} ms, "
        f"ratio {cell_remote / cell_local:.3f}; target < {CELL_TARGET_MS:.0f} ms: "
        f"{'met' if cell_remote < CELL_TARGET_MS else 'MISSED'}"
    )
    print(f"{len(notebook)}-cell notebook static pass (pdsh cells), median of 3:")
    print(
        f"  in process {pass_local:.2f} s, REST {pass_remote:.2f} s, "
        f"ratio {pass_remote / pass_local:.3f}; target < {NOTEBOOK_TARGET_S:.0f} s: "
        f"{'met' if pass_remote < NOTEBOOK_TARGET_S else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
