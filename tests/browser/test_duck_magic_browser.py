"""`%%duck` end to end in a real lab: the real magic in a real kernel against the fake
provider, its answer drawn by our renderer, and its buttons acting for real: Insert below,
Stop (through the server's cancel endpoint), Apply of a `%duck fix` suggestion."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.notebook_page import (
    ANSWER,
    EXPOSE_APP,
    fake_model_env,
    open_notebook,
    run_cell,
    sources,
    start_cell,
    write_notebook,
)

pytestmark = pytest.mark.browser

CODE = "rows = [line for line in open('sales.csv')]"


@pytest.fixture(scope="module")
def lab_server(fake_llm_server: Any, start_lab: Any) -> Any:
    return start_lab(fake_model_env(fake_llm_server), [EXPOSE_APP])


def test_an_answer_from_the_magic_inserts_its_code_below(
    page: Any, lab_server: Any, fake_llm: Any, screenshot: Any
) -> None:
    fake_llm.set_replies([f"Read it line by line:\n\n```python\n{CODE}\n```"])
    write_notebook(
        lab_server.root,
        "magic.ipynb",
        ["%load_ext rubberduck_magics", "%%duck\nhow do I read sales.csv", "print('next')"],
    )
    notebook = open_notebook(page, lab_server, "magic.ipynb")
    run_cell(page, notebook, 0, 1)
    run_cell(page, notebook, 1, 2)
    answer = notebook.locator(".jp-Cell").nth(1).locator(ANSWER)
    page.wait_for_function("el => el.dataset.status === 'done'", arg=answer.element_handle())
    assert "Read it line by line" in answer.inner_text()
    screenshot("duck-magic-answer-light")
    answer.get_by_role(
        "button", name="Insert code block 1 (python) as a new cell below this cell"
    ).click()
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.content.model.cells.length === 4"
    )
    shown = sources(page)
    assert shown[2] == CODE and shown[3] == "print('next')"


def test_stop_ends_a_streaming_answer_from_the_browser(
    page: Any, lab_server: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies([" ".join(f"word{i}" for i in range(600))])
    fake_llm.update_settings({"chunk_delay": 0.05})
    write_notebook(
        lab_server.root, "stop.ipynb", ["%load_ext rubberduck_magics", "%duck --engine explain go"]
    )
    notebook = open_notebook(page, lab_server, "stop.ipynb")
    run_cell(page, notebook, 0, 1)
    start_cell(page, 1)
    answer = notebook.locator(".jp-Cell").nth(1).locator(ANSWER)
    page.locator(f"{ANSWER}[data-status='streaming']").wait_for()
    answer.get_by_role("button", name="Stop this answer").click()
    page.locator(f"{ANSWER}[data-status='stopped']").wait_for()
    # The cell finished (the kernel is free again) and shows what arrived.
    notebook.locator(".jp-Cell").nth(1).locator(".jp-InputPrompt", has_text="[2]").wait_for()
    text = answer.inner_text()
    assert "word0" in text and "word599" not in text
    assert fake_llm.active_streams == 0


def test_apply_takes_a_fix_into_the_failing_cell(
    page: Any, lab_server: Any, fake_llm: Any, screenshot: Any
) -> None:
    fixed = "total = sum([1, 2, 3])"
    fake_llm.set_replies([f"`summ` is not defined; use `sum`:\n\n```python\n{fixed}\n```"])
    write_notebook(
        lab_server.root,
        "fix.ipynb",
        ["%load_ext rubberduck_magics", "total = summ([1, 2, 3])", "%duck fix"],
    )
    notebook = open_notebook(page, lab_server, "fix.ipynb")
    run_cell(page, notebook, 0, 1)
    run_cell(page, notebook, 1, 2)
    run_cell(page, notebook, 2, 3)
    answer = notebook.locator(".jp-Cell").nth(2).locator(ANSWER)
    page.wait_for_function("el => el.dataset.status === 'done'", arg=answer.element_handle())
    assert "NameError" in answer.inner_text()
    apply = answer.get_by_role("button", name="Apply", exact=False).first
    apply.wait_for()
    # The suggestion names the notebook the kernel belongs to, and its cell.
    assert "a/fix.ipynb [cell]" in answer.inner_text()
    screenshot("duck-magic-fix-light")
    apply.click()
    page.wait_for_function(
        "src => window.jupyterapp.shell.currentWidget.content.model.cells.get(1)"
        ".sharedModel.getSource() === src",
        arg=fixed,
    )
    assert sources(page)[1] == fixed
