"""Code in the sidebar: fixing a real error from a real kernel, applying and rejecting
suggestions, the Fix-this-error command, and sources from a real project index."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import nbformat
import pytest

from tests.browser.notebook_page import open_notebook, write_notebook

pytestmark = pytest.mark.browser

MESSAGES = '.jp-RubberDuck-message[data-role="assistant"]'
FAILING_CELL = "values = [1, 2, 3]\ntotal = sum(value)"
FIXED_CELL = "values = [1, 2, 3]\ntotal = sum(values)"
FIX_REPLY = (
    "**Root cause** `value` is not defined; the list is called `values`.\n\n"
    f"**Fix**\n\n```python\n{FIXED_CELL}\n```\n\n"
    "**Why this works** The name now matches the list."
)
LOADER = '''"""Reading the sales exports."""
import csv


def load_sales_csv(path):
    """Rows of a sales export as dictionaries."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
'''


@pytest.fixture(scope="module")
def lab_server(
    fake_llm_server: Any, start_lab: Any, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    # The index embeds through the fake provider, so building it loads no model.
    index = tmp_path_factory.mktemp("index") / "index.duckdb"
    return start_lab(
        {
            "RUBBERDUCK_MODEL": "openai/fake-model",
            "RUBBERDUCK_API_BASE": fake_llm_server.base_url,
            "RUBBERDUCK_API_KEY": "sk-browser-test",
        },
        [
            f"--RubberDuckApp.index_db_path={index}",
            "--RubberDuckApp.index_embedder=litellm:openai/fake-embed",
            f"--RubberDuckApp.index_embedder_api_base={fake_llm_server.base_url}",
            "--RubberDuckApp.index_embedder_api_key=sk-browser-test",
        ],
    )


def fake_chat_requests(fake: Any) -> list[dict[str, Any]]:
    """What the fake provider was asked, through its own HTTP control API."""
    root = fake.base_url.removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/_fake/requests", timeout=10) as response:
        requests = json.loads(response.read())
    return [r for r in requests if "messages" in r]


def run_failing_cell(page: Any, notebook: Any) -> Any:
    """Run the first cell in the real kernel (it stays active); return it once it failed."""
    # Runs sent before the kernel is up are dropped: wait until the status bar says Idle.
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)
    cell = notebook.locator(".jp-Cell").first
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+Enter")
    cell.locator(".jp-OutputArea-output", has_text="NameError").wait_for(timeout=60_000)
    return cell


def cell_source(cell: Any) -> str:
    return cell.locator(".cm-content").inner_text().replace("\u200b", "")


def test_fix_applies_to_the_open_notebook(
    page: Any,
    open_sidebar: Any,
    fake_llm: Any,
    lab_server: Any,
    screenshot: Any,
    wait_for_kernel=False,
) -> None:
    write_notebook(lab_server.root, "apply_fix.ipynb", [FAILING_CELL, "print('next')"])
    notebook = open_notebook(page, lab_server, "apply_fix.ipynb", wait_for_kernel=False)
    cell = run_failing_cell(page, notebook)

    # The failed cell's toolbar offers the fix.
    assert cell.locator('[data-jp-item-name="rubberduck-fix-error"]').is_visible()

    fake_llm.set_replies([FIX_REPLY])
    panel = open_sidebar("fake-model")
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill("/fix")
    box.press("Enter")
    answer = panel.locator(MESSAGES).last
    suggestion = answer.locator(".jp-RubberDuck-suggestion")
    suggestion.wait_for()
    assert answer.locator(".jp-RubberDuck-engine").inner_text() == "Fix"
    assert "apply_fix.ipynb, cell 1" in suggestion.inner_text()
    diff = suggestion.locator("pre.jp-RubberDuck-diff")
    assert diff.locator('[data-kind="del"]').all_inner_texts() == ["-total = sum(value)\n"]
    assert diff.locator('[data-kind="add"]').all_inner_texts() == ["+total = sum(values)\n"]

    # The question carried the cell, its position, its traceback and the kernel's variables.
    prompt = fake_chat_requests(fake_llm)[-1]["messages"][-1]["content"]
    assert "NameError" in prompt and "sum(value)" in prompt
    assert "active cell 1, code" in prompt
    assert "- values: list — len 3" in prompt

    suggestion.locator("button.jp-RubberDuck-suggestion-apply").click()
    state = suggestion.locator(".jp-RubberDuck-suggestion-state")
    page.wait_for_function("el => el.textContent.startsWith('Applied')", arg=state.element_handle())
    assert suggestion.get_attribute("data-status") == "applied"
    assert state.inner_text() == "Applied in the open notebook (not saved yet)"
    assert suggestion.locator("button.jp-RubberDuck-suggestion-apply").is_disabled()
    assert suggestion.locator("button.jp-RubberDuck-suggestion-reject").is_hidden()
    assert cell_source(cell) == FIXED_CELL
    assert cell_source(notebook.locator(".jp-Cell").nth(1)) == "print('next')"
    stored = lab_server.api("GET", f"suggestions/{suggestion.get_attribute('data-id')}")
    assert stored["status"] == "applied"
    # Applied in the browser only: the file on disk waits for the user's save.
    on_disk = nbformat.read(lab_server.root / "apply_fix.ipynb", as_version=4)
    assert on_disk.cells[0].source == FAILING_CELL
    screenshot("sidebar-fix-applied")


def test_fix_error_command_sends_the_traceback_and_refuses_a_changed_cell(
    page: Any, open_sidebar: Any, fake_llm: Any, lab_server: Any
) -> None:
    write_notebook(lab_server.root, "command_fix.ipynb", [FAILING_CELL])
    notebook = open_notebook(page, lab_server, "command_fix.ipynb", wait_for_kernel=False)
    cell = run_failing_cell(page, notebook)
    fake_llm.set_replies([FIX_REPLY])
    before = len(fake_chat_requests(fake_llm))

    # The notebook cell's context menu offers it for a cell whose run failed.
    cell.locator(".jp-InputArea-editor").click(button="right")
    item = page.locator(".lm-Menu-item", has_text="Fix This Error with RubberDuck")
    item.wait_for()
    item.click()

    panel = page.locator(".jp-RubberDuck")
    panel.wait_for(state="visible")
    user = panel.locator('.jp-RubberDuck-message[data-role="user"]').last
    user.wait_for()
    # Said as the user would say it, not "/fix".
    assert user.inner_text() == "Fix the NameError in cell 1"
    suggestion = panel.locator(MESSAGES).last.locator(".jp-RubberDuck-suggestion")
    suggestion.wait_for()
    sent = fake_chat_requests(fake_llm)[before:]
    assert len(sent) == 1
    prompt = sent[0]["messages"][-1]["content"]
    assert "Traceback" in prompt or "NameError: name 'value' is not defined" in prompt
    assert "name 'value' is not defined" in prompt
    assert "- values: list — len 3" in prompt

    # The cell changes before Apply: the change is refused, nothing is overwritten.
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("  # edited")
    page.keyboard.press("Escape")
    edited = FAILING_CELL + "  # edited"
    assert cell_source(cell) == edited
    suggestion.locator("button.jp-RubberDuck-suggestion-apply").click()
    state = suggestion.locator(".jp-RubberDuck-suggestion-state")
    error_state = suggestion.locator('.jp-RubberDuck-suggestion-state[data-kind="error"]')
    error_state.wait_for()
    assert "changed since" in state.inner_text()
    assert cell_source(cell) == edited
    assert suggestion.get_attribute("data-status") == "proposed"

    # Reject is recorded on the server.
    suggestion.locator("button.jp-RubberDuck-suggestion-reject").click()
    page.wait_for_function("el => el.textContent === 'Rejected'", arg=state.element_handle())
    assert suggestion.locator("button.jp-RubberDuck-suggestion-apply").is_hidden()
    stored = lab_server.api("GET", f"suggestions/{suggestion.get_attribute('data-id')}")
    assert stored["status"] == "rejected"

    # The keyboard shortcut does the same from the notebook (command mode).
    fake_llm.set_replies([FIX_REPLY])
    notebook.locator(".jp-Cell").first.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Alt+f")
    panel.locator('.jp-RubberDuck-message[data-role="user"]').nth(1).wait_for()
    assert (
        panel.locator('.jp-RubberDuck-message[data-role="user"]').nth(1).inner_text()
        == "Fix the NameError in cell 1"
    )
    panel.locator(MESSAGES).nth(1).locator(".jp-RubberDuck-suggestion").wait_for()


def build_index(lab: Any) -> None:
    lab.api("POST", "index", {"paths": []})
    deadline = time.monotonic() + 60
    while lab.api("GET", "index")["state"] == "indexing":
        assert time.monotonic() < deadline, "indexing did not finish"
        time.sleep(0.2)


GENERATE_REPLIES = [
    "1. Reuse `load_sales_csv` [1]\n2. Sum the `amount` column",
    "```python\nfrom sales_loader import load_sales_csv\n\n\n"
    "def total_sales(path):\n"
    "    return sum(float(row['amount']) for row in load_sales_csv(path))\n```\n\n"
    "This builds on `load_sales_csv` from [1].",
]


def test_generate_shows_steps_sources_and_an_insertable_suggestion(
    page: Any, open_sidebar: Any, fake_llm: Any, lab_server: Any, screenshot: Any
) -> None:
    (lab_server.root / "sales_loader.py").write_text(LOADER)
    write_notebook(lab_server.root, "report.ipynb", ["rows = []", "print(len(rows))"])
    build_index(lab_server)
    notebook = open_notebook(page, lab_server, "report.ipynb", wait_for_kernel=False)
    notebook.locator(".jp-Cell").first.locator(".cm-content").click()

    fake_llm.set_replies(GENERATE_REPLIES)
    panel = open_sidebar("fake-model")
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill("/generate a function that totals the sales csv rows with load_sales_csv")
    box.press("Enter")
    answer = panel.locator(MESSAGES).last
    answer.locator(".jp-RubberDuck-usage").wait_for()

    badge = answer.locator(".jp-RubberDuck-engine")
    assert badge.inner_text() == "Generate code"
    step = answer.locator("details.jp-RubberDuck-step")
    assert step.locator(".jp-RubberDuck-step-title").inner_text() == "Plan"
    assert step.evaluate("el => el.open") is False

    sources = answer.locator(".jp-RubberDuck-source")
    assert sources.count() >= 1
    first = sources.first
    assert first.get_attribute("data-n") == "1"
    cited_path = first.locator(".jp-RubberDuck-source-where").inner_text()
    assert cited_path.startswith("sales_loader.py")
    # "[1]" in the answer links to source 1.
    link = answer.locator(":scope > .jp-RubberDuck-markdown a.jp-RubberDuck-cite")
    assert link.all_inner_texts() == ["[1]"]
    assert "sales_loader.py" in (link.get_attribute("title") or "")

    suggestion = answer.locator(".jp-RubberDuck-suggestion")
    assert "new cell after cell 1" in suggestion.inner_text()
    assert answer.locator(".jp-RubberDuck-correction-summary").count() == 1

    # A wider sidebar for the screenshot: drag the handle between main area and sidebar.
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:visible").last
    box = handle.bounding_box()
    if box:
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] - 260, box["y"] + box["height"] / 2, steps=5)
        page.mouse.up()
    step.locator("summary").click()
    screenshot("sidebar-generate-steps-sources-suggestion")
    step.locator("summary").click()

    # Insert: a new cell below the active one, in the open notebook.
    suggestion.locator("button.jp-RubberDuck-suggestion-apply").click()
    cells = notebook.locator(".jp-Cell")
    cells.nth(2).wait_for()
    assert cells.count() == 3
    assert "def total_sales(path):" in cell_source(cells.nth(1))
    assert cell_source(cells.nth(2)) == "print(len(rows))"

    # A source opens its file in the main area, and the [1] link does the same.
    link.click()
    editor = page.locator(".jp-FileEditor:visible")
    editor.wait_for()
    assert (
        page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
        .filter(has_text="sales_loader.py")
        .count()
        >= 1
    )
