"""Driving a notebook in the browser tests: write one, open it, run a cell, read the cells
back from the notebook model (the DOM may be windowed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat

ANSWER = ".jp-RubberDuck-kernelAnswer"

RUN_CELL = """async index => {
  const panel = window.jupyterapp.shell.currentWidget;
  panel.content.activeCellIndex = index;
  await window.jupyterapp.commands.execute('notebook:run-cell');
}"""
SOURCES = """() => {
  const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
  return Array.from({length: cells.length}, (_, i) => cells.get(i).sharedModel.getSource());
}"""


def fake_model_env(fake: Any) -> dict[str, str]:
    """A lab's environment for answers from the fake provider `fake`."""
    return {
        "RUBBERDUCK_MODEL": "openai/fake-model",
        "RUBBERDUCK_API_BASE": fake.base_url,
        "RUBBERDUCK_API_KEY": "sk-browser-test",
    }


# window.jupyterapp, which the tests drive notebooks, commands and themes through.
EXPOSE_APP = "--LabApp.expose_app_in_browser=True"


def write_notebook(root: Path, name: str, sources: list[str]) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, root / name)


def open_notebook(page: Any, lab: Any, name: str, *, wait_for_kernel: bool = True) -> Any:
    """Opens `name` in a workspace of its own (notebooks of earlier tests are not restored
    beside it); with `wait_for_kernel`, returns once its kernel is idle."""
    workspace = name.replace(".", "-")
    page.goto(f"{lab.url}lab/workspaces/{workspace}/tree/{name}?token={lab.token}")
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
    notebook.locator(".jp-Cell").first.wait_for()
    if not wait_for_kernel:
        return notebook
    # Runs sent before the kernel is up are dropped: wait until the status bar says Idle.
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)
    return notebook


START_CELL = """index => {
  const panel = window.jupyterapp.shell.currentWidget;
  panel.content.activeCellIndex = index;
  void window.jupyterapp.commands.execute('notebook:run-cell');
}"""


def start_cell(page: Any, index: int) -> None:
    """Runs cell `index` without waiting for it to finish (run-cell resolves only then)."""
    page.evaluate(START_CELL, index)


def run_cell(page: Any, notebook: Any, index: int, count: int) -> None:
    """Runs cell `index` and waits until its prompt shows execution count `count`."""
    page.evaluate(RUN_CELL, index)
    prompt = notebook.locator(".jp-Cell").nth(index).locator(".jp-InputPrompt")
    prompt.filter(has_text=f"[{count}]").wait_for(timeout=30_000)


def sources(page: Any) -> list[str]:
    return list(page.evaluate(SOURCES))
