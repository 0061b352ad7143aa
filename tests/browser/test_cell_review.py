"""Review on the cell, in a real lab with the fake provider: a cell's findings with a fix
accepted (undone with Ctrl+Z), findings going stale after an edit, and the notebook's
review (POST /review/notebook a slice of 25 code cells at a time) with its progress bar,
its Cancel, a busy server, and a summary that jumps to cells; screenshots of the findings
and the summary in JupyterLab Light and Dark."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from tests.browser.notebook_page import EXPOSE_APP, fake_model_env, open_notebook, write_notebook

pytestmark = pytest.mark.browser

CELL = "xs = [3, 1, 2]\nxs = xs.sort()\nprint(xs)"
FIXED = "xs = [3, 1, 2]\nxs.sort()\nprint(xs)"
REVIEW_REPLY = "The second line assigns `None` to `xs`: `list.sort` sorts in place."


@pytest.fixture(scope="module")
def lab_server(fake_llm_server: Any, start_lab: Any) -> Any:
    return start_lab(fake_model_env(fake_llm_server), [EXPOSE_APP])


def cell_source(cell: Any) -> str:
    return cell.locator(".cm-content").inner_text().replace("\u200b", "")


def dark_then_light(page: Any, screenshot: Any, name: str) -> None:
    screenshot(f"{name}-light")
    for theme, light in (("JupyterLab Dark", "false"), ("JupyterLab Light", "true")):
        page.evaluate(
            "theme => window.jupyterapp.commands.execute('apputils:change-theme', {theme})",
            theme,
        )
        page.wait_for_selector(f"body[data-jp-theme-light='{light}']", state="attached")
        page.wait_for_timeout(400)
        if light == "false":
            screenshot(f"{name}-dark")


def test_review_a_cell_and_accept_a_fix_then_undo_it(
    page: Any, lab_server: Any, fake_llm: Any, screenshot: Any
) -> None:
    fake_llm.set_replies([REVIEW_REPLY])
    write_notebook(lab_server.root, "fix.ipynb", [CELL, "print('next')"])
    notebook = open_notebook(page, lab_server, "fix.ipynb", wait_for_kernel=False)
    cell = notebook.locator(".jp-Cell").first
    cell.locator(".cm-content").click()
    page.keyboard.press("Escape")  # command mode: the shortcut's selector is the notebook
    page.keyboard.press("Control+Alt+r")
    review = cell.locator(".jp-RubberDuck-cellReview")
    finding = review.locator(".jp-RubberDuck-finding[data-code='RD103']")
    finding.wait_for()
    assert "Line 2" in finding.inner_text()
    assert finding.locator(".jp-RubberDuck-severity").get_attribute("aria-label") == "Warning"
    # The line is marked in the editor.
    marked = cell.locator(".cm-line.jp-RubberDuck-findingLine")
    assert marked.count() == 1 and "xs = xs.sort()" in marked.inner_text()
    # The model's review streams in after the static findings.
    review.locator(".jp-RubberDuck-cellReview-modelText", has_text="sorts in place").wait_for()
    finding.get_by_role("button", name="Show the fix for RD103 on line 2").click()
    diff = finding.locator(".jp-RubberDuck-cellReview-diff")
    assert "-xs = xs.sort()" in diff.inner_text() and "+xs.sort()" in diff.inner_text()
    dark_then_light(page, screenshot, "cell-review-findings")
    finding.get_by_role("button", name="Accept the fix for RD103: replace the cell's code").click()
    page.wait_for_function(
        "() => document.querySelector('.jp-Cell .cm-content').innerText.includes('\\nxs.sort()')"
    )
    assert cell_source(cell) == FIXED
    # The fixed cell was reviewed again: RD103 is gone.
    review.locator(".jp-RubberDuck-finding[data-code='RD103']").wait_for(state="detached")
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+z")
    page.wait_for_function(
        "() => document.querySelector('.jp-Cell .cm-content').innerText.includes('xs = xs.sort()')"
    )
    assert cell_source(cell) == CELL


def test_findings_go_stale_after_an_edit_and_a_stale_fix_cannot_be_accepted(
    page: Any, lab_server: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["Fine."])
    write_notebook(lab_server.root, "stale.ipynb", [CELL])
    notebook = open_notebook(page, lab_server, "stale.ipynb", wait_for_kernel=False)
    cell = notebook.locator(".jp-Cell").first
    cell.locator(".jp-InputPrompt").click()
    # The cell toolbar's button, by its accessible name.
    cell.locator(".jp-cell-toolbar").get_by_title(
        "Review the active cell: static findings at once, then the model's review"
    ).click()
    review = cell.locator(".jp-RubberDuck-cellReview")
    finding = review.locator(".jp-RubberDuck-finding[data-code='RD103']")
    finding.wait_for()
    finding.get_by_role("button", name="Show the fix for RD103 on line 2").click()
    cell.locator(".cm-line").last.click()
    page.keyboard.press("End")
    page.keyboard.type("  # edited")
    page.wait_for_selector(".jp-RubberDuck-cellReview.jp-mod-stale")
    assert "Stale" in review.locator(".jp-RubberDuck-cellReview-staleLabel").inner_text()
    assert finding.locator(".jp-RubberDuck-finding-accept").is_disabled()
    assert cell.locator(".cm-line.jp-RubberDuck-findingLine.jp-mod-stale").count() == 1
    review.get_by_role("button", name="Review this cell again").click()
    page.wait_for_selector(".jp-RubberDuck-cellReview:not(.jp-mod-stale)")
    assert cell_source(cell).endswith("print(xs)  # edited")


# Records every text the notebook review's bar shows, so a progress that is quick to pass
# is still seen.
WATCH_BAR = """() => {
  window.__rdBar = [];
  new MutationObserver(() => {
    for (const el of document.querySelectorAll('.jp-RubberDuck-notebookReview-label')) {
      window.__rdBar.push(el.textContent);
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""
START_REVIEW = "() => { window.jupyterapp.commands.execute('rubberduck:review-notebook'); }"


NOTEBOOK_REVIEW = "/rubberduck/api/review/notebook"


def is_notebook_review(url: str) -> bool:
    """For page.route: the lab's requests carry a cache-busting query, so no plain glob."""
    return NOTEBOOK_REVIEW in url


def wait_for_cell_models(page: Any, count: int) -> None:
    """Every cell's model is there (a windowed notebook may not have every cell in the DOM),
    so the pass started next sees the whole notebook."""
    page.wait_for_function(
        "n => window.jupyterapp.shell.currentWidget?.content?.widgets?.length === n", arg=count
    )


def review_requests(page: Any) -> list[str]:
    """The URLs of the review requests the page sends from now on."""
    sent: list[str] = []
    page.on(
        "request",
        lambda request: (
            sent.append(request.url) if "/rubberduck/api/review/" in request.url else None
        ),
    )
    return sent


def test_review_the_notebook_with_progress_and_jump_from_the_summary(
    page: Any, lab_server: Any, screenshot: Any
) -> None:
    sources = [f"value_{n} = {n}" for n in range(30)]
    sources[3] = "print(late.shape)"  # NB101: defined below
    sources[9] = "late = make()\nlate.show"  # F821 and RD104
    # In the second slice: names bound in the first slice are known there.
    sources[27] = "print(value_2 + value_26)"
    write_notebook(lab_server.root, "whole.ipynb", sources)
    notebook = open_notebook(page, lab_server, "whole.ipynb", wait_for_kernel=False)
    # Started while the notebook still loads, the pass would see only the cells so far.
    wait_for_cell_models(page, 30)
    notebook.locator(".jp-Cell").nth(11).wait_for()
    sent = review_requests(page)
    page.evaluate(WATCH_BAR)
    page.evaluate(START_REVIEW)
    bar = page.locator(".jp-NotebookPanel:visible .jp-RubberDuck-notebookReview")
    summary = bar.locator(".jp-RubberDuck-notebookReview-title", has_text="Reviewed 30")
    try:
        summary.wait_for(timeout=120_000)
    finally:
        screenshot("notebook-review-after-run")
    seen = page.evaluate("() => window.__rdBar")
    # Slices of 25: the progress moves 0 -> 25 -> 30, in cells.
    assert "Reviewing cells: 0 / 30" in seen and "Reviewing cells: 25 / 30" in seen
    assert [url for url in sent if "review/cell" in url] == []
    assert sum(NOTEBOOK_REVIEW in url for url in sent) == 2
    rows = bar.locator(".jp-RubberDuck-notebookReview-row")
    assert rows.count() == 2
    assert "NB101" in rows.first.inner_text()
    assert "F821" in rows.nth(1).inner_text() and "RD104" in rows.nth(1).inner_text()
    # The cross-cell finding (from the last slice's answer) shows on its cell too.
    cells = notebook.locator(".jp-Cell")
    cells.nth(3).locator(".jp-RubberDuck-finding[data-code='NB101']").wait_for()
    # Only the two cells with findings carry a review; the 28 clean ones stay as they were.
    assert notebook.locator(".jp-RubberDuck-cellReview").count() == 2
    dark_then_light(page, screenshot, "notebook-review-summary")
    rows.nth(1).get_by_role("button", name="Go to cell 10: 1 error, 1 warning").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')]"
        ".findIndex(c => c.classList.contains('jp-mod-active')) === 9"
    )
    assert cells.nth(9).is_visible()


def test_cancel_aborts_the_slice_in_flight_and_sends_no_other(page: Any, lab_server: Any) -> None:
    write_notebook(lab_server.root, "cancel.ipynb", [f"x_{n} = {n}" for n in range(100)])
    open_notebook(page, lab_server, "cancel.ipynb", wait_for_kernel=False)
    wait_for_cell_models(page, 100)
    sent = review_requests(page)
    # The second slice's request gets no answer until the test ends: the summary can only
    # show if Cancel aborts it (a pass that waited for it would never end).
    routed: list[str] = []
    held: list[Any] = []

    def hold_the_second(route: Any) -> None:
        routed.append(route.request.url)
        if len(routed) == 2:
            held.append(route)
        else:
            route.continue_()

    page.route(is_notebook_review, hold_the_second)
    try:
        page.evaluate(START_REVIEW)
        bar = page.locator(".jp-NotebookPanel:visible .jp-RubberDuck-notebookReview")
        bar.locator(
            ".jp-RubberDuck-notebookReview-label", has_text="Reviewing cells: 25 / 100"
        ).wait_for()
        bar.get_by_role("button", name="Cancel the notebook review").click()
        bar.locator(
            ".jp-RubberDuck-notebookReview-title", has_text="Review cancelled after 25 of 100 cells"
        ).wait_for(timeout=10_000)
        assert len(held) == 1
        at_cancel = list(sent)
        page.wait_for_timeout(1000)
        assert sent == at_cancel, "nothing was sent after the cancel"
        notebook_requests = sum(NOTEBOOK_REVIEW in url for url in sent)
        assert notebook_requests == 2 < 4  # the answered slice and the aborted one
        assert [url for url in sent if "review/cell" in url] == []
    finally:
        for route in held:
            with contextlib.suppress(Exception):  # the page dropped the request already
                route.continue_()
        page.unroute(is_notebook_review)


def test_a_busy_server_says_when_to_try_again(page: Any, lab_server: Any) -> None:
    write_notebook(lab_server.root, "busy.ipynb", ["a = 1", "print(a)"])
    open_notebook(page, lab_server, "busy.ipynb", wait_for_kernel=False)
    wait_for_cell_models(page, 2)
    # What the server answers when its 2 static passes are running (handlers/review.py).
    busy = {"code": "busy", "message": "2 notebook reviews are running; retry in a second."}
    page.route(
        is_notebook_review,
        lambda route: route.fulfill(
            status=429,
            headers={"Retry-After": "1"},
            content_type="application/json",
            body=json.dumps(busy),
        ),
    )
    try:
        page.evaluate(START_REVIEW)
        bar = page.locator(".jp-NotebookPanel:visible .jp-RubberDuck-notebookReview")
        alert = bar.get_by_role("alert")
        alert.wait_for()
        assert alert.inner_text() == (
            "2 notebook reviews are running; retry in a second. Try again in 1 s."
        )
        assert alert.get_attribute("data-retry-after") == "1"
        bar.get_by_role("button", name="Close the notebook review summary").click()
        bar.wait_for(state="hidden")
    finally:
        page.unroute(is_notebook_review)


def test_review_on_run_is_off_by_default_and_static_only_once_switched_on(
    page: Any, lab_server: Any, fake_llm: Any, open_rubberduck_settings: Any, screenshot: Any
) -> None:
    write_notebook(lab_server.root, "onrun.ipynb", [CELL, "print('next')"])
    notebook = open_notebook(page, lab_server, "onrun.ipynb", wait_for_kernel=False)
    reviews: list[str] = []
    page.on(
        "request",
        lambda request: reviews.append(request.url) if "review/cell" in request.url else None,
    )
    cell = notebook.locator(".jp-Cell").first
    # Keys sent before the kernel is up would run nothing.
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)

    def run_first_cell(runs: int) -> None:
        cell.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        # The kernel really ran it: the prompt shows the execution count.
        cell.locator(f".jp-InputPrompt:has-text('[{runs}]')").wait_for(timeout=60_000)

    run_first_cell(1)
    page.wait_for_timeout(1000)  # an auto review would have been sent by now
    assert reviews == []
    assert cell.locator(".jp-RubberDuck-cellReview").count() == 0

    # Switched on in the Settings Editor; the open notebook follows without a reload.
    open_rubberduck_settings()
    checkbox = page.locator("input[id$='autoReviewOnRun']")
    checkbox.wait_for()
    assert not checkbox.is_checked()
    checkbox.check()
    lab_server.wait_saved(page, "autoReviewOnRun", True)
    page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text="onrun.ipynb").click()
    asked = len(fake_llm.requests)
    run_first_cell(2)
    finding = cell.locator(".jp-RubberDuck-cellReview .jp-RubberDuck-finding[data-code='RD103']")
    finding.wait_for()
    screenshot("cell-review-on-run")
    assert len(reviews) == 1
    # Static findings only: running a cell never calls the model.
    page.wait_for_timeout(500)
    assert len(fake_llm.requests) == asked
    assert cell.locator(".jp-RubberDuck-cellReview-modelText").count() == 0
    lab_server.reset_settings()
