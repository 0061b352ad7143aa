"""Context the user can see: chips above the box say what the next message carries, a
removed chip's context is not sent (the fake provider's recorded request shows it gone),
the `sendVariables` setting turns the variables chip on and off live, and `@` completes
kernel variables, cells and project files, each attached as the server labels it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = pytest.mark.browser

CHIPS = ".jp-RubberDuck-chips .jp-RubberDuck-chip"
SETUP_CELL = (
    "import numpy as np\n"
    "df = np.arange(6, dtype='int64').reshape(3, 2)\n"
    "rows = [{'region': 'north', 'sales': 3}]"
)
FAILING_CELL = "orders = {'south': 1}\norders['north']"
ETL = "def load_orders(path):\n    return open(path).read().splitlines()\n"


@pytest.fixture(scope="module")
def lab_server(fake_llm_server: Any, start_lab: Any) -> Any:
    return start_lab(
        {
            "RUBBERDUCK_MODEL": "openai/fake-model",
            "RUBBERDUCK_API_BASE": fake_llm_server.base_url,
            "RUBBERDUCK_API_KEY": "sk-browser-test",
            # In a venv, jupyter_core puts the environment's data dir before the user's, so
            # the venv's `labextension develop` link (to the main checkout's build) would
            # shadow the build beside the imported package that conftest links in.
            "JUPYTER_PREFER_ENV_PATH": "0",
        },
        # Settings and the theme switch go through the app itself.
        ["--LabApp.expose_app_in_browser=True", "--RubberDuckApp.ollama_url=http://127.0.0.1:9"],
    )


def _write_notebook(root: Path, name: str) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.cells = [
        nbformat.v4.new_code_cell(SETUP_CELL),
        nbformat.v4.new_code_cell(FAILING_CELL),
    ]
    nbformat.write(notebook, root / name)


def _open_and_run(page: Any, lab: Any, name: str) -> Any:
    """Open the notebook in a workspace of its own, run both cells; the failed second
    cell stays active."""
    _write_notebook(lab.root, name)
    workspace = name.replace(".", "-")
    page.goto(f"{lab.url}lab/workspaces/{workspace}/tree/{name}?token={lab.token}")
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
    notebook.locator(".jp-Cell").first.wait_for()
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)
    notebook.locator(".jp-Cell").first.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")  # runs the first cell, activates the second
    second = notebook.locator(".jp-Cell").nth(1)
    second.locator(".cm-content").click()
    page.keyboard.press("Control+Enter")
    second.locator(".jp-OutputArea-output", has_text="KeyError").wait_for(timeout=60_000)
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)
    return notebook


def _chips(panel: Any) -> list[str]:
    """Each chip's accessible name, in order."""
    return [c.get_attribute("aria-label") or "" for c in panel.locator(CHIPS).all()]


def _prompt_of(fake_llm: Any, page: Any, before: int, text: str) -> str:
    """The answer's prompt among the requests since `before` (a router's classification
    call may come first): the one whose last message asks `text`."""
    question = f"Question:\n{text}"
    for _ in range(400):
        for request in reversed(fake_llm.requests[before:]):
            content = str(request["messages"][-1]["content"])
            if question in content:
                page.wait_for_selector(
                    ".jp-RubberDuck-message[data-role='assistant']:last-child"
                    ":not([data-status='streaming'])"
                )
                return content
        page.wait_for_timeout(50)
    raise AssertionError(f"no request asked {text!r}: {fake_llm.requests[before:]}")


def _send(panel: Any, fake_llm: Any, text: str) -> str:
    before = len(fake_llm.requests)
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill(text)
    box.press("Escape")  # close the @ list, if the text opened it
    box.press("End")
    box.press("Enter")
    return _prompt_of(fake_llm, panel.page, before, text)


def _set_send_variables(page: Any, value: bool) -> None:
    # JupyterLab's own settings registry, as the Settings Editor writes it.
    page.evaluate(
        """async value => {
          const app = window.jupyterapp;
          const registry = await app.resolveRequiredService(
            [...app['pluginRegistry']['_services'].keys()].find(
              t => t.name === '@jupyterlab/coreutils:ISettingRegistry'
            )
          );
          await registry.set('rubberduck-jupyter:plugin', 'sendVariables', value);
        }""",
        value,
    )


def _dark(page: Any, dark: bool) -> None:
    theme = "JupyterLab Dark" if dark else "JupyterLab Light"
    page.evaluate(
        f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})"
    )
    page.wait_for_selector(f"body[data-jp-theme-light='{str(not dark).lower()}']", state="attached")
    page.wait_for_timeout(300)


def test_removed_chips_are_not_sent_and_come_back(
    page: Any, open_sidebar: Any, fake_llm: Any, lab_server: Any, screenshot: Any
) -> None:
    _open_and_run(page, lab_server, "chips.ipynb")
    panel = open_sidebar("fake-model")
    assert _chips(panel) == [
        "Notebook chips.ipynb",
        "Cell 2",
        "Error KeyError: 'north'",
        "Kernel variables",
    ]
    # Live: another cell active, other chips (the first cell has no error), and back.
    notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
    notebook.locator(".jp-Cell").first.locator(".cm-content").click()
    page.wait_for_selector(".jp-RubberDuck-chip-error", state="detached")
    assert _chips(panel) == ["Notebook chips.ipynb", "Cell 1", "Kernel variables"]
    notebook.locator(".jp-Cell").nth(1).locator(".cm-content").click()
    panel.locator(".jp-RubberDuck-chip-error").wait_for()
    assert _chips(panel)[1] == "Cell 2"
    remove = panel.locator(".jp-RubberDuck-chip-error .jp-RubberDuck-chip-remove")
    assert remove.get_attribute("aria-label") == "Remove Error KeyError: 'north' from the context"
    screenshot("context-chips-light")
    _dark(page, True)
    screenshot("context-chips-dark")
    _dark(page, False)

    # The x button removes the error; Delete on the focused cell chip removes the cell.
    remove.click()
    panel.locator(".jp-RubberDuck-chip-cell").focus()
    page.keyboard.press("Delete")
    assert _chips(panel) == ["Notebook chips.ipynb", "Kernel variables"]
    # Focus stayed in the row, on the chip that took the removed one's place.
    assert page.evaluate("() => document.activeElement.dataset.key") == "variables"

    fake_llm.set_replies(["Noted."])
    prompt = _send(panel, fake_llm, "What is going on here?")
    assert "Notebook: chips.ipynb" in prompt
    assert "KeyError" not in prompt  # the error chip was removed
    assert "orders['north']" not in prompt  # so was the cell chip
    assert "Active cell" not in prompt
    assert "- df: numpy.ndarray" in prompt  # the variables chip stayed
    # A removal is for one message: the chips are back for the next.
    assert len(_chips(panel)) == 4

    # sendVariables off: the chip goes at once (no reload) and no variables are sent.
    _set_send_variables(page, False)
    page.wait_for_selector(".jp-RubberDuck-chip-variables", state="detached")
    fake_llm.set_replies(["Noted again."])
    prompt = _send(panel, fake_llm, "And now?")
    assert "Kernel variables" not in prompt
    assert "orders['north']" in prompt and "KeyError" in prompt
    _set_send_variables(page, True)
    panel.locator(".jp-RubberDuck-chip-variables").wait_for()


def test_at_mentions_complete_and_attach_variables_cells_and_files(
    page: Any, open_sidebar: Any, fake_llm: Any, lab_server: Any, screenshot: Any
) -> None:
    (lab_server.root / "src").mkdir(exist_ok=True)
    (lab_server.root / "src" / "etl.py").write_text(ETL)
    _open_and_run(page, lab_server, "mentions.ipynb")
    panel = open_sidebar("fake-model")
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.click()
    box.press_sequentially("Describe @")
    listbox = panel.locator("ul.jp-RubberDuck-mentions[role='listbox']")
    listbox.wait_for()
    options = listbox.locator("[role='option'] .jp-RubberDuck-mention-label")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-RubberDuck-mention-label')]"
        ".some(o => o.textContent === '@df')"
    )
    labels = options.all_inner_texts()
    assert labels[:2] == ["@df", "@rows"]  # the kernel's variables first
    assert "@cell:N" in labels and "@mentions.ipynb" in labels and "@src/" in labels
    assert box.get_attribute("aria-expanded") == "true"
    screenshot("context-mentions-light")
    _dark(page, True)
    screenshot("context-mentions-dark")
    _dark(page, False)

    # Keyboard: Down moves, Enter takes it; Escape closes without taking anything.
    box.press("ArrowDown")
    selected = listbox.locator("[aria-selected='true'] .jp-RubberDuck-mention-label")
    assert selected.inner_text() == "@rows"
    box.press("ArrowUp")
    box.press("Enter")
    assert box.input_value() == "Describe @df "
    box.press_sequentially("and @src/")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-RubberDuck-mention-label')]"
        ".some(o => o.textContent === '@src/etl.py')"
    )
    box.press("Tab")
    assert box.input_value() == "Describe @df and @src/etl.py "
    box.press_sequentially("and @cell:")
    listbox.locator("[role='option']", has_text="@cell:1").wait_for()
    box.press("Escape")
    assert listbox.is_hidden()
    box.press_sequentially("1")
    assert _chips(panel)[-3:] == [
        "@df",
        "@src/etl.py",
        "@cell:1",
    ]

    fake_llm.set_replies(["Here is what they are."])
    before = len(fake_llm.requests)
    box.press("Enter")
    prompt = _prompt_of(fake_llm, page, before, "Describe @df and @src/etl.py and @cell:1")
    assert "Attached by the user with @" in prompt
    assert "[@df] Kernel variable `df`: numpy.ndarray" in prompt
    assert "shape: (3, 2)" in prompt and "dtype: int64" in prompt
    assert "values:" not in prompt  # values only when asked
    assert "[@src/etl.py] File src/etl.py (read from disk):" in prompt
    assert "def load_orders(path):" in prompt
    assert "[@cell:1] Cell 1 (code) of mentions.ipynb:" in prompt
    assert "df = np.arange(6, dtype='int64')" in prompt

    # `@df:values` adds the values; a chip's x button takes the mention out of the text.
    box.fill("Show @df:values and @rows")
    panel.locator(".jp-RubberDuck-chip-mention", has_text="@rows").locator("button").click()
    assert box.input_value() == "Show @df:values and "
    fake_llm.set_replies(["The values."])
    prompt = _send(panel, fake_llm, box.input_value())
    assert "[@df:values] Kernel variable `df`" in prompt
    assert "[[0 1]\n [2 3]\n [4 5]]" in prompt
    assert "`rows`" not in prompt


PANDAS_CELL = (
    "import pandas as pd\n"
    "sales = pd.DataFrame({'region': ['north', 'south', 'east'], 'units': [3, 1, 2]})"
)


def test_at_a_pandas_data_frame_sends_its_shape_columns_and_dtypes_values_when_asked(
    page: Any, open_sidebar: Any, fake_llm: Any, lab_server: Any
) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [nbformat.v4.new_code_cell(PANDAS_CELL)]
    nbformat.write(notebook, lab_server.root / "frames.ipynb")
    page.goto(f"{lab_server.url}lab/workspaces/frames/tree/frames.ipynb?token={lab_server.token}")
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    cell = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").first
    cell.wait_for()
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)
    cell.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    cell.locator(".jp-InputPrompt:has-text('[1]')").wait_for(timeout=60_000)
    panel = open_sidebar("fake-model")

    fake_llm.set_replies(["Three regions."])
    prompt = _send(panel, fake_llm, "Summarise @sales")
    assert "[@sales] Kernel variable `sales`: pandas.DataFrame" in prompt
    assert "shape: (3, 2)" in prompt
    assert "columns: region (object), units (int64)" in prompt or (
        "columns: region (str), units (int64)" in prompt  # pandas 3's string dtype
    )
    assert "north" not in prompt  # values only when asked

    fake_llm.set_replies(["The rows."])
    prompt = _send(panel, fake_llm, "Show @sales:values")
    assert "[@sales:values] Kernel variable `sales`" in prompt
    rows = prompt[prompt.index("[@sales:values]") :]
    assert "north" in rows and "south" in rows and "east" in rows
    assert "region  units" in rows  # the frame's own to_string() header


def test_at_finds_files_in_subfolders_by_name(
    page: Any, open_sidebar: Any, lab_server: Any
) -> None:
    deep = lab_server.root / "pipelines" / "daily"
    deep.mkdir(parents=True, exist_ok=True)
    (deep / "reconcile_ledger.py").write_text("def reconcile():\n    pass\n")
    (lab_server.root / "node_modules" / "pkg").mkdir(parents=True, exist_ok=True)
    (lab_server.root / "node_modules" / "pkg" / "reconcile_ledger.py").write_text("")
    panel = open_sidebar("fake-model")
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill("")
    box.click()
    # Typed at speed: the walk of the subfolders never holds a key back.
    box.press_sequentially("Check @reconc", delay=0)
    assert box.input_value() == "Check @reconc"
    option = panel.locator(
        "ul.jp-RubberDuck-mentions [role='option']", has_text="@pipelines/daily/reconcile_ledger.py"
    )
    option.wait_for()
    labels = panel.locator(".jp-RubberDuck-mention-label").all_inner_texts()
    assert not any("node_modules" in label for label in labels), labels
    box.press("Enter")
    assert box.input_value() == "Check @pipelines/daily/reconcile_ledger.py "
    chip = panel.locator(".jp-RubberDuck-chip-mention")
    assert chip.get_attribute("aria-label") == "@pipelines/daily/reconcile_ledger.py"
