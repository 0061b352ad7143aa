"""Conversations, routing, reasoning steps and slash commands in the sidebar, in a real
JupyterLab and browser against the fake provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

MESSAGES = '.jp-RubberDuck-message[data-role="assistant"]'


def ask_and_wait(panel: Any, question: str) -> Any:
    """Send a question; return its answer once the answer is done."""
    answers = panel.locator(MESSAGES)
    before = panel.locator(".jp-RubberDuck-usage").count()
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill(question)
    box.press("Enter")
    panel.locator(".jp-RubberDuck-usage").nth(before).wait_for()
    return answers.last


def conversation_row(panel: Any, title: str) -> Any:
    return panel.locator(".jp-RubberDuck-conversation").filter(
        has=panel.page.locator(".jp-RubberDuck-conversation-title", has_text=title)
    )


def open_list(panel: Any) -> Any:
    toggle = panel.locator("button.jp-RubberDuck-conversations-toggle")
    if toggle.get_attribute("aria-expanded") != "true":
        toggle.click()
    listing = panel.locator(".jp-RubberDuck-conversations")
    listing.wait_for(state="visible")
    return listing


def test_conversations_switch_rename_delete_and_survive_a_reload(
    page: Any, open_sidebar: Any, fake_llm: Any, lab_server: Any
) -> None:
    fake_llm.set_replies(["A tuple is an immutable sequence.", "A set holds unique items."])
    panel = open_sidebar("fake-model")
    answer = ask_and_wait(panel, "What is a tuple?")
    assert "immutable sequence" in answer.inner_text()
    # The router's choice, with its reason as the tooltip.
    badge = answer.locator(".jp-RubberDuck-engine")
    assert badge.inner_text() == "Answer"
    assert "a direct question" in (badge.get_attribute("title") or "")
    toggle = panel.locator("button.jp-RubberDuck-conversations-toggle")
    panel.page.wait_for_function(
        "el => el.textContent.includes('What is a tuple?')", arg=toggle.element_handle()
    )

    panel.locator("button.jp-RubberDuck-new").click()
    assert panel.locator(".jp-RubberDuck-message").count() == 0
    assert toggle.inner_text().strip() == "New conversation"
    ask_and_wait(panel, "What is a set?")

    listing = open_list(panel)
    rows = listing.locator(".jp-RubberDuck-conversation")
    rows.nth(1).wait_for()
    titles = listing.locator(".jp-RubberDuck-conversation-title").all_inner_texts()
    # Newest first; earlier tests in this module may have left more behind them.
    assert titles[:2] == ["What is a set?", "What is a tuple?"]
    current = listing.locator('.jp-RubberDuck-conversation[aria-current="true"]')
    assert current.locator(".jp-RubberDuck-conversation-title").inner_text() == "What is a set?"
    tuple_row = conversation_row(panel, "What is a tuple?")
    assert (
        "What is a tuple?" in tuple_row.locator(".jp-RubberDuck-conversation-preview").inner_text()
    )
    assert tuple_row.locator("time").inner_text() == "just now"

    # Switch: the stored conversation is drawn from the server, badge included.
    tuple_row.locator(".jp-RubberDuck-conversation-open").click()
    assert listing.is_hidden()
    user = panel.locator('.jp-RubberDuck-message[data-role="user"]')
    user.first.wait_for()
    assert user.all_inner_texts() == ["What is a tuple?"]
    restored = panel.locator(MESSAGES)
    assert "immutable sequence" in restored.inner_text()
    assert restored.locator(".jp-RubberDuck-engine").inner_text() == "Answer"
    assert "a direct question" in (
        restored.locator(".jp-RubberDuck-engine").get_attribute("title") or ""
    )
    assert restored.locator(".jp-RubberDuck-usage").inner_text().startswith("openai/fake-model")

    # Rename inline: Escape cancels, Enter saves.
    open_list(panel)
    tuple_row.locator(".jp-RubberDuck-conversation-rename").click()
    field = panel.locator("input.jp-RubberDuck-conversation-rename-input")
    field.wait_for()
    field.fill("Not this")
    field.press("Escape")
    assert field.count() == 0
    assert conversation_row(panel, "What is a tuple?").count() == 1
    tuple_row.locator(".jp-RubberDuck-conversation-rename").click()
    field.fill("Tuples explained")
    field.press("Enter")
    renamed = conversation_row(panel, "Tuples explained")
    renamed.wait_for()
    conversation_id = renamed.get_attribute("data-id")
    stored = lab_server.api("GET", f"conversations/{conversation_id}")
    assert stored["conversation"]["title"] == "Tuples explained"
    page.wait_for_function(
        "el => el.textContent.includes('Tuples explained')", arg=toggle.element_handle()
    )

    # Delete the other one, after confirming.
    set_row = conversation_row(panel, "What is a set?")
    set_id = set_row.get_attribute("data-id")
    set_row.locator(".jp-RubberDuck-conversation-delete").click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for()
    assert "What is a set?" in dialog.inner_text()
    dialog.locator("button.jp-mod-accept").click()
    set_row.wait_for(state="detached")
    listed = [c["id"] for c in lab_server.api("GET", "conversations")["conversations"]]
    assert set_id not in listed
    assert conversation_id in listed

    # A reload restores the current conversation from the server.
    page.reload()
    page.wait_for_selector("#jp-main-dock-panel", state="attached")
    panel = open_sidebar("fake-model")
    restored = panel.locator(MESSAGES)
    restored.first.wait_for()
    assert panel.locator('.jp-RubberDuck-message[data-role="user"]').all_inner_texts() == [
        "What is a tuple?"
    ]
    assert "immutable sequence" in restored.inner_text()
    toggle = panel.locator("button.jp-RubberDuck-conversations-toggle")
    page.wait_for_function(
        "el => el.textContent.includes('Tuples explained')", arg=toggle.element_handle()
    )
    # And the next question continues that conversation.
    fake_llm.set_replies(["Yes, they are hashable if their items are."])
    ask_and_wait(panel, "Are they hashable?")
    stored = lab_server.api("GET", f"conversations/{conversation_id}")
    assert [m["content"] for m in stored["messages"] if m["role"] == "user"] == [
        "What is a tuple?",
        "Are they hashable?",
    ]


def test_export_markdown_downloads_the_conversation(
    page: Any, open_sidebar: Any, fake_llm: Any, tmp_path: Path
) -> None:
    fake_llm.set_replies(["Use `df.dropna()` to drop the rows."])
    panel = open_sidebar("fake-model")
    ask_and_wait(panel, "How do I drop empty rows in pandas?")
    listing = open_list(panel)
    row = conversation_row(panel, "How do I drop empty rows in pandas?")
    row.wait_for()
    with page.expect_download() as download_info:
        row.locator(".jp-RubberDuck-conversation-export-md").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".md")
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    text = target.read_text()
    assert text.startswith("# How do I drop empty rows in pandas?")
    assert "How do I drop empty rows in pandas?" in text.split("\n", 1)[1]
    assert "Use `df.dropna()` to drop the rows." in text
    assert listing.locator(".jp-RubberDuck-conversations-error").is_hidden()

    with page.expect_download() as download_info:
        row.locator(".jp-RubberDuck-conversation-export-ipynb").click()
    notebook = tmp_path / "export.ipynb"
    download_info.value.save_as(notebook)
    cells = json.loads(notebook.read_text())["cells"]
    assert any("df.dropna()" in "".join(cell["source"]) for cell in cells)


THINK_REPLIES = [
    "- add two numbers\n- integers and floats",
    "1. one function `add(a, b)`",
    "```python\ndef add(a, b):\n    return a + b\n```",
    "```python\ndef test_add():\n    assert add(1, 2) == 3\n```",
    "Looks complete; no edge cases missed.",
]


def test_think_streams_reasoning_steps_that_collapse(
    page: Any, open_sidebar: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(THINK_REPLIES)
    panel = open_sidebar("fake-model")
    answer = ask_and_wait(panel, "/think a function that adds two numbers")
    badge = answer.locator(".jp-RubberDuck-engine")
    assert badge.inner_text() == "Think it through"
    assert "/think command" in (badge.get_attribute("title") or "")

    steps = answer.locator("details.jp-RubberDuck-step")
    assert steps.locator(".jp-RubberDuck-step-title").all_inner_texts() == [
        "Requirements",
        "Plan",
        "Review",
    ]
    # Finished steps are collapsed; their text is one click away.
    for index in range(3):
        assert steps.nth(index).evaluate("el => el.open") is False
    plan = steps.nth(1)
    assert plan.locator(".jp-RubberDuck-step-body").is_hidden()
    plan.locator("summary").click()
    assert plan.evaluate("el => el.open") is True
    assert "add(a, b)" in plan.locator(".jp-RubberDuck-step-body").inner_text()
    # Keyboard: a summary toggles with Enter.
    plan.locator("summary").press("Enter")
    assert plan.evaluate("el => el.open") is False

    # The implementation and tests are the answer; the step text is not.
    markdown = answer.locator(":scope > .jp-RubberDuck-markdown")
    headings = markdown.locator("h3").all_inner_texts()
    assert headings == ["Implementation", "Tests"]
    assert "return a + b" in markdown.inner_text()
    assert "add two numbers" not in markdown.inner_text()
    # The generated code was checked once and was clean.
    assert answer.locator(".jp-RubberDuck-correction-summary").all_inner_texts() == [
        "Checked code: round 1 — no problems"
    ]

    # Reloaded from the server, the answer has the same parts.
    page.reload()
    page.wait_for_selector("#jp-main-dock-panel", state="attached")
    panel = open_sidebar("fake-model")
    restored = panel.locator(MESSAGES).last
    restored.locator(".jp-RubberDuck-engine").wait_for()
    assert restored.locator(".jp-RubberDuck-engine").inner_text() == "Think it through"
    steps = restored.locator("details.jp-RubberDuck-step")
    assert steps.locator(".jp-RubberDuck-step-title").all_inner_texts() == [
        "Requirements",
        "Plan",
        "Review",
    ]
    assert steps.nth(2).evaluate("el => el.open") is False
    review = steps.nth(2).locator(".jp-RubberDuck-step-body").text_content() or ""
    assert "no edge cases" in review
    restored_markdown = restored.locator(":scope > .jp-RubberDuck-markdown")
    assert restored_markdown.locator("h3").all_inner_texts() == ["Implementation", "Tests"]
    assert restored.locator(".jp-RubberDuck-correction-summary").all_inner_texts() == [
        "Checked code: round 1 — no problems"
    ]


def test_slash_commands_complete_from_the_keyboard_and_the_mouse(
    page: Any, open_sidebar: Any, fake_llm: Any
) -> None:
    panel = open_sidebar("fake-model")
    box = panel.locator("textarea.jp-RubberDuck-input")
    listbox = panel.locator("ul.jp-RubberDuck-slash")
    options = listbox.locator('[role="option"]')
    box.focus()
    page.keyboard.type("/")
    listbox.wait_for(state="visible")
    commands = [o.get_attribute("data-command") for o in options.all()]
    for command in ("/ask", "/think", "/review", "/fix", "/generate", "/plan", "/help", "/prefs"):
        assert command in commands
    assert box.get_attribute("aria-expanded") == "true"

    page.keyboard.type("t")
    # Read in one go: the list redraws as it filters, so elements taken one by one go stale.
    page.wait_for_function(
        "() => document.querySelectorAll('ul.jp-RubberDuck-slash [role=option]').length === 3"
    )
    assert options.evaluate_all("els => els.map(e => e.dataset.command)") == [
        "/think",
        "/task",
        "/tests",  # the tests plugin's (an entry point): plugins come after the built-ins
    ]
    assert options.nth(0).get_attribute("aria-selected") == "true"
    page.keyboard.press("ArrowDown")
    assert options.nth(1).get_attribute("aria-selected") == "true"
    assert box.get_attribute("aria-activedescendant") == options.nth(1).get_attribute("id")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")  # wraps to the last
    assert options.nth(2).get_attribute("aria-selected") == "true"
    # Home and End jump while the list is open (the box keeps the focus and its text).
    page.keyboard.press("Home")
    assert options.nth(0).get_attribute("aria-selected") == "true"
    assert box.get_attribute("aria-activedescendant") == options.nth(0).get_attribute("id")
    page.keyboard.press("End")
    assert options.nth(2).get_attribute("aria-selected") == "true"
    assert box.input_value() == "/t"
    page.keyboard.press("Enter")
    assert listbox.is_hidden()
    assert box.input_value() == "/tests "
    assert box.get_attribute("aria-expanded") == "false"
    # Enter took the command; nothing was sent.
    assert panel.locator(".jp-RubberDuck-message").count() == 0

    # Escape closes the list and keeps the text; Tab completes too.
    box.fill("")
    box.press_sequentially("/rev")
    listbox.wait_for(state="visible")
    page.keyboard.press("Escape")
    assert listbox.is_hidden()
    assert box.input_value() == "/rev"
    box.fill("")
    page.keyboard.type("/ex")
    listbox.wait_for(state="visible")
    # The Tab is the list's: its default (moving the focus on) is cancelled.
    page.evaluate(
        "() => window.addEventListener('keydown', e => { window.lastKeydown = e; }, true)"
    )
    page.keyboard.press("Tab")
    assert box.input_value() == "/explain "
    assert page.evaluate("() => window.lastKeydown.key") == "Tab"
    assert page.evaluate("() => window.lastKeydown.defaultPrevented") is True

    # The mouse picks one too, and the text after the command stays.
    box.fill("/ the whole notebook")
    box.evaluate("el => el.setSelectionRange(1, 1)")
    box.press("r")  # "/r| the whole notebook"
    listbox.wait_for(state="visible")
    listbox.locator('[data-command="/review"]').click()
    assert box.input_value() == "/review the whole notebook"

    # A command typed in full is sent by Enter, and the server's router obeys it.
    box.fill("")
    page.keyboard.type("/help")
    page.keyboard.press("Enter")
    answer = panel.locator(MESSAGES).last
    answer.locator(".jp-RubberDuck-markdown table").wait_for()
    assert answer.locator(".jp-RubberDuck-engine").inner_text() == "Help"
    assert "/think" in answer.inner_text()


def test_plan_pins_the_task_and_follows_its_steps(
    page: Any, open_sidebar: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["Read the CSV with pandas.", "Drop rows without a churn label."])
    panel = open_sidebar("fake-model")
    task = panel.locator(".jp-RubberDuck-task")
    assert task.is_hidden()
    ask_and_wait(panel, "/plan churn model: load the data; clean the columns; fit a model")
    task.wait_for()
    assert task.locator(".jp-RubberDuck-task-goal").inner_text() == "churn model"
    steps = task.locator(".jp-RubberDuck-task-step")
    assert steps.locator(".jp-RubberDuck-task-title").all_inner_texts() == [
        "load the data",
        "clean the columns",
        "fit a model",
    ]
    assert steps.nth(0).get_attribute("aria-current") == "step"
    assert task.locator(".jp-RubberDuck-task-progress").inner_text().strip() == "· 0/3"

    ask_and_wait(panel, "/next")
    assert steps.nth(0).get_attribute("data-status") == "done"
    assert steps.nth(0).get_attribute("aria-current") is None
    assert steps.nth(1).get_attribute("aria-current") == "step"
    assert task.locator(".jp-RubberDuck-task-progress").inner_text().strip() == "· 1/3"

    # The task is part of the conversation: a reload brings it back.
    page.reload()
    page.wait_for_selector("#jp-main-dock-panel", state="attached")
    panel = open_sidebar("fake-model")
    task = panel.locator(".jp-RubberDuck-task")
    task.wait_for()
    assert task.locator(".jp-RubberDuck-task-step").nth(1).get_attribute("aria-current") == "step"
    # A new conversation has no task.
    panel.locator("button.jp-RubberDuck-new").click()
    assert task.is_hidden()


def test_notices_checked_code_and_a_cited_cell_that_opens(
    page: Any, open_sidebar: Any, fake_llm: Any, lab_server: Any
) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(f"step_{i} = {i}") for i in range(4)]
    nbformat.write(notebook, lab_server.root / "cited.ipynb")
    extra: dict[str, Any] = {
        "notice": {"code": "no_model", "message": "Answering from the index only."},
        "citations": [
            {
                "n": 1,
                "path": "cited.ipynb",
                "kind": "code_cell",
                "cell": 2,
                "start_line": None,
                "end_line": None,
                "title": "step two",
                "score": 0.5,
            }
        ],
        "findings": [
            {
                "source": "ruff",
                "code": "F821",
                "message": "Undefined name `pd`",
                "line": 3,
                "col": 1,
                "end_line": 3,
                "severity": "error",
                "fix": "import pandas as pd",
            },
            {
                "source": "ast",
                "code": "RD1",
                "message": "Unused result",
                "line": 5,
                "col": 1,
                "end_line": None,
                "severity": "warning",
                "fix": None,
            },
        ],
    }

    # This server has a model and no index, so these frames are added on their way in.
    def add_frames(ws: Any) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            ws.send(message)
            frame = json.loads(message)
            if frame.get("type") != "route":
                return
            turn = frame["id"]
            ws.send(json.dumps({"type": "notice", "id": turn, **extra["notice"]}))
            ws.send(json.dumps({"type": "citations", "id": turn, "citations": extra["citations"]}))
            for round_no, fixed in ((0, False), (1, True)):
                findings = extra["findings"] if not fixed else extra["findings"][1:]
                ws.send(
                    json.dumps(
                        {
                            "type": "correction",
                            "id": turn,
                            "round": round_no,
                            "findings": findings,
                            "fixed": fixed,
                        }
                    )
                )

        server.on_message(to_page)

    page.route_web_socket(lambda url: "/rubberduck/ws" in url, add_frames)
    page.reload()
    page.wait_for_selector("#jp-main-dock-panel", state="attached")
    fake_llm.set_replies(["Step two sets it [1]; see also [7]."])
    panel = open_sidebar("fake-model")
    answer = ask_and_wait(panel, "Where is step_2 set?")

    # The no-model notice; a no-index one (with its Index this project action) follows it.
    info = answer.locator(".jp-RubberDuck-info").first
    assert info.inner_text() == "Answering from the index only."
    assert info.get_attribute("data-code") == "no_model"

    rounds = answer.locator("details.jp-RubberDuck-correction")
    assert rounds.locator("summary").all_inner_texts() == [
        "Checked code: round 1 — 2 problems",
        "Checked code: round 2 — 1 problem (no errors)",
    ]
    assert rounds.nth(0).evaluate("el => el.open") is False
    rounds.nth(0).locator("summary").click()
    findings = rounds.nth(0).locator(".jp-RubberDuck-finding")
    assert findings.nth(0).inner_text() == (
        "line 3: F821 Undefined name `pd` — import pandas as pd"
    )
    assert findings.nth(0).get_attribute("data-severity") == "error"

    # [1] links to the source; [7] is no source, so it stays text.
    markdown = answer.locator(":scope > .jp-RubberDuck-markdown")
    assert markdown.locator("a.jp-RubberDuck-cite").all_inner_texts() == ["[1]"]
    assert "[7]" in markdown.inner_text()
    source = answer.locator(".jp-RubberDuck-source-open")
    assert source.inner_text() == "[1] cited.ipynb, cell 2 — step two"

    # Opening it shows the notebook with cell 2 active.
    source.click()
    active = page.locator(".jp-NotebookPanel:visible .jp-Cell.jp-mod-active")
    active.filter(has_text="step_2 = 2").wait_for()
    assert active.count() == 1
