"""How an answer renders, in a real JupyterLab against the fake provider: a code block's
Copy, Insert below, Replace (undone by the cell's undo) and Show diff on the active
notebook, by mouse and keyboard; uncited sources folded; the /help table's words kept
whole; a /review rewrite copied with the prompt's line numbers offered without them (and
applied to the file on disk), one that does not parse shown as text only. Light and dark
screenshots of each answer go to test-artifacts/browser/."""

from __future__ import annotations

import time
from typing import Any

import nbformat
import pytest

from rubberduck_jupyter.engines.line_numbers import numbered

pytestmark = pytest.mark.browser

ANSWERS = '.jp-RubberDuck-message[data-role="assistant"]'
HELPERS = '''"""Sales helpers."""
import csv


def load_sales(path):
    """Rows of a sales export."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def total_amount(rows):
    """The sum of the amount column."""
    return sum(float(row["amount"]) for row in rows)


def by_region(rows):
    """Rows grouped by their region."""
    groups = {}
    for row in rows:
        groups.setdefault(row["region"], []).append(row)
    return groups


def top_customers(rows, n=5):
    """The n customers who spent most."""
    spent = {}
    for row in rows:
        spent[row["customer"]] = spent.get(row["customer"], 0) + float(row["amount"])
    return sorted(spent, key=spent.get, reverse=True)[:n]
'''
BLOCK_CODE = "rows = load_sales('sales.csv')\ntotal = total_amount(rows)\nprint(f'{total:.2f}')"
ANSWER = (
    "Load the rows with `load_sales` [1], then sum them:\n\n"
    f"```python\n{BLOCK_CODE}\n```\n\nThat prints the total with two decimals."
)
ETL = "def load(p):\n    return open(p).read()\n"
REWRITE = "def load(p):\n    with open(p) as f:\n        return f.read()"


@pytest.fixture(scope="module")
def lab_server(
    fake_llm_server: Any, start_lab: Any, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    index = tmp_path_factory.mktemp("index") / "index.duckdb"
    return start_lab(
        {
            "RUBBERDUCK_MODEL": "openai/fake-model",
            "RUBBERDUCK_API_BASE": fake_llm_server.base_url,
            "RUBBERDUCK_API_KEY": "sk-browser-test",
        },
        [
            # The theme switch for the dark screenshots goes through the app's command.
            "--LabApp.expose_app_in_browser=True",
            f"--RubberDuckApp.index_db_path={index}",
            "--RubberDuckApp.index_embedder=litellm:openai/fake-embed",
            f"--RubberDuckApp.index_embedder_api_base={fake_llm_server.base_url}",
            "--RubberDuckApp.index_embedder_api_key=sk-browser-test",
        ],
    )


def build_index(lab: Any) -> None:
    lab.api("POST", "index", {"paths": []})
    deadline = time.monotonic() + 60
    while lab.api("GET", "index")["state"] == "indexing":
        assert time.monotonic() < deadline, "indexing did not finish"
        time.sleep(0.2)


def open_notebook(page: Any, lab: Any, name: str, sources: list[str]) -> Any:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(notebook, lab.root / name)
    workspace = name.replace(".", "-")
    page.goto(f"{lab.url}lab/workspaces/{workspace}/tree/{name}?token={lab.token}")
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    view = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
    view.locator(".jp-Cell").first.wait_for()
    return view


def cell_source(cell: Any) -> str:
    return cell.locator(".cm-content").inner_text().replace("\u200b", "")


def ask(panel: Any, question: str) -> Any:
    """Send a question; return its answer once done (its usage line is drawn)."""
    before = panel.locator(".jp-RubberDuck-usage").count()
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill(question)
    box.press("Enter")
    panel.locator(".jp-RubberDuck-usage").nth(before).wait_for()
    return panel.locator(ANSWERS).last


def light_and_dark(page: Any, screenshot: Any, name: str) -> None:
    page.wait_for_timeout(300)
    screenshot(f"{name}-light")
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme',"
        " {theme: 'JupyterLab Dark'})"
    )
    page.wait_for_selector("body[data-jp-theme-light='false']", state="attached")
    page.wait_for_timeout(500)
    screenshot(f"{name}-dark")
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme',"
        " {theme: 'JupyterLab Light'})"
    )
    page.wait_for_selector("body[data-jp-theme-light='true']", state="attached")


def test_code_block_actions_and_folded_sources(
    page: Any, open_sidebar: Any, fake_llm: Any, lab_server: Any, screenshot: Any
) -> None:
    (lab_server.root / "sales_helpers.py").write_text(HELPERS)
    view = open_notebook(page, lab_server, "blocks.ipynb", ["x = 1", "print(x)"])
    build_index(lab_server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab_server.url)
    first = view.locator(".jp-Cell").first
    first.locator(".cm-content").click()

    fake_llm.set_replies([ANSWER])
    panel = open_sidebar("fake-model")
    answer = ask(panel, "/ask how do I total the sales rows with load_sales?")
    block = answer.locator(".jp-RubberDuck-codeblock")
    assert block.count() == 1
    assert block.get_attribute("data-language") == "python"
    # JupyterLab's highlighter coloured it: token spans, the text unchanged.
    code = block.locator("pre code")
    code.locator("span").first.wait_for()
    assert code.get_attribute("data-highlighted") == "true"
    assert code.inner_text().rstrip("\n") == BLOCK_CODE
    keyword = code.locator("span", has_text="'sales.csv'").first
    assert keyword.evaluate("el => getComputedStyle(el).color") != code.evaluate(
        "el => getComputedStyle(el).color"
    )
    # The block scrolls inside the sidebar's default width instead of widening it.
    pre = block.locator("pre")
    assert pre.evaluate("el => getComputedStyle(el).overflowX") == "auto"
    assert block.evaluate("el => el.getBoundingClientRect().right") <= answer.evaluate(
        "el => el.getBoundingClientRect().right"
    )

    toolbar = block.locator('[role="toolbar"]')
    assert toolbar.get_attribute("aria-label") == "Code block actions"
    names = [b.get_attribute("aria-label") for b in toolbar.locator("button").all()]
    assert names == [
        "Copy the code to the clipboard",
        "Insert the code as a new cell below the active cell",
        "Replace the active cell's code with this code",
        "Show how this code differs from the active cell",
    ]
    status = block.locator(".jp-RubberDuck-codeblock-status")

    # Keyboard: Shift+Tab from the code lands on the toolbar's one tab stop (Copy), with
    # a visible focus ring; Enter copies.
    pre.focus()
    page.keyboard.press("Shift+Tab")
    copy = toolbar.locator('button[data-action="copy"]')
    assert copy.evaluate("el => el === document.activeElement && el.matches(':focus-visible')")
    assert copy.evaluate("el => getComputedStyle(el).outlineStyle") != "none"
    page.keyboard.press("Enter")
    page.wait_for_function("el => el.textContent === 'Copied'", arg=status.element_handle())
    assert page.evaluate("() => navigator.clipboard.readText()") == BLOCK_CODE

    # Arrow keys move along the toolbar; Enter on "Insert below" adds a cell after cell 0.
    page.keyboard.press("ArrowRight")
    insert = toolbar.locator('button[data-action="insert"]')
    assert insert.evaluate("el => el === document.activeElement")
    page.keyboard.press("Enter")
    cells = view.locator(".jp-Cell")
    page.wait_for_function(
        "n => document.querySelectorAll("
        "'.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell').length === n",
        arg=3,
    )
    assert cell_source(cells.nth(1)) == BLOCK_CODE
    assert cell_source(cells.nth(0)) == "x = 1"
    assert cell_source(cells.nth(2)) == "print(x)"
    assert status.inner_text() == "Inserted as cell 2 of blocks.ipynb"

    # Show diff against the active cell (the inserted one is active: no difference), then
    # against cell 3.
    cells.nth(2).locator(".cm-content").click()
    toolbar.locator('button[data-action="diff"]').click()
    diff = block.locator("pre.jp-RubberDuck-codeblock-diff")
    assert diff.locator('[data-kind="del"]').all_inner_texts() == ["-print(x)\n"]
    assert len(diff.locator('[data-kind="add"]').all_inner_texts()) == 3
    assert toolbar.locator('button[data-action="diff"]').get_attribute("aria-pressed") == "true"

    # Replace cell 3; the diff follows; the cell's undo brings the old code back.
    toolbar.locator('button[data-action="replace"]').click()
    assert cell_source(cells.nth(2)) == BLOCK_CODE
    assert "No difference" in diff.inner_text()
    cells.nth(2).locator(".cm-content").click()
    page.keyboard.press("Control+z")
    page.wait_for_function(
        "el => el.innerText.replace(/\\u200b/g, '') === 'print(x)'",
        arg=cells.nth(2).locator(".cm-content").element_handle(),
    )
    toolbar.locator('button[data-action="diff"]').click()
    assert diff.count() == 0

    # Four sources found: the cited one listed, three folded, opened by keyboard.
    sources = answer.locator(".jp-RubberDuck-sources")
    assert answer.locator(".jp-RubberDuck-source").count() == 4
    shown = sources.locator(":scope > .jp-RubberDuck-sources-list .jp-RubberDuck-source")
    assert [s.get_attribute("data-n") for s in shown.all()] == ["1"]
    more = sources.locator("details.jp-RubberDuck-sources-more")
    summary = more.locator("summary")
    assert summary.inner_text() == "3 more sources"
    assert more.evaluate("el => el.open") is False
    assert not more.locator(".jp-RubberDuck-source").first.is_visible()
    summary.focus()
    page.keyboard.press("Enter")
    assert more.evaluate("el => el.open") is True
    assert more.locator(".jp-RubberDuck-source").count() == 3
    assert more.locator(".jp-RubberDuck-source").first.is_visible()

    # /help's table: no cell narrower than its longest word.
    # (/help answers without a model: no usage line to wait for.)
    before = panel.locator(ANSWERS).count()
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill("/help")
    box.press("Enter")
    help_answer = panel.locator(ANSWERS).nth(before)
    help_answer.locator("table td").first.wait_for()
    squeezed = help_answer.evaluate(
        """el => [...el.querySelectorAll('td, th')].filter(cell => {
            const probe = document.createElement('span');
            probe.style.whiteSpace = 'nowrap';
            const words = cell.innerText.split(/\\s+/).sort((a, b) => b.length - a.length);
            probe.textContent = words[0] || '';
            cell.append(probe);
            const wide = probe.getBoundingClientRect().width;
            probe.remove();
            return wide > cell.clientWidth;
        }).map(cell => cell.innerText)"""
    )
    assert help_answer.locator("table").count() >= 1
    assert squeezed == []
    answer.scroll_into_view_if_needed()
    light_and_dark(page, screenshot, "answer-code-block-sources")


def test_review_rewrite_with_line_numbers(
    page: Any, open_sidebar: Any, fake_llm: Any, lab_server: Any, screenshot: Any
) -> None:
    etl = lab_server.root / "etl_review.py"
    etl.write_text(ETL)
    fake_llm.set_replies(
        [
            f"- **line 2** leaks a file handle.\n\n```python\n{numbered(REWRITE)}\n```",
            "- **line 2** leaks.\n\n```python\n   1  def load(p:\n   2      return p\n```",
        ]
    )
    panel = open_sidebar("fake-model")
    answer = ask(panel, "/review etl_review.py")
    suggestion = answer.locator(".jp-RubberDuck-suggestion")
    suggestion.wait_for()
    diff = suggestion.locator("pre.jp-RubberDuck-diff")
    added = diff.locator('[data-kind="add"]').all_inner_texts()
    assert added == ["+    with open(p) as f:\n", "+        return f.read()\n"]
    assert not any(line.lstrip("+").startswith("   1") for line in added)
    apply = suggestion.locator("button.jp-RubberDuck-suggestion-apply")
    assert apply.is_visible()
    apply.click()
    state = suggestion.locator(".jp-RubberDuck-suggestion-state")
    page.wait_for_function("el => el.textContent.startsWith('Applied')", arg=state.element_handle())
    assert etl.read_text() == REWRITE

    # A rewrite that does not parse even without its numbers: text only, no Apply.
    etl.write_text(ETL)
    broken = ask(panel, "/review etl_review.py")
    assert broken.locator(".jp-RubberDuck-suggestion").count() == 0
    assert broken.locator("button.jp-RubberDuck-suggestion-apply").count() == 0
    notice = broken.locator('.jp-RubberDuck-suggestions [data-code="suggestion_unparsable"]')
    assert "does not parse" in notice.inner_text()
    assert "`" not in notice.locator("p").first.inner_text()  # Markdown, not raw backticks
    block = notice.locator(".jp-RubberDuck-codeblock")
    assert block.locator("pre code").inner_text().rstrip("\n") == "def load(p:\n    return p"
    actions = [b.get_attribute("data-action") for b in block.locator("button").all()]
    assert actions == ["copy"]
    assert etl.read_text() == ETL
    broken.scroll_into_view_if_needed()
    light_and_dark(page, screenshot, "answer-review-notice")
