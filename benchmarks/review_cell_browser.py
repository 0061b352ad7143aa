"""Review on the cell, as the user sees it: from the click to the findings in the page.

    python benchmarks/review_cell_browser.py [--rounds 15] [--passes 3] [--cells 100]

A real `jupyter lab` subprocess (its own config, data, settings and runtime folders,
JUPYTER_PREFER_ENV_PATH=0, no model configured: static review needs none) and Debian's
chromium driven by Playwright (Playwright's own browser download cannot work here).

1. The 50-line cell of `review_cell.py`: a click on the cell toolbar's review button, then
   the first finding row in the DOM. Both moments are taken in the page (the click event's
   timeStamp, a MutationObserver), so Playwright's own round trips are not counted. The
   baseline is `POST /rubberduck/api/review/cell` of the same cell through REST from this
   process, same server; the ratio is what the front end adds (fetch, parse, render).
2. The "review the whole notebook" command (`rubberduck:review-notebook`) on the first
   100 pdsh code cells: from the command to the summary "Reviewed 100 code cells", against
   the same pass through REST in this process (the front end's way: one request per cell
   with the cells above, then the cross-cell request) and the one-request pass
   (`"static": true`) the front end could use instead.

Medians; the arms alternate per round so load falls on all alike. The load average is
printed before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from review_cell import corpus_cells, fifty_line_cell, load  # noqa: E402

TOKEN = "review-browser-bench"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REVIEW_BUTTON = "Review the active cell: static findings at once, then the model's review"

# Arms a watch in the page: the next click's timeStamp and the first moment a finding row
# exists in the first cell's review widget (both on the page's performance clock).
WATCH_CELL = """() => {
  window.__rd = {click: null, shown: null};
  document.addEventListener('click', e => {
    if (window.__rd.click === null) { window.__rd.click = e.timeStamp; }
  }, {capture: true, once: true});
  const sel = '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .jp-RubberDuck-finding';
  const obs = new MutationObserver(() => {
    if (document.querySelector(sel)) { window.__rd.shown = performance.now(); obs.disconnect(); }
  });
  obs.observe(document.body, {subtree: true, childList: true});
}"""
# Runs the notebook review and resolves with the ms until its summary says it is done.
RUN_NOTEBOOK = """(total) => new Promise(resolve => {
  const done = `Reviewed ${total} code cell`;
  const started = performance.now();
  const obs = new MutationObserver(() => {
    for (const el of document.querySelectorAll('.jp-RubberDuck-notebookReview-title')) {
      if (el.textContent.startsWith(done)) {
        obs.disconnect();
        resolve(performance.now() - started);
        return;
      }
    }
  });
  obs.observe(document.body, {subtree: true, childList: true, characterData: true});
  window.jupyterapp.commands.execute('rubberduck:review-notebook');
})"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_lab(base: Path, labextension: Path | None = None) -> Iterator[str]:
    """A `jupyter lab` as tests/browser/conftest.py starts one; yields its base URL.

    `labextension`: a built front end to serve instead of the installed one (its data dir
    comes first), e.g. a prototype of a front-end change built outside the repository."""
    root = base / "root"
    root.mkdir()
    if labextension is not None:
        extensions = base / "data" / "labextensions"
        extensions.mkdir(parents=True)
        (extensions / "rubberduck-jupyter").symlink_to(labextension, target_is_directory=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUBBERDUCK_")}
    env.update(
        {
            "JUPYTER_CONFIG_DIR": str(base / "config"),
            "JUPYTER_DATA_DIR": str(base / "data"),
            "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
            "JUPYTER_PREFER_ENV_PATH": "0",
            "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
        }
    )
    notification = base / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    log_path = base / "lab.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={TOKEN}",
                f"--ServerApp.root_dir={root}",
                "--allow-root",
                "--LabApp.expose_app_in_browser=True",
                "--RubberDuckApp.index_watch=False",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + 90
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"jupyter lab exited: {log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(
                        urllib.request.Request(
                            url + "api/status", headers={"Authorization": f"token {TOKEN}"}
                        ),
                        timeout=2,
                    ):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("jupyter lab did not start within 90 s") from None
                    time.sleep(0.25)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def post(url: str, what: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}rubberduck/api/review/{what}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def timed(function: Any, *args: Any) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def write_notebook(path: Path, sources: list[str]) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, path)


def open_notebook(page: Any, url: str, name: str, n_cells: int) -> Any:
    workspace = name.replace(".", "-")
    page.goto(f"{url}lab/workspaces/{workspace}/tree/{name}?token={TOKEN}")
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
    # Every cell's model is there once the last cell widget exists (windowed notebooks
    # create cell widgets for all cells, attached or not).
    page.wait_for_function(
        "n => window.jupyterapp.shell.currentWidget?.content?.widgets?.length === n", arg=n_cells
    )
    notebook.locator(".jp-Cell").first.wait_for()
    return notebook


def cell_round(page: Any, notebook: Any) -> float:
    """ms from the click on the review button to the first finding row in the DOM."""
    cell = notebook.locator(".jp-Cell").first
    dismiss = cell.get_by_role("button", name="Dismiss this review")
    if dismiss.count():
        dismiss.click()
        cell.locator(".jp-RubberDuck-cellReview").wait_for(state="detached")
    cell.locator(".jp-InputPrompt").click()
    button = cell.locator(".jp-cell-toolbar").get_by_title(REVIEW_BUTTON)
    button.wait_for()
    page.evaluate(WATCH_CELL)
    button.click()
    page.wait_for_function("() => window.__rd.shown !== null && window.__rd.click !== null")
    timing = page.evaluate("() => window.__rd")
    return float(timing["shown"] - timing["click"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=Path("/work/shared/corpora/pdsh"))
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument(
        "--labextension",
        type=Path,
        default=None,
        help="a built front end to serve instead of the installed one",
    )
    parser.add_argument("--slice", type=int, default=25, help="cells per sliced request")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    load_before = load()
    cell = fifty_line_cell()
    sources = corpus_cells(args.corpus, args.cells)
    wire = [{"index": n, "source": s} for n, s in enumerate(sources)]
    with tempfile.TemporaryDirectory(prefix="rd-review-browser-") as tmp:
        base = Path(tmp)
        with running_lab(base, args.labextension) as url, sync_playwright() as playwright:
            write_notebook(base / "root" / "cell.ipynb", [cell])
            write_notebook(base / "root" / "notebook.ipynb", sources)
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
                page.set_default_timeout(120_000)
                post(url, "cell", {"source": "x = 1"})  # warm: imports, ruff's first start
                notebook = open_notebook(page, url, "cell.ipynb", 1)
                cell_round(page, notebook)  # warm the page's code paths too
                browser_ms, rest_ms = [], []
                for _ in range(args.rounds):
                    browser_ms.append(cell_round(page, notebook))
                    rest_ms.append(timed(post, url, "cell", {"source": cell}) * 1000)
                n_findings = len(post(url, "cell", {"source": cell})["findings"])

                def old_rest() -> None:
                    for n, source in enumerate(sources):
                        post(url, "cell", {"source": source, "above": sources[:n]})
                    post(url, "notebook", {"cells": wire})

                def new_rest() -> None:
                    post(url, "notebook", {"cells": wire, "static": True})

                def sliced_rest() -> None:
                    for start in range(0, len(wire), args.slice):
                        stop = min(start + args.slice, len(wire))
                        body = {
                            "cells": wire,
                            "static": {"start": start, "stop": stop},
                            "cross_cell": stop == len(wire),
                        }
                        post(url, "notebook", body)

                pass_browser, pass_old, pass_new, pass_sliced = [], [], [], []
                for _ in range(args.passes):
                    open_notebook(page, url, "notebook.ipynb", len(sources))
                    pass_browser.append(page.evaluate(RUN_NOTEBOOK, len(sources)) / 1000)
                    pass_old.append(timed(old_rest))
                    pass_new.append(timed(new_rest))
                    pass_sliced.append(timed(sliced_rest))
                # Which requests the front end sent for one pass.
                sent: list[str] = []
                page.on(
                    "request",
                    lambda r: sent.append(r.url) if "/rubberduck/api/review/" in r.url else None,
                )
                open_notebook(page, url, "notebook.ipynb", len(sources))
                page.evaluate(RUN_NOTEBOOK, len(sources))
                kinds = {
                    kind: sum(kind in u for u in sent)
                    for kind in ("review/cell", "review/notebook")
                }
            finally:
                browser.close()

    cell_browser, cell_rest = statistics.median(browser_ms), statistics.median(rest_ms)
    nb_browser = statistics.median(pass_browser)
    nb_old, nb_new = statistics.median(pass_old), statistics.median(pass_new)
    nb_sliced = statistics.median(pass_sliced)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d')}; chromium headless; "
        f"load average (1/5/15 min) before {load_before}, after {load()}"
    )
    print(f"50-line cell ({n_findings} findings), median of {args.rounds}:")
    print(
        f"  click -> first finding in the DOM {cell_browser:.1f} ms, REST {cell_rest:.1f} ms, "
        f"ratio {cell_browser / cell_rest:.3f}"
    )
    front_end = "installed" if args.labextension is None else str(args.labextension)
    print(
        f"{len(sources)}-cell notebook review (pdsh cells), median of {args.passes}; "
        f"front end: {front_end}, which sent {kinds['review/cell']} review/cell and "
        f"{kinds['review/notebook']} review/notebook requests a pass:"
    )
    print(f"  browser, command -> summary {nb_browser:.2f} s")
    print(
        f"  REST in this process: a request per cell {nb_old:.2f} s (browser / this "
        f"{nb_browser / nb_old:.3f}); one request {nb_new:.3f} s (browser / this "
        f"{nb_browser / nb_new:.1f}); {-(-len(wire) // args.slice)} slices of {args.slice} "
        f"{nb_sliced:.3f} s (browser / this {nb_browser / nb_sliced:.1f})"
    )


if __name__ == "__main__":
    main()
