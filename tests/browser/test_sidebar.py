"""The chat sidebar in a real JupyterLab, in a real browser, against the fake provider."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ANSWER = (
    "Here is **the fix**:\n\n```python\ndf = df.dropna()\n```\n\n"
    "![tracker](http://127.0.0.1:9/pixel.png)\n\n"
    "<form action='http://127.0.0.1:9/'><button>Claim prize</button><input name='q'></form>\n\n"
    "Done."
)


def test_sidebar_streams_a_sanitized_markdown_answer(
    page: Any, open_sidebar: Any, fake_llm: Any, screenshot: Any
) -> None:
    fake_llm.set_replies([ANSWER])
    fake_llm.chunk_delay = 0.01
    try:
        panel = open_sidebar("fake-model")
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
    # Remote images, forms and buttons from model output never reach the page; the only
    # buttons are RubberDuck's own code-block toolbar.
    assert markdown.locator("img, form, input").count() == 0
    assert markdown.locator("button:not([role='toolbar'] button)").count() == 0
    assert markdown.locator("[role='toolbar'] button").count() >= 1
    user = panel.locator('.jp-RubberDuck-message[data-role="user"]').last
    assert user.inner_text().strip() == "How do I drop missing rows?"
    assert box.input_value() == ""
    sent = fake_llm.requests[-1]["messages"][-1]["content"]
    assert sent.endswith("How do I drop missing rows?")
    screenshot("sidebar-answer")


def test_stop_button_ends_a_streaming_answer(
    page: Any, open_sidebar: Any, fake_llm: Any, screenshot: Any
) -> None:
    fake_llm.set_replies(["chunk " * 500])
    fake_llm.chunk_delay = 0.05
    try:
        panel = open_sidebar("fake-model")
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


def ask(panel: Any, question: str) -> None:
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill(question)
    box.press("Enter")


def answer_footer(panel: Any, index: int) -> Any:
    """The usage line of the index-th answer, once that answer is done."""
    footer = panel.locator(".jp-RubberDuck-usage").nth(index)
    footer.wait_for()
    return footer


def test_usage_footer_names_the_model_and_the_conversation_adds_up(
    page: Any, open_sidebar: Any, fake_llm: Any
) -> None:
    from rubberduck_jupyter.testing.fake_llm import count_tokens, message_text

    fake_llm.set_replies(["Four words of answer.", "Two more."])
    panel = open_sidebar("fake-model")
    # One model: nothing to pick, so no picker.
    assert panel.locator("select.jp-RubberDuck-model").is_hidden()
    spend = panel.locator(".jp-RubberDuck-spend")
    assert spend.is_hidden()

    totals = []
    for index, (question, completion) in enumerate([("How many tokens?", 4), ("And now?", 2)]):
        ask(panel, question)
        footer = answer_footer(panel, index)
        request = fake_llm.requests[-1]
        assert request["model"] == "fake-model"
        prompt = sum(count_tokens(message_text(message)) for message in request["messages"])
        total = prompt + completion
        # The fake model has no price, so no cost is shown.
        assert footer.inner_text() == (
            f"openai/fake-model · {prompt} + {completion} = {total} tokens"
        )
        totals.append(total)
    assert spend.inner_text() == f"This conversation: {sum(totals)} tokens"

    panel.locator("button.jp-RubberDuck-new").click()
    assert spend.is_hidden()
    assert panel.locator(".jp-RubberDuck-message").count() == 0


def test_footer_shows_cost_and_a_cached_badge(
    page: Any, open_sidebar: Any, fake_llm: Any, screenshot: Any
) -> None:
    # The fake model is unpriced and its breaker stays closed, so the server's own done
    # frames are amended on their way to the page.
    amendments: list[dict[str, Any]] = [
        {"cost_usd": 0.000123},
        {
            "cached": True,
            "cost_usd": None,
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "attempts": [
                {"model": "openai/fake-model", "outcome": "breaker_open"},
                {"model": "openai/fake-model", "outcome": "cached"},
            ],
        },
    ]

    def amend_done_frames(ws: Any) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "done" and amendments:
                frame.update(amendments.pop(0))
            ws.send(json.dumps(frame))

        server.on_message(to_page)

    page.route_web_socket(lambda url: "/rubberduck/ws" in url, amend_done_frames)
    page.reload()
    page.wait_for_selector("#jp-main-dock-panel", state="attached")
    panel = open_sidebar("fake-model")

    ask(panel, "What does this cost?")
    priced = answer_footer(panel, 0)
    match = re.fullmatch(
        r"openai/fake-model · \d+ \+ \d+ = (\d+) tokens · \$0\.00012", priced.inner_text()
    )
    assert match, priced.inner_text()
    total = match.group(1)
    spend = panel.locator(".jp-RubberDuck-spend")
    assert spend.inner_text() == f"This conversation: {total} tokens · $0.00012"

    ask(panel, "And again?")
    cached = answer_footer(panel, 1)
    badge = cached.locator(".jp-RubberDuck-cached")
    assert badge.inner_text() == "cached answer (provider paused)"
    assert cached.inner_text().startswith("openai/fake-model")
    # Nothing was spent on a cached answer.
    assert spend.inner_text() == f"This conversation: {total} tokens · $0.00012"
    screenshot("sidebar-cost-cached")


def test_rate_limit_notice_says_when_to_retry(page: Any, open_sidebar: Any, fake_llm: Any) -> None:
    # Both tries are rate limited and the only model has no fallback.
    fake_llm.add_faults(["429", "429"])
    panel = open_sidebar("fake-model")
    ask(panel, "Are you there?")
    notice = panel.locator('.jp-RubberDuck-error[data-code="rate_limited"]')
    notice.wait_for()
    assert "Try again in 1 s" in notice.inner_text()
    assert notice.get_attribute("data-retry-after") == "1"
    assert panel.locator('.jp-RubberDuck-message[data-role="assistant"]').count() == 0
