"""The chat sidebar in a real JupyterLab, in a real browser, against the fake provider."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser

ANSWER = (
    "Here is **the fix**:\n\n```python\ndf = df.dropna()\n```\n\n"
    "![tracker](http://127.0.0.1:9/pixel.png)\n\n"
    "<form action='http://127.0.0.1:9/'><button>Claim prize</button><input name='q'></form>\n\n"
    "Done."
)


def open_sidebar(page: Any) -> Any:
    panel = page.locator(".jp-RubberDuck")
    # The layout restorer may already have it open from an earlier page in this workspace.
    if not panel.is_visible():
        page.click('.jp-SideBar [data-id="rubberduck-chat"]')
    panel.wait_for(state="visible")
    page.wait_for_selector(".jp-RubberDuck-status:has-text('fake-model')")
    return panel


def test_sidebar_streams_a_sanitized_markdown_answer(
    page: Any, fake_llm: Any, screenshot: Any
) -> None:
    fake_llm.set_replies([ANSWER])
    fake_llm.chunk_delay = 0.01
    try:
        panel = open_sidebar(page)
        box = panel.locator("textarea.jp-RubberDuck-input")
        box.fill("How do I drop missing rows?")
        box.press("Enter")
        assistant = panel.locator('.jp-RubberDuck-message[data-role="assistant"]').last
        assistant.locator(".jp-RubberDuck-markdown strong").wait_for()
        page.wait_for_selector(
            '.jp-RubberDuck-message[data-role="assistant"]:not([data-streaming="true"])'
        )
    finally:
        fake_llm.chunk_delay = 0
    markdown = assistant.locator(".jp-RubberDuck-markdown")
    assert markdown.locator("strong").inner_text() == "the fix"
    assert "df = df.dropna()" in markdown.locator("pre code").inner_text()
    assert "Done." in markdown.inner_text()
    # Remote images, forms and buttons from model output never reach the page.
    assert markdown.locator("img, form, button, input").count() == 0
    user = panel.locator('.jp-RubberDuck-message[data-role="user"]').last
    assert user.inner_text().strip() == "How do I drop missing rows?"
    assert box.input_value() == ""
    sent = fake_llm.requests[-1]["messages"][-1]["content"]
    assert sent.endswith("How do I drop missing rows?")
    screenshot("sidebar-answer")


def test_stop_button_ends_a_streaming_answer(page: Any, fake_llm: Any, screenshot: Any) -> None:
    fake_llm.set_replies(["chunk " * 500])
    fake_llm.chunk_delay = 0.05
    try:
        panel = open_sidebar(page)
        box = panel.locator("textarea.jp-RubberDuck-input")
        box.fill("Write a long essay")
        box.press("Enter")
        page.wait_for_selector('.jp-RubberDuck-message[data-streaming="true"]')
        button = panel.locator("button.jp-RubberDuck-send")
        assert button.get_attribute("data-state") == "stop"
        button.click()
        page.wait_for_selector(
            '.jp-RubberDuck-message[data-role="assistant"]:not([data-streaming="true"])'
        )
        assert button.get_attribute("data-state") == "send"
        text = panel.locator('.jp-RubberDuck-message[data-role="assistant"]').last.inner_text()
        assert "stopped" in text
        assert text.count("chunk") < 500
        screenshot("sidebar-stopped")
    finally:
        fake_llm.chunk_delay = 0
