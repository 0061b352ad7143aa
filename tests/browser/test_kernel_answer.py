"""A `%%duck` answer in a cell output, in a real lab with a real kernel: the kernel
publishes the answer bundle by hand (`display(..., raw=True, display_id=...)`) and updates
it in place from streaming to done; the one renderer shows the Markdown and the code
block, Stop posts the turn's id to rubberduck/api/chat/cancel, Insert below adds the code
as a cell right after the answer's cell, Copy copies, a citation opens its file; an
answer from another server cannot be stopped, and bundles that are not answers render as
text without a JS error. Light and dark screenshots: test-artifacts/browser/kernel-answer-*."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.browser.notebook_page import (
    ANSWER,
    EXPOSE_APP,
    SOURCES,
    fake_model_env,
    open_notebook,
    run_cell,
    write_notebook,
)

pytestmark = pytest.mark.browser

MIME = "application/vnd.rubberduck.answer.v1+json"
CODE = "rows = load('sales.csv')\nprint(len(rows))"
PARTIAL = "Reading the **error** so far"
MORE = (
    "The frame is empty because `load` skips the header [1]. Count the rows:\n\n"
    f"```python\n{CODE}\n```"
)
DONE = f"{MORE}\n\nThen check the *header* line."
HELPER = "def load(path):\n    with open(path) as handle:\n        return handle.readlines()[1:]\n"
# ServerConnection adds a cache-busting query.
CANCEL = re.compile(r"/rubberduck/api/chat/cancel(\?\d*)?$")


@pytest.fixture(scope="module")
def lab_server(fake_llm_server: Any, start_lab: Any) -> Any:
    return start_lab(fake_model_env(fake_llm_server), [EXPOSE_APP])


def setup_cell(server_url: str) -> str:
    """Kernel code: `answer(status, markdown, **fields)` builds a bundle."""
    base = {
        "version": 1,
        "server_url": server_url,
        "turn_id": "turn-1",
        "conversation_id": "kernel-1",
        "title": "Review of In [1]",
        "steps": [
            {
                "step": "1",
                "title": "Reading the error",
                "status": "finished",
                "text": "The *frame* has no rows.",
            }
        ],
        "citations": [
            {
                "n": 1,
                "path": "helper.py",
                "kind": "file",
                "cell": None,
                "start_line": 1,
                "end_line": 3,
                "title": "load",
                "score": 0.8,
            }
        ],
        "suggestions": [],
        "notices": [],
        "error": None,
        "engine": None,
        "model": None,
        "usage": None,
        "cost_usd": None,
    }
    return (
        "import json\n"
        "from IPython.display import display, update_display\n"
        f"BASE = json.loads({json.dumps(json.dumps(base))})\n"
        "def answer(status, markdown, **fields):\n"
        "    data = dict(BASE, status=status, markdown=markdown, **fields)\n"
        "    text = markdown if isinstance(markdown, str) else repr(markdown)\n"
        f"    return {{'text/plain': text, 'text/markdown': text, {MIME!r}: data}}\n"
    )


def themes(page: Any, screenshot: Any, target: Any, name: str) -> None:
    target.scroll_into_view_if_needed()
    for theme, light, suffix in (
        ("JupyterLab Light", "true", "light"),
        ("JupyterLab Dark", "false", "dark"),
    ):
        page.evaluate(
            "theme => window.jupyterapp.commands.execute('apputils:change-theme', {theme})",
            theme,
        )
        page.wait_for_selector(f"body[data-jp-theme-light='{light}']", state="attached")
        page.wait_for_timeout(300)
        screenshot(f"kernel-answer-{name}-{suffix}")
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme',"
        " {theme: 'JupyterLab Light'})"
    )
    page.wait_for_selector("body[data-jp-theme-light='true']", state="attached")


def test_an_answer_streams_in_place_then_inserts_copies_and_cites(
    page: Any, lab_server: Any, screenshot: Any
) -> None:
    (lab_server.root / "helper.py").write_text(HELPER)
    done = (
        "update_display(answer('done', DONE, model='openai/fake-model', engine='analysis',"
        " notices=[{'code': 'no_index', 'message': 'This project has no index yet.'}]),"
        " raw=True, display_id='rd-1')"
    )
    write_notebook(
        lab_server.root,
        "answer.ipynb",
        [
            setup_cell(lab_server.url)
            + f"DONE = {DONE!r}\n"
            + f"display(answer('streaming', {PARTIAL!r}), raw=True, display_id='rd-1');",
            f"update_display(answer('streaming', {MORE!r}), raw=True, display_id='rd-1')",
            done,
            "print('after')",
        ],
    )
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab_server.url)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    notebook = open_notebook(page, lab_server, "answer.ipynb")
    cells = notebook.locator(".jp-Cell")

    run_cell(page, notebook, 0, 1)
    first = cells.nth(0)
    answer = first.locator(ANSWER)
    answer.locator("strong", has_text="error").wait_for()
    assert answer.get_attribute("data-status") == "streaming"
    assert answer.locator(".jp-RubberDuck-kernelAnswer-title").inner_text() == "Review of In [1]"
    # The step is folded; the answer is not.
    step = answer.locator("details.jp-RubberDuck-step")
    assert step.count() == 1 and not step.evaluate("el => el.open")
    assert "Reading the error" in step.locator("summary").inner_text()

    screenshot("kernel-answer-streaming-light")
    # A step the user opens stays open through the updates.
    step.locator("summary").click()
    assert step.evaluate("el => el.open")

    # Stop posts the turn's id (the request is answered here: the endpoint is not needed).
    posted: list[Any] = []

    def cancel(route: Any) -> None:
        posted.append(route.request.post_data_json)
        route.fulfill(status=200, content_type="application/json", body='{"cancelled": true}')

    page.route(CANCEL, cancel)
    stop = answer.get_by_role("button", name="Stop this answer")
    with page.expect_request(CANCEL) as request:
        stop.click()
    assert request.value.method == "POST"
    assert posted == [{"id": "turn-1"}]
    stopping = answer.locator(".jp-RubberDuck-kernelAnswer-stop")
    page.wait_for_function("el => el.textContent === 'Stopping…'", arg=stopping.element_handle())
    assert stopping.is_disabled()

    # The update replaces the answer in the same renderer.
    run_cell(page, notebook, 1, 2)
    answer.locator(".jp-RubberDuck-codeblock").wait_for()
    # Blocks that did not change are kept as they are (their buttons, focus, "Copied").
    answer.locator(".jp-RubberDuck-codeblock").evaluate("el => { el.__kept = true; }")
    run_cell(page, notebook, 2, 3)
    page.wait_for_function("el => el.dataset.status === 'done'", arg=answer.element_handle())
    assert first.locator(ANSWER).count() == 1
    assert notebook.locator(ANSWER).count() == 1
    text = answer.locator(".jp-RubberDuck-kernelAnswer-markdown").inner_text()
    assert "so far" not in text and "skips the header" in text
    assert answer.locator("em", has_text="header").count() == 1
    assert answer.locator(".jp-RubberDuck-kernelAnswer-stop").is_hidden()
    assert step.evaluate("el => el.open")
    step.locator("summary").click()
    # The notice's button is the page's own command for its code.
    notice = answer.locator(".jp-RubberDuck-info[data-code='no_index']")
    assert notice.get_by_role("button", name="Index this project").is_visible()
    status = answer.locator(".jp-RubberDuck-kernelAnswer-status")
    assert status.inner_text() == "openai/fake-model · analysis engine"
    assert answer.locator(".jp-RubberDuck-codeblock").evaluate("el => el.__kept === true")
    # ...and the step the user opened kept its place, state and focus.
    assert step.locator("summary").evaluate("el => el === document.activeElement")
    code = answer.locator(".jp-RubberDuck-codeblock pre code")
    assert code.inner_text().rstrip("\n") == CODE
    # Highlighted once done (the token spans keep the text).
    code.locator("span").first.wait_for()
    themes(page, screenshot, answer, "done")

    # Insert below: a new code cell right after the answer's cell, active.
    cells.nth(3).locator(".jp-InputArea").click()  # another cell active: the target is ours
    answer.get_by_role(
        "button", name="Insert code block 1 (python) as a new cell below this cell"
    ).click()
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.content.model.cells.length === 5"
    )
    sources = page.evaluate(SOURCES)
    assert sources[1] == CODE and sources[2].startswith("update_display") and len(sources) == 5
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.content.activeCellIndex") == 1
    # One undo in command mode takes it back, as for any edit.
    page.keyboard.press("Escape")
    page.keyboard.press("z")
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.content.model.cells.length === 4"
    )

    # Copy: the clipboard has exactly the code; the block says so.
    answer.get_by_role("button", name="Copy code block 1 (python) to the clipboard").click()
    block_status = answer.locator(".jp-RubberDuck-codeblock-status")
    page.wait_for_function("el => el.textContent === 'Copied'", arg=block_status.element_handle())
    assert page.evaluate("() => navigator.clipboard.readText()") == CODE

    # The citation opens the cited file in a tab of its own.
    answer.locator("a.jp-RubberDuck-cite").click()
    page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text="helper.py").wait_for()
    assert errors == []


def test_a_foreign_answer_cannot_be_stopped_and_bad_bundles_render_as_text(
    page: Any, lab_server: Any, screenshot: Any
) -> None:
    setup = setup_cell("http://127.0.0.1:1/")
    write_notebook(
        lab_server.root,
        "odd.ipynb",
        [
            setup
            + "display(answer('streaming', 'From **elsewhere**', notices=[{'code': 'no_index',"
            " 'message': 'No index.', 'action': {'command': 'help:about', 'label': 'Index'}}]),"
            " raw=True, display_id='f')\n"
            + "display(answer('streaming', 'Future', version=99), raw=True, display_id='v')\n"
            + "display(answer('done', 42), raw=True, display_id='n')\n"
            + "display(answer('error', '', error={'code': 'rate_limited',"
            " 'message': 'Too many requests.', 'retry_after': 3}), raw=True, display_id='e')\n"
            + "display(answer('stopped', 'Cut <img src=x onerror=alert(1)> short'),"
            " raw=True, display_id='s');",
        ],
    )
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if CANCEL.search(r.url) else None)
    notebook = open_notebook(page, lab_server, "odd.ipynb")
    run_cell(page, notebook, 0, 1)
    answers = notebook.locator(ANSWER)
    page.wait_for_function(
        "() => document.querySelectorAll('.jp-RubberDuck-kernelAnswer').length === 5"
    )
    foreign, newer, numeric, failed, stopped = (answers.nth(i) for i in range(5))

    foreign.locator("strong", has_text="elsewhere").wait_for()
    stop = foreign.locator(".jp-RubberDuck-kernelAnswer-stop")
    assert stop.is_visible() and stop.is_disabled()
    assert "another RubberDuck server" in (stop.get_attribute("title") or "")
    stop.click(force=True)
    # No button on another server's notice, and never one the bundle names.
    assert foreign.locator(".jp-RubberDuck-info[data-code='no_index']").is_visible()
    assert foreign.locator(".jp-RubberDuck-info button").count() == 0

    note = newer.locator(".jp-RubberDuck-kernelAnswer-note")
    assert "needs a newer extension" in note.inner_text()
    assert newer.locator(".jp-RubberDuck-kernelAnswer-plain").inner_text() == "Future"
    assert numeric.locator(".jp-RubberDuck-kernelAnswer-plain").inner_text() == "42"
    assert numeric.locator(".jp-RubberDuck-kernelAnswer-body").is_hidden()

    failed_status = failed.locator(".jp-RubberDuck-kernelAnswer-status")
    assert failed_status.get_attribute("data-kind") == "error"
    assert failed_status.inner_text() == "Too many requests. (retry in 3 s)"
    assert stopped.locator(".jp-RubberDuck-kernelAnswer-status").inner_text() == "Stopped"
    # The kernel's HTML is sanitized: no live image, no handler.
    assert stopped.locator("img").count() == 0
    themes(page, screenshot, foreign, "odd")
    assert requests == [] and errors == []
