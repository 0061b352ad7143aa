"""Inline completion in a real lab: ghost text from the fake provider in a notebook cell,
Tab accepts it, typing again cancels the request upstream, Escape dismisses it and keeps
edit mode; the provider gets the earlier cells and the kernel's variable names, and no
secret. Light and dark screenshots: test-artifacts/browser/inline-completion-*."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.browser.notebook_page import (
    EXPOSE_APP,
    SOURCES,
    fake_model_env,
    open_notebook,
    run_cell,
    write_notebook,
)

pytestmark = pytest.mark.browser

GHOST = ".jp-GhostText"
TOGGLE = "#rubberduck-completion-status"
# Matches the server's `sk-` rule: it must be redacted before it reaches the provider.
SECRET = "sk-proj-Zq8vR2mT5yW1xK4nB7cD0fGhJ"
CELLS = [
    f'OPENAI_KEY = "{SECRET}"',
    # A variable whose name no cell spells out: only the kernel's list can tell it.
    'globals()["quiet_" + "rows"] = [3, 1, 2]\nsales = [10, 20, 30]',
    "",
]


@pytest.fixture(scope="module")
def lab_server(fake_llm_server: Any, start_lab: Any) -> Any:
    return start_lab(
        fake_model_env(fake_llm_server),
        [EXPOSE_APP, "--RubberDuckApp.completion_model=openai/fake-model"],
    )


def put_settings(lab: Any, raw: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{lab.url}lab/api/settings/rubberduck-jupyter:plugin",
        method="PUT",
        data=json.dumps({"raw": json.dumps(raw)}).encode(),
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


def completion_requests(fake: Any) -> list[str]:
    """The user messages of the completion prompts the fake received (chat path)."""
    out = []
    for request in fake.requests:
        messages = request.get("body", request).get("messages") or []
        if messages and "code completion engine" in str(messages[0].get("content", "")):
            out.append(str(messages[-1].get("content", "")))
    return out


def prepared_notebook(page: Any, lab: Any, name: str) -> Any:
    write_notebook(lab.root, name, CELLS)
    notebook = open_notebook(page, lab, name)
    page.locator(TOGGLE, has_text="Complete: on").wait_for()
    run_cell(page, notebook, 0, 1)
    run_cell(page, notebook, 1, 2)
    editor = notebook.locator(".jp-Cell").nth(2).locator(".cm-content")
    editor.click()
    return editor


def wait_for(page: Any, predicate: Any, what: str, tries: int = 100) -> None:
    for _ in range(tries):
        if predicate():
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"never happened: {what}")


def light_and_dark(page: Any, screenshot: Any, name: str) -> None:
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


def test_ghost_text_appears_and_tab_accepts_it(
    page: Any, lab_server: Any, fake_llm: Any, screenshot: Any
) -> None:
    fake_llm.set_replies(["al = sum(sales) + len(quiet_rows)"])
    editor = prepared_notebook(page, lab_server, "accept.ipynb")
    # The front end reads the kernel's variables after each run, in the background (a
    # completion never waits for them): give that read time (at most 1.5 s by design).
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for()
    page.wait_for_timeout(2000)
    page.keyboard.type("tot")
    ghost = page.locator(GHOST)
    # Streamed a few words per chunk, then the whole text.
    page.locator(GHOST, has_text="al = sum(sales) + len(quiet_rows)").wait_for()
    asked = len(completion_requests(fake_llm))
    # Typing along the ghost text consumes it: no new request, the rest still shows.
    page.keyboard.type("al")
    page.locator(GHOST, has_text=" = sum(sales)").wait_for()
    page.wait_for_timeout(600)  # past the debounce
    assert len(completion_requests(fake_llm)) == asked
    assert page.locator(GHOST).inner_text().startswith(" = sum(sales)")
    light_and_dark(page, screenshot, "inline-completion-ghost")
    editor.click()  # the theme switch may have moved the focus
    page.keyboard.press("End")
    if not page.locator(GHOST).count():
        # Clicking dismissed it: the cache brings it back on the next fetch (Alt+\).
        page.keyboard.press("Alt+Backslash")
        ghost.wait_for()
    page.keyboard.press("Tab")
    wait_for(
        page,
        lambda: page.evaluate(SOURCES)[2] == "total = sum(sales) + len(quiet_rows)",
        "Tab accepted the completion",
    )
    prompts = completion_requests(fake_llm)
    assert prompts, fake_llm.requests
    prompt = prompts[0]
    assert "sales = [10, 20, 30]" in prompt  # an earlier cell
    assert "quiet_rows" in prompt  # a variable only the kernel knows
    assert "tot<CURSOR>" in prompt
    assert SECRET not in json.dumps(fake_llm.requests)


def test_typing_cancels_the_request_upstream(page: Any, lab_server: Any, fake_llm: Any) -> None:
    # A slow stream, and a long debounce: after the next key, no new request goes for
    # 2 s, so the stream count can only drop through the cancel.
    put_settings(lab_server, {"inlineCompletionDebounceMs": 2000})
    try:
        fake_llm.update_settings({"chunk_delay": 0.5})
        fake_llm.set_replies([" ".join(["x"] * 40)])
        prepared_notebook(page, lab_server, "cancel.ipynb")
        page.keyboard.type("tot")
        wait_for(page, lambda: fake_llm.active_streams == 1, "the stream opened", tries=200)
        # The first chunks show while the rest still streams (an incomplete item).
        page.locator(GHOST, has_text="x").wait_for()
        assert fake_llm.active_streams == 1
        page.keyboard.type("a")
        # The stale ghost text goes at once, and the stream closes upstream (the fake
        # notices at its next chunk, up to 0.5 s later).
        page.locator(GHOST).first.wait_for(state="detached", timeout=1_500)
        wait_for(page, lambda: fake_llm.active_streams == 0, "typing closed the stream")
    finally:
        put_settings(lab_server, {})


def test_escape_dismisses_and_keeps_edit_mode(page: Any, lab_server: Any, fake_llm: Any) -> None:
    fake_llm.set_replies(["al = 1"])
    prepared_notebook(page, lab_server, "escape.ipynb")
    page.keyboard.type("tot")
    page.locator(GHOST).wait_for()
    page.keyboard.press("Escape")
    page.locator(GHOST).wait_for(state="detached")
    assert page.locator(".jp-Notebook.jp-mod-editMode").count() == 1
    assert page.evaluate(SOURCES)[2] == "tot"
    # Typing on goes on in the cell (edit mode kept the focus).
    page.keyboard.type("x")
    assert page.evaluate(SOURCES)[2] == "totx"


def test_toggle_turns_completion_off_and_on(
    page: Any, lab_server: Any, fake_llm: Any, screenshot: Any
) -> None:
    prepared_notebook(page, lab_server, "toggle.ipynb")
    toggle = page.locator(TOGGLE)
    try:
        toggle.focus()
        page.keyboard.press("Enter")
        toggle.filter(has_text="Complete: off").wait_for()
        wait_for(page, lambda: saved(lab_server).get("inlineCompletionEnabled") is False, "saved")
        assert toggle.get_attribute("aria-pressed") == "false"
        screenshot("inline-completion-toggle-off")
        before = len(completion_requests(fake_llm))
        page.locator(".jp-Cell").nth(2).locator(".cm-content").click()
        page.keyboard.type("tot")
        page.wait_for_timeout(800)  # past the debounce: nothing may go while off
        assert len(completion_requests(fake_llm)) == before
        toggle.click()
        toggle.filter(has_text="Complete: on").wait_for()
    finally:
        lab_server.reset_settings()


def saved(lab: Any) -> dict[str, Any]:
    """The saved settings, or {} while JupyterLab is still writing the file."""
    try:
        return lab.saved_settings()
    except ValueError:
        return {}


def test_ghost_text_in_a_python_file(page: Any, lab_server: Any, fake_llm: Any) -> None:
    fake_llm.set_replies(["rn a + b"])
    (lab_server.root / "helpers.py").write_text("def add(a, b):\n    ")
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    page.evaluate(
        "() => window.jupyterapp.commands.execute('docmanager:open',"
        " {path: 'helpers.py', factory: 'Editor'})"
    )
    editor = page.locator(".jp-FileEditor .cm-content")
    editor.wait_for()
    page.locator(TOGGLE, has_text="Complete: on").wait_for()
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("retu")
    page.locator(GHOST, has_text="rn a + b").wait_for()
    page.keyboard.press("Tab")
    text = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.model.sharedModel.getSource()"
    )
    assert text == "def add(a, b):\n    return a + b"
    prompt = completion_requests(fake_llm)[-1]
    assert "helpers.py" in prompt
    assert "retu<CURSOR>" in prompt
