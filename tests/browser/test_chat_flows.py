"""Sidebar flows a new user hit (issue 11), in a real JupyterLab with the fake provider.

Grouped so the module's lab starts once: each test walks several flows in one page.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser


def ask_and_wait(panel: Any, question: str) -> None:
    before = panel.locator(".jp-RubberDuck-usage").count()
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill(question)
    box.press("Enter")
    panel.locator(".jp-RubberDuck-usage").nth(before).wait_for()


def test_command_descriptions_and_a_list_that_a_long_conversation_cannot_squeeze(
    page: Any, open_sidebar: Any, fake_llm: Any, screenshot: Any
) -> None:
    panel = open_sidebar("fake-model")
    box = panel.locator("textarea.jp-RubberDuck-input")

    # The command list says what each command does, not only its name.
    box.focus()
    page.keyboard.type("/rev")
    option = panel.locator('ul.jp-RubberDuck-slash [data-command="/review"]')
    option.wait_for(state="visible")
    description = option.locator(".jp-RubberDuck-slash-description")
    assert description.is_visible()
    assert len(description.inner_text().strip()) > 10
    page.keyboard.press("Escape")
    box.fill("")

    # Two conversations, the current one far taller than the sidebar.
    fake_llm.set_replies(["A short one."])
    ask_and_wait(panel, "first conversation")
    panel.locator("button.jp-RubberDuck-new").click()
    fake_llm.set_replies(["\n\n".join(f"Paragraph {i}: " + "word " * 40 for i in range(60))])
    ask_and_wait(panel, "a long one")
    log = panel.locator(".jp-RubberDuck-messages")
    assert log.evaluate("n => n.scrollHeight > 2 * n.clientHeight")

    panel.locator("button.jp-RubberDuck-conversations-toggle").click()
    listing = panel.locator(".jp-RubberDuck-conversations")
    listing.wait_for(state="visible")
    panel.locator(".jp-RubberDuck-conversation").nth(1).wait_for()
    # Both rows show in full: the list keeps its content's height (it was ~10 px).
    height = listing.evaluate("n => n.getBoundingClientRect().height")
    rows = listing.evaluate(
        "n => [...n.querySelectorAll('.jp-RubberDuck-conversation')]"
        ".reduce((sum, r) => sum + r.getBoundingClientRect().height, 0)"
    )
    assert rows > 30
    assert height >= rows - 1, (height, rows)
    # And the log still scrolls in what is left.
    assert log.evaluate("n => n.clientHeight > 50")
    screenshot("chat-flows-conversation-list-long")
