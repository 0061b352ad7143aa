"""REST errors in the sidebar: the server's {code, message} and what to do for the code.

A real refusal (renaming a conversation deleted elsewhere answers 404 not_found), and
refusals the browser test cannot provoke for real (an expired session, a rate limit),
answered by Playwright in place of the server with the server's body shape.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_sidebar_sessions import ask_and_wait, conversation_row, open_list

pytestmark = pytest.mark.browser

LIST_ERROR = ".jp-RubberDuck-conversations-error"


def test_a_refused_rename_says_what_happened_and_what_to_do(
    page: Any, open_sidebar: Any, fake_llm: Any, lab_server: Any
) -> None:
    fake_llm.set_replies(["A dict maps keys to values."])
    panel = open_sidebar("fake-model")
    ask_and_wait(panel, "What is a dict?")
    listing = open_list(panel)
    row = conversation_row(panel, "What is a dict?")
    row.wait_for()
    conversation_id = row.get_attribute("data-id")
    # Deleted elsewhere (another tab, the REST API) while this list still shows it.
    lab_server.api("DELETE", f"conversations/{conversation_id}")
    row.locator(".jp-RubberDuck-conversation-rename").click()
    field = panel.locator("input.jp-RubberDuck-conversation-rename-input")
    field.fill("Dicts")
    field.press("Enter")
    error = listing.locator(LIST_ERROR)
    error.wait_for(state="visible")
    text = error.inner_text()
    assert text.startswith("Could not rename: "), text
    assert conversation_id in text  # the server's message names what it could not find
    assert text.endswith("It may have been deleted; reload the list."), text
    # The refresh that followed dropped the row; the error stayed readable.
    assert conversation_row(panel, "What is a dict?").count() == 0


@pytest.mark.parametrize(
    ("status", "body", "advice"),
    [
        (
            403,
            {"code": "forbidden", "message": "Not signed in."},
            "Not signed in. Sign in to Jupyter again (reload the page)",
        ),
        (
            429,
            {"code": "rate_limited", "message": "Too many requests", "retry_after": 2.4},
            "Too many requests. Try again in 3 s.",
        ),
        (409, {"code": "busy", "message": "Indexing is running."}, "Wait for the running work"),
    ],
)
def test_the_list_shows_the_codes_action(
    page: Any, open_sidebar: Any, status: int, body: dict[str, Any], advice: str
) -> None:
    panel = open_sidebar("fake-model")

    def refuse(route: Any) -> None:
        if route.request.method == "GET":
            route.fulfill(status=status, content_type="application/json", body=json.dumps(body))
        else:
            route.continue_()

    page.route("**/rubberduck/api/conversations?*", refuse)
    page.route("**/rubberduck/api/conversations", refuse)
    listing = open_list(panel)
    error = listing.locator(LIST_ERROR)
    error.wait_for(state="visible")
    text = error.inner_text()
    assert text.startswith("Could not load the conversations: "), text
    assert advice in text, text


def test_a_conversation_that_fails_to_load_keeps_the_one_shown(
    page: Any, open_sidebar: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["A list is mutable.", "A frozenset is an immutable set."])
    panel = open_sidebar("fake-model")
    ask_and_wait(panel, "What is a list?")
    panel.locator("button.jp-RubberDuck-new").click()
    ask_and_wait(panel, "What is a frozenset?")
    open_list(panel)
    row = conversation_row(panel, "What is a list?")
    row.wait_for()
    first_id = row.get_attribute("data-id")
    # The server's message is Markdown; a remote image in it must not be fetched.
    body = {
        "code": "internal",
        "message": "The store said `database is locked` "
        '<img src="http://example.invalid/x.png" alt="x">',
    }
    # The lab's requests carry a cache-busting query.
    stored = f"**/rubberduck/api/conversations/{first_id}?*"
    page.route(
        stored,
        lambda route: route.fulfill(
            status=500, content_type="application/json", body=json.dumps(body)
        ),
    )
    row.locator(".jp-RubberDuck-conversation-open").click()
    notice = panel.locator('.jp-RubberDuck-error[data-code="internal"]')
    notice.wait_for()
    text = notice.inner_text()
    assert text.startswith("Could not load the conversation: The store said"), text
    assert "`" not in text, text
    assert notice.locator("code").inner_text() == "database is locked"
    assert notice.locator("img").count() == 0
    # Still the conversation it was in: its messages, its title, its id for what comes next.
    users = panel.locator('.jp-RubberDuck-message[data-role="user"]')
    assert users.all_inner_texts() == ["What is a frozenset?"]
    toggle = panel.locator("button.jp-RubberDuck-conversations-toggle")
    assert "What is a frozenset?" in toggle.inner_text()

    # Once the server answers again, the switch goes through.
    page.unroute(stored)
    open_list(panel)
    row.locator(".jp-RubberDuck-conversation-open").click()
    page.wait_for_function(
        "el => el.textContent.includes('What is a list?')", arg=toggle.element_handle()
    )
    assert users.all_inner_texts() == ["What is a list?"]
