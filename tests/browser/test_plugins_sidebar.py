"""Plugins in a real JupyterLab: a plugin's command in the `/` list, its Markdown-cell
suggestion applied to the open notebook, a failing plugin turned off with a notice while
chat goes on, and a plugin dropped into the folder showing up without a reload."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = pytest.mark.browser

MESSAGES = '.jp-RubberDuck-message[data-role="assistant"]'

NOTES = """
from rubberduck_jupyter.plugins import command, plugin

spec = plugin(name="notes", version="1.0", api=">=1,<2", permissions=["propose_edits"])

@command("notes", help="Describe the active cell in a Markdown cell")
async def notes(ctx):
    await ctx.say("A note for this cell:")
    await ctx.suggest("## What this does\\n\\nIt adds **one**.", title="Describe the cell",
                      mode="insert_markdown_after")
"""

FLAKY = """
from rubberduck_jupyter.plugins import hookimpl, plugin

spec = plugin(name="flaky", version="0.3", api=">=1,<2")

@hookimpl
def post_response(text):
    raise RuntimeError("lost its database")
"""

EXTRA = """
from rubberduck_jupyter.plugins import command, plugin

spec = plugin(name="extra", version="2.1", api=">=1,<2")

@command("extra", help="Arrived while the lab was running")
async def extra(ctx):
    return "extra here"
"""


@pytest.fixture(scope="module")
def plugins_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plugins")
    (folder / "notes.py").write_text(textwrap.dedent(NOTES))
    (folder / "flaky.py").write_text(textwrap.dedent(FLAKY))
    return folder


@pytest.fixture(scope="module")
def lab_server(fake_llm_server: Any, start_lab: Any, plugins_dir: Path) -> Any:
    return start_lab(
        {
            "RUBBERDUCK_MODEL": "openai/fake-model",
            "RUBBERDUCK_API_BASE": fake_llm_server.base_url,
            "RUBBERDUCK_API_KEY": "sk-browser-test",
        },
        [f"--RubberDuckApp.plugins_dir={plugins_dir}", "--LabApp.expose_app_in_browser=True"],
    )


def open_notebook(page: Any, lab: Any, name: str, sources: list[str]) -> Any:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, lab.root / name)
    page.goto(f"{lab.url}lab/workspaces/{name.replace('.', '-')}/tree/{name}?token={lab.token}")
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    cells = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")
    cells.first.wait_for()
    return cells


def ask(panel: Any, text: str) -> Any:
    count = panel.locator(MESSAGES).count()
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill(text)
    box.press("Enter")
    answer = panel.locator(MESSAGES).nth(count)
    answer.locator(".jp-RubberDuck-engine").wait_for(timeout=120_000)
    # Done once the answer stops streaming (the lab's first model call is slow).
    panel.page.wait_for_function(
        "el => !el.hasAttribute('aria-busy') && !el.dataset.thinking",
        arg=answer.element_handle(),
        timeout=120_000,
    )
    return answer


def test_a_plugin_command_offers_a_markdown_cell_that_applies(
    page: Any, open_sidebar: Any, lab_server: Any, screenshot: Any
) -> None:
    cells = open_notebook(page, lab_server, "notes.ipynb", ["total = 1 + 1", "print(total)"])
    cells.first.locator(".cm-content").click()
    panel = open_sidebar("fake-model")
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill("/no")
    option = panel.locator('.jp-RubberDuck-slash-option[data-command="/notes"]')
    option.wait_for()
    assert "Describe the active cell" in option.inner_text()
    box.fill("")
    answer = ask(panel, "/notes")
    suggestion = answer.locator(".jp-RubberDuck-suggestion")
    suggestion.wait_for(timeout=60_000)
    assert "A note for this cell:" in answer.inner_text()
    assert "new Markdown cell below cell 1" in suggestion.inner_text()
    screenshot("plugin-markdown-suggestion-light")
    suggestion.locator("button.jp-RubberDuck-suggestion-apply").click()
    cells.nth(2).wait_for(timeout=60_000)
    assert cells.count() == 3
    assert "jp-MarkdownCell" in (cells.nth(1).get_attribute("class") or "")
    # Read from the notebook's model: a new cell's DOM may not be drawn yet.
    model = page.evaluate(
        """() => {
            const panel = window.jupyterapp.shell.currentWidget;
            const cells = panel.content.model.sharedModel.cells;
            return cells.map(c => [c.cell_type, c.getSource()]);
        }"""
    )
    assert model == [
        ["code", "total = 1 + 1"],
        ["markdown", "## What this does\n\nIt adds **one**."],
        ["code", "print(total)"],
    ]


def test_a_failing_plugin_is_turned_off_with_a_notice_and_chat_goes_on(
    page: Any, open_sidebar: Any, fake_llm: Any, lab_server: Any, plugins_dir: Path, screenshot: Any
) -> None:
    panel = open_sidebar("fake-model")
    panel.locator("button.jp-RubberDuck-new").click()
    fake_llm.set_replies([f"answer {n}" for n in range(4)])
    notice = panel.locator(".jp-RubberDuck-error[data-level='warning']", has_text="flaky")
    for n in range(3):
        assert f"answer {n}" in ask(panel, f"question {n}?").inner_text()
    notice.wait_for()
    text = notice.inner_text()
    assert "Plugin flaky was turned off" in text and "lost its database" in text
    assert "keeps working" in text
    screenshot("plugin-disabled-notice-light")
    assert "answer 3" in ask(panel, "still there?").inner_text()
    rows = {r["name"]: r for r in lab_server.api("GET", "plugins")["plugins"]}
    assert rows["flaky"]["state"] == "disabled"

    # A plugin dropped into the folder: its command is listed without a reload.
    (plugins_dir / "extra.py").write_text(textwrap.dedent(EXTRA))
    loaded = panel.locator(".jp-RubberDuck-error[data-level='info']", has_text="extra")
    loaded.wait_for(timeout=20_000)
    assert "Plugin extra 2.1 was loaded" in loaded.inner_text()
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill("/ex")
    panel.locator('.jp-RubberDuck-slash-option[data-command="/extra"]').wait_for()
    box.fill("")
    assert "extra here" in ask(panel, "/extra").inner_text()
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme',"
        " {theme: 'JupyterLab Dark'})"
    )
    page.wait_for_selector("body[data-jp-theme-light='false']", state="attached")
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    try:
        screenshot("plugin-notices-dark")
    finally:
        page.evaluate(
            "() => window.jupyterapp.commands.execute('apputils:change-theme',"
            " {theme: 'JupyterLab Light'})"
        )
