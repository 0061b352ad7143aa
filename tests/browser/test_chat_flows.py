"""What a new user hit in the sidebar, tried in a real JupyterLab and browser against the
fake provider: the conversation list's layout and keys, the wait for the first token, a
message typed while an answer streams, the empty state's starting points, the command
list, titles, "Fix this error" and the chat's settings."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.browser.notebook_page import EXPOSE_APP, fake_model_env, open_notebook, write_notebook

pytestmark = pytest.mark.browser

ANSWERS = '.jp-RubberDuck-message[data-role="assistant"]'
USERS = '.jp-RubberDuck-message[data-role="user"]'
FAILING_CELL = "values = [1, 2, 3]\ntotal = sum(value)"


@pytest.fixture(scope="module")
def lab_server(fake_llm_server: Any, start_lab: Any) -> Any:
    return start_lab(fake_model_env(fake_llm_server), [EXPOSE_APP])


def fake_requests(fake: Any) -> list[dict[str, Any]]:
    root = fake.base_url.removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/_fake/requests", timeout=10) as response:
        return [r for r in json.loads(response.read()) if "messages" in r]


def ask(panel: Any, question: str) -> None:
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill(question)
    box.press("Enter")


def ask_and_wait(panel: Any, question: str) -> Any:
    before = panel.locator(".jp-RubberDuck-usage").count()
    ask(panel, question)
    # The lab's first answer imports the provider library: slow on a busy machine.
    panel.locator(".jp-RubberDuck-usage").nth(before).wait_for(timeout=120_000)
    return panel.locator(ANSWERS).last


def test_the_list_stays_tall_beside_a_long_answer_and_moves_with_arrow_keys(
    page: Any, open_sidebar: Any, fake_llm: Any
) -> None:
    long_answer = "\n\n".join(f"Paragraph {n} of a long answer." for n in range(150))
    fake_llm.set_replies(["A list is mutable.", "A dict maps keys.", long_answer])
    panel = open_sidebar("fake-model")
    new = panel.locator("button.jp-RubberDuck-new")
    for question in ("What is a list?", "What is a dict?", "Write a long text"):
        new.click()
        ask_and_wait(panel, question)

    toggle = panel.locator("button.jp-RubberDuck-conversations-toggle")
    toggle.click()
    listing = panel.locator(".jp-RubberDuck-conversations")
    listing.wait_for(state="visible")
    rows = listing.locator(".jp-RubberDuck-conversation")
    rows.nth(2).wait_for()
    # The long conversation does not squeeze the list: it shows every row it holds
    # (up to its cap), not a ~10 px sliver.
    height = listing.evaluate("el => el.getBoundingClientRect().height")
    rows_height = listing.locator(".jp-RubberDuck-conversation-list").evaluate(
        "el => el.getBoundingClientRect().height"
    )
    panel_height = panel.evaluate("el => el.getBoundingClientRect().height")
    assert height >= min(rows_height, 0.45 * panel_height) - 2, (height, rows_height)
    assert height > 60

    # One Tab stop: the current row has focus; arrows move, Enter opens.
    focused_title = (
        "() => document.activeElement.closest('.jp-RubberDuck-conversation')"
        "?.querySelector('.jp-RubberDuck-conversation-title')?.textContent"
    )
    page.wait_for_function(f"{focused_title} === 'Write a long text'")
    assert listing.locator("button[tabindex='0']").count() == 1
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused_title) == "What is a dict?"
    # The row's buttons are one arrow away, then back.
    page.keyboard.press("ArrowRight")
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") == (
        "Rename “What is a dict?”"
    )
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused_title) == "What is a list?"
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    listing.wait_for(state="hidden")
    panel.locator(USERS, has_text="What is a dict?").wait_for()
    assert toggle.inner_text().strip() == "What is a dict?"

    # The command's shortcut opens the list from anywhere, focus on the current row.
    page.locator("#jp-main-dock-panel").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+Alt+h")
    listing.wait_for(state="visible")
    page.wait_for_function(f"{focused_title} === 'What is a dict?'")
    page.keyboard.press("Escape")
    listing.wait_for(state="hidden")


def test_thinking_then_a_queued_message_goes_out_when_the_answer_ends(
    page: Any, open_sidebar: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(
        [" ".join(f"word{n}" for n in range(40)), "The second answer.", "never sent"]
    )
    fake_llm.update_settings({"slow_first_byte_seconds": 1.5, "chunk_delay": 0.05})
    panel = open_sidebar("fake-model")
    panel.locator("button.jp-RubberDuck-new").click()
    ask(panel, "First question")
    thinking = panel.locator(".jp-RubberDuck-thinking")
    thinking.wait_for()
    # Read at once: the first token may follow soon after.
    assert thinking.evaluate("el => [el.textContent, el.getAttribute('aria-live')]") == [
        "Thinking…",
        "polite",
    ]
    # It goes with the first token.
    panel.locator(ANSWERS).last.locator(".jp-RubberDuck-markdown", has_text="word0").wait_for(
        timeout=120_000
    )
    assert thinking.count() == 0

    # Enter while it streams queues the message (shown, removable), not drops it.
    ask(panel, "Second question")
    ask(panel, "Third question")
    queued = panel.locator(".jp-RubberDuck-queued")
    assert queued.locator(".jp-RubberDuck-queued-text").all_inner_texts() == [
        "Second question",
        "Third question",
    ]
    assert panel.locator("textarea.jp-RubberDuck-input").input_value() == ""
    queued.nth(1).get_by_role("button", name="Remove the queued message “Third question”").click()
    assert queued.count() == 1

    # When the answer ends the queued one goes out, and only that one.
    panel.locator(USERS, has_text="Second question").wait_for(timeout=30_000)
    panel.locator(ANSWERS, has_text="The second answer.").wait_for(timeout=30_000)
    assert queued.count() == 0
    questions = [r["messages"][-1]["content"] for r in fake_requests(fake_llm)]
    assert any("Second question" in q for q in questions)
    assert not any("Third question" in q for q in questions)
    assert panel.locator(USERS).all_inner_texts() == ["First question", "Second question"]


def test_empty_state_command_list_titles_and_font_size(
    page: Any,
    open_sidebar: Any,
    open_rubberduck_settings: Any,
    fake_llm: Any,
    lab_server: Any,
    screenshot: Any,
) -> None:
    write_notebook(lab_server.root, "etl.ipynb", ["rows = load()", "total = sum(rows)"])
    notebook = open_notebook(page, lab_server, "etl.ipynb", wait_for_kernel=False)
    panel = open_sidebar("fake-model")
    panel.locator("button.jp-RubberDuck-new").click()
    empty = panel.locator(".jp-RubberDuck-empty")
    empty.wait_for()
    starts = empty.get_by_role("group", name="Starting points")
    labels = starts.locator("button:visible").all_inner_texts()
    # "Index this project" is offered because the index plugin's command exists (it is
    # not clicked here: this lab has no embedder for a real indexing run).
    assert labels == [
        "Explain this notebook",
        "Fix the last error",
        "Review the active cell",
        "Index this project",
    ]
    assert page.evaluate("() => window.jupyterapp.commands.hasCommand('rubberduck:index-project')")
    screenshot("chat-empty-state")

    # The command list says what each command does.
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill("/rev")
    option = panel.locator('.jp-RubberDuck-slash-option[data-command="/review"]')
    option.wait_for()
    assert option.locator(".jp-RubberDuck-slash-description").inner_text().strip()
    box.fill("")

    # "Review the active cell" from the second cell: the title says what it is about.
    fake_llm.set_replies(["Looks fine."])
    notebook.locator(".jp-Cell").nth(1).locator(".jp-InputPrompt").click()
    starts.get_by_role("button", name="Review the active cell").click()
    panel.locator(USERS, has_text="/review this cell").wait_for()
    panel.locator(".jp-RubberDuck-usage").first.wait_for(timeout=120_000)
    toggle = panel.locator("button.jp-RubberDuck-conversations-toggle")
    page.wait_for_function(
        "el => el.textContent.includes('Review of cell 2 in etl.ipynb')",
        arg=toggle.element_handle(),
    )
    assert empty.is_hidden()

    # The chat's font size applies as the setting changes, no reload.
    open_rubberduck_settings()
    field = page.locator("input[id$='chatFontSize']")
    field.fill("20")
    field.press("Tab")
    page.wait_for_function(
        "() => getComputedStyle(document.querySelector('.jp-RubberDuck-input')).fontSize === '20px'"
    )
    log = panel.locator(".jp-RubberDuck-messages")
    assert log.evaluate("el => getComputedStyle(el).fontSize") == "20px"
    field.fill("0")
    field.press("Tab")
    page.wait_for_function(
        "() => getComputedStyle(document.querySelector('.jp-RubberDuck-input')).fontSize !== '20px'"
    )


def test_fix_this_error_goes_to_its_notebooks_conversation(
    page: Any, open_sidebar: Any, fake_llm: Any, lab_server: Any
) -> None:
    fake_llm.set_replies(["A tuple is immutable."])
    panel = open_sidebar("fake-model")
    panel.locator("button.jp-RubberDuck-new").click()
    ask_and_wait(panel, "What is a tuple?")

    write_notebook(lab_server.root, "fix_home.ipynb", [FAILING_CELL])
    notebook = open_notebook(page, lab_server, "fix_home.ipynb", wait_for_kernel=False)
    panel = open_sidebar("fake-model")
    # The restored conversation is the unrelated one.
    panel.locator(USERS, has_text="What is a tuple?").wait_for()
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)
    cell = notebook.locator(".jp-Cell").first
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+Enter")
    cell.locator(".jp-OutputArea-output", has_text="NameError").wait_for(timeout=60_000)

    fake_llm.set_replies(["Use `values`.", "Still `values`."])
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Alt+f")
    user = panel.locator(USERS).last
    page.wait_for_function(
        "el => el.textContent === 'Fix the NameError in cell 1'", arg=user.element_handle()
    )
    # A conversation of its own, not the tuple one.
    assert panel.locator(USERS).count() == 1
    panel.locator(".jp-RubberDuck-usage").first.wait_for(timeout=120_000)
    toggle = panel.locator("button.jp-RubberDuck-conversations-toggle")
    page.wait_for_function(
        "el => el.textContent.includes('Fix the NameError')", arg=toggle.element_handle()
    )

    # From another conversation, the next fix goes back to that notebook's one.
    panel.locator("button.jp-RubberDuck-new").click()
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Alt+f")
    panel.locator(USERS).nth(1).wait_for()
    assert panel.locator(USERS).all_inner_texts() == [
        "Fix the NameError in cell 1",
        "Fix the NameError in cell 1",
    ]


def test_screenshots_of_the_sidebar_in_light_and_dark(
    page: Any, open_sidebar: Any, fake_llm: Any, screenshot: Any
) -> None:
    fake_llm.set_replies(["A **set** holds unique items:\n\n```python\ns = {1, 2}\n```"])
    panel = open_sidebar("fake-model")
    panel.locator("button.jp-RubberDuck-new").click()
    panel.locator(".jp-RubberDuck-empty").wait_for()
    screenshot("chat-empty-light")
    ask_and_wait(panel, "What is a set?")
    screenshot("chat-answer-light")
    panel.locator("button.jp-RubberDuck-conversations-toggle").click()
    panel.locator(".jp-RubberDuck-conversation").first.wait_for()
    screenshot("chat-list-light")
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme',"
        " {theme: 'JupyterLab Dark'})"
    )
    page.wait_for_selector("body[data-jp-theme-light='false']", state="attached")
    try:
        screenshot("chat-list-dark")
        page.keyboard.press("Escape")
        screenshot("chat-answer-dark")
        panel.locator("button.jp-RubberDuck-new").click()
        panel.locator(".jp-RubberDuck-empty").wait_for()
        screenshot("chat-empty-dark")
        # Theme colours only: the empty state's buttons are not left light on dark.
        background = panel.locator(".jp-RubberDuck-start").first.evaluate(
            "el => getComputedStyle(el).backgroundColor"
        )
        channels = [int(x) for x in background[background.index("(") + 1 : -1].split(",")[:3]]
        assert sum(channels) < 3 * 128, background
    finally:
        page.evaluate(
            "() => window.jupyterapp.commands.execute('apputils:change-theme',"
            " {theme: 'JupyterLab Light'})"
        )
        page.wait_for_selector("body[data-jp-theme-light='true']", state="attached")
