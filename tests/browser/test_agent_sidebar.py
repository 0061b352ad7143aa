"""The agent in the sidebar against the fake provider's scripted tool calls, through a real
`jupyter lab` and kernel: two proposed cells (one approved: the cell appears; one rejected:
the notebook stays as it is), then a run the agent asks for, approved from the keyboard
(the cell runs in the notebook and its output goes back to the model). Screenshots of the
steps and of the approval card in light and dark theme."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.notebook_page import (
    EXPOSE_APP,
    fake_model_env,
    open_notebook,
    sources,
    write_notebook,
)

pytestmark = pytest.mark.browser

ANSWERS = '.jp-RubberDuck-message[data-role="assistant"]'
# Records the index of every notebook cell that gets the agent's highlight class.
WATCH_FOCUS = """() => {
  window.__agentFocus = [];
  const notebook = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  new MutationObserver(records => {
    for (const r of records) {
      if (r.target.classList.contains('jp-RubberDuck-agentFocus')) {
        const cells = [...notebook.querySelectorAll('.jp-Cell')];
        window.__agentFocus.push(cells.indexOf(r.target));
      }
    }
  }).observe(notebook, {attributes: true, attributeFilter: ['class'], subtree: true});
}"""
FIRST_CELL = "a = 21\nprint(a * 2)"


@pytest.fixture(scope="module")
def lab_server(fake_llm_server: Any, start_lab: Any) -> Any:
    return start_lab(fake_model_env(fake_llm_server), [EXPOSE_APP])


def fake_requests(fake: Any) -> list[dict[str, Any]]:
    import urllib.request

    root = fake.base_url.removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/_fake/requests", timeout=10) as response:
        return [r for r in json.loads(response.read()) if "messages" in r]


def put_settings(lab: Any, values: dict[str, Any]) -> None:
    import urllib.request

    request = urllib.request.Request(
        f"{lab.url}lab/api/settings/rubberduck-jupyter:plugin",
        method="PUT",
        data=json.dumps({"raw": json.dumps(values)}).encode(),
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


def set_theme(page: Any, theme: str) -> None:
    light = "true" if theme == "JupyterLab Light" else "false"
    page.evaluate(
        "theme => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", theme
    )
    page.wait_for_selector(f"body[data-jp-theme-light='{light}']", state="attached")
    page.wait_for_timeout(400)


def light_and_dark(page: Any, screenshot: Any, name: str) -> None:
    screenshot(f"{name}-light")
    set_theme(page, "JupyterLab Dark")
    screenshot(f"{name}-dark")
    set_theme(page, "JupyterLab Light")


def ask_agent(panel: Any, text: str) -> Any:
    before = panel.locator(ANSWERS).count()
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill(f"/agent {text}")
    box.press("Enter")
    answer = panel.locator(ANSWERS).nth(before)
    answer.wait_for()
    return answer


def wait_done(page: Any, answer: Any) -> None:
    """Until the answer stopped streaming (its done frame came)."""
    page.wait_for_function(
        "el => el.dataset.streaming === undefined", arg=answer.element_handle(), timeout=60_000
    )


def test_agent_edits_and_a_run_approved_in_the_sidebar(
    page: Any, open_sidebar: Any, fake_llm: Any, lab_server: Any, screenshot: Any
) -> None:
    write_notebook(lab_server.root, "agent_demo.ipynb", [FIRST_CELL, "a"])
    notebook = open_notebook(page, lab_server, "agent_demo.ipynb")
    panel = open_sidebar("fake-model")

    # --- two edits: the plan, a step per tool call, a card per suggestion -------------
    # The first try does not parse: the review gate sends it back, the model corrects it.
    fake_llm.set_replies(
        [
            {
                "content": "I'll add a cell that uses `a`, and one more below it.",
                "tool_calls": [
                    {"name": "insert_cell", "arguments": {"after": 1, "source": "b = (a + 1"}},
                ],
            },
            {
                "tool_calls": [
                    {"name": "insert_cell", "arguments": {"after": 1, "source": "b = a + 1"}},
                    {"name": "insert_cell", "arguments": {"after": 2, "source": "c = 3"}},
                ],
            },
            "Both cells are proposed: approve the ones you want.",
        ]
    )
    answer = ask_agent(panel, "add two cells")
    wait_done(page, answer)
    assert answer.get_attribute("data-agent") == "true"
    plan = answer.locator(".jp-RubberDuck-plan")
    assert "add a cell that uses" in plan.inner_text()
    steps = answer.locator('.jp-RubberDuck-step[data-tool="insert_cell"]')
    assert steps.count() == 3
    # The plan reads before the calls, the final text after them.
    assert plan.evaluate(
        "(el, step) => !!(el.compareDocumentPosition(step) & Node.DOCUMENT_POSITION_FOLLOWING)",
        steps.first.element_handle(),
    )
    steps.first.locator("summary").click()
    assert '"after": 1' in steps.first.locator(".jp-RubberDuck-step-argsText").inner_text()
    assert "Result" in steps.first.locator(".jp-RubberDuck-step-body").inner_text()
    assert "Both cells are proposed" in answer.locator(".jp-RubberDuck-markdown").last.inner_text()
    cards = answer.locator(".jp-RubberDuck-suggestion")
    assert cards.count() == 2
    assert answer.locator(".jp-RubberDuck-approveAll").inner_text() == "Approve all (2)"
    assert cards.first.locator('pre.jp-RubberDuck-diff [data-kind="add"]').all_inner_texts() == [
        "+b = a + 1\n"
    ]
    # The card carries the review its code passed: the syntax error, fixed before offering.
    review = cards.first.locator(".jp-RubberDuck-suggestion-review .jp-RubberDuck-correction")
    assert review.count() == 1
    assert "fixed by the agent" in review.inner_text()
    assert cards.nth(1).locator(".jp-RubberDuck-suggestion-review").count() == 0
    review.locator("summary").click()
    cards.first.scroll_into_view_if_needed()
    screenshot("agent-edit-review")
    light_and_dark(page, screenshot, "agent-steps")

    cards.first.locator("button.jp-RubberDuck-suggestion-apply").click()
    page.wait_for_function(
        "el => el.dataset.status === 'applied'", arg=cards.first.element_handle()
    )
    assert sources(page) == [FIRST_CELL, "b = a + 1", "a"]
    cards.nth(1).locator("button.jp-RubberDuck-suggestion-reject").click()
    page.wait_for_function(
        "el => el.dataset.status === 'rejected'", arg=cards.nth(1).element_handle()
    )
    assert sources(page) == [FIRST_CELL, "b = a + 1", "a"]
    assert answer.locator(".jp-RubberDuck-approveAll").count() == 0
    statuses = {
        lab_server.api("GET", f"suggestions/{cards.nth(i).get_attribute('data-id')}")["status"]
        for i in range(2)
    }
    assert statuses == {"applied", "rejected"}

    # --- a run: the card asks, the keyboard answers, the cell runs in the notebook ----
    fake_llm.set_replies(
        [
            {"tool_calls": [{"name": "run_cell", "arguments": {"cell": 1}}]},
            "Cell 1 printed 42.",
        ]
    )
    # Which cells the agent's steps mark (a class for a moment): recorded as it happens.
    page.evaluate(WATCH_FOCUS)
    answer = ask_agent(panel, "run the first cell")
    card = answer.locator(".jp-RubberDuck-approval")
    card.wait_for(timeout=60_000)
    # The card came without taking the focus from the message box.
    assert page.evaluate("() => document.activeElement.tagName") == "TEXTAREA"
    page.wait_for_function("() => window.__agentFocus.length > 0")
    assert page.evaluate("() => window.__agentFocus")[0] == 0
    assert card.get_attribute("data-state") == "pending"
    assert card.locator(".jp-RubberDuck-approval-code").inner_text().strip() == FIRST_CELL
    buttons = card.locator(".jp-RubberDuck-approval-actions button")
    assert buttons.all_inner_texts() == [
        "Run",
        "Run all in this turn",
        "Always for this conversation",
        "Don't run",
    ]
    light_and_dark(page, screenshot, "agent-approval")

    # Keyboard only: from the code (focusable, it scrolls), Tab reaches Run; Enter runs.
    card.locator(".jp-RubberDuck-approval-code").focus()
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.className")
    assert "jp-RubberDuck-approval-allow" in focused
    screenshot("agent-approval-keyboard")
    page.keyboard.press("Enter")

    output = notebook.locator(".jp-Cell").first.locator(".jp-OutputArea-output")
    output.filter(has_text="42").wait_for(timeout=60_000)
    wait_done(page, answer)
    page.wait_for_function("el => el.dataset.state === 'done'", arg=card.element_handle())
    assert card.locator(".jp-RubberDuck-approval-state").inner_text().startswith("Ran")
    assert "Cell 1 printed 42." in answer.inner_text()
    # The model heard the run's output through run_result.
    tool_messages = [m for m in fake_requests(fake_llm)[-1]["messages"] if m.get("role") == "tool"]
    assert any("42" in str(m.get("content")) for m in tool_messages)
    screenshot("agent-run-done")

    # --- Stop while a run waits: the card says so and nothing runs --------------------
    fake_llm.set_replies(
        [{"tool_calls": [{"name": "run_cell", "arguments": {"cell": 1}}]}, "Not reached."]
    )
    answer = ask_agent(panel, "run it again")
    card = answer.locator(".jp-RubberDuck-approval")
    card.wait_for(timeout=60_000)
    panel.locator("button.jp-RubberDuck-send", has_text="Stop").click()
    page.wait_for_function("el => el.dataset.state === 'closed'", arg=card.element_handle())
    assert card.locator(".jp-RubberDuck-approval-state").inner_text() == "Cancelled"
    assert card.locator(".jp-RubberDuck-approval-actions button:visible").count() == 0
    wait_done(page, answer)
    prompt = notebook.locator(".jp-Cell").first.locator(".jp-InputPrompt")
    assert prompt.inner_text().strip() == "[1]:"

    # --- Approve all: every pending edit of the answer, in order ----------------------
    fake_llm.set_replies(
        [
            {
                "tool_calls": [
                    {"name": "insert_cell", "arguments": {"after": 2, "source": "d = 4"}},
                    {"name": "insert_cell", "arguments": {"after": 2, "source": "e = 5"}},
                ]
            },
            "Two more cells.",
        ]
    )
    answer = ask_agent(panel, "two more")
    wait_done(page, answer)
    answer.locator(".jp-RubberDuck-approveAll").click()
    cards = answer.locator(".jp-RubberDuck-suggestion")
    for i in range(2):
        page.wait_for_function(
            "el => el.dataset.status === 'applied'", arg=cards.nth(i).element_handle()
        )
    # The run saved the notebook (the agent's tools read it from disk), so "after 2" is
    # after the cell the user sees second: the one the first approval inserted.
    assert sources(page) == [FIRST_CELL, "b = a + 1", "e = 5", "d = 4", "a"]
    assert answer.locator(".jp-RubberDuck-approveAll").count() == 0
    assert cards.locator("button.jp-RubberDuck-suggestion-undo:visible").count() == 2

    # Drawn again from the store, the first answer still reads in order: plan, calls, text.
    # (The reload drops the cells inserted after the run, which saved the notebook, and
    # takes the auto-apply setting switched on here.)
    put_settings(lab_server, {"autoApplyEdits": True})
    page.reload()
    panel = open_sidebar("fake-model")
    first = panel.locator(ANSWERS).first
    first.locator(".jp-RubberDuck-plan").wait_for()
    assert "add a cell that uses" in first.locator(".jp-RubberDuck-plan").inner_text()
    assert first.locator(".jp-RubberDuck-step").count() == 3
    assert "Both cells are proposed" in first.locator(".jp-RubberDuck-markdown").last.inner_text()
    assert "add a cell that uses" not in first.locator(".jp-RubberDuck-markdown").last.inner_text()

    # --- auto-apply: the edit lands at once, and its card's Undo puts the cell back -----
    notebook.locator(".jp-Cell").nth(2).wait_for()
    assert sources(page) == [FIRST_CELL, "b = a + 1", "a"]
    fake_llm.set_replies(
        [
            {"tool_calls": [{"name": "replace_cell", "arguments": {"cell": 3, "source": "a + 1"}}]},
            "Cell 3 now adds one.",
        ]
    )
    try:
        answer = ask_agent(panel, "make cell 3 add one")
        wait_done(page, answer)
        card = answer.locator(".jp-RubberDuck-suggestion")
        page.wait_for_function("el => el.dataset.status === 'applied'", arg=card.element_handle())
        assert sources(page) == [FIRST_CELL, "b = a + 1", "a + 1"]
        undo = card.locator("button.jp-RubberDuck-suggestion-undo")
        assert undo.is_visible()
        card.scroll_into_view_if_needed()
        screenshot("agent-auto-applied")
        undo.click()
        page.wait_for_function("el => el.dataset.reverted === 'true'", arg=card.element_handle())
        assert sources(page) == [FIRST_CELL, "b = a + 1", "a"]
        assert undo.is_hidden()
        # The server's record follows the notebook: the undone edit is rejected.
        undone = lab_server.api("GET", f"suggestions/{card.get_attribute('data-id')}")
        assert undone["status"] == "rejected"
        assert card.locator(".jp-RubberDuck-suggestion-state").inner_text().strip() == "Undone"
        screenshot("agent-undone")
    finally:
        lab_server.reset_settings()


def test_an_mcp_write_tool_asks_on_a_card_and_allowing_runs_nothing_here(
    page: Any, open_sidebar: Any, fake_llm: Any, lab_server: Any, screenshot: Any
) -> None:
    """An MCP server of the user's (their mcp.json, read again when it appears) with a
    write tool: the card shows server, tool and arguments; Allow from the keyboard only
    answers, and the server (not the notebook) makes the call."""
    import sys
    from pathlib import Path

    calls = lab_server.root.parent / "mcp-calls.txt"
    fixture = Path(__file__).parents[1] / "mcp_fixtures" / "fixture_server.py"
    user_file = lab_server.root.parent / "config" / "rubberduck" / "mcp.json"
    user_file.parent.mkdir(parents=True, exist_ok=True)
    server = {
        "command": [sys.executable, str(fixture)],
        "env": {"FIXTURE_CALLS_FILE": str(calls)},
        "permission": "write",
        "tools": ["write_note"],
        "start_timeout": 60,
    }
    user_file.write_text(json.dumps({"mcp_servers": {"ops": server}}))
    write_notebook(lab_server.root, "agent_mcp.ipynb", ["x = 1"])
    open_notebook(page, lab_server, "agent_mcp.ipynb")
    panel = open_sidebar("fake-model")
    fake_llm.set_replies(
        [
            {"tool_calls": [{"name": "ops__write_note", "arguments": {"text": "hello"}}]},
            "The note is written.",
        ]
    )
    answer = ask_agent(panel, "write a note saying hello")
    card = answer.locator('.jp-RubberDuck-approval[data-kind="tool"]')
    card.wait_for(timeout=60_000)
    assert card.locator(".jp-RubberDuck-approval-title").inner_text() == "Call ops: write_note"
    tool_line = card.locator(".jp-RubberDuck-approval-tool").inner_text()
    assert "ops" in tool_line and "write_note" in tool_line and "write permission" in tool_line
    assert json.loads(card.locator(".jp-RubberDuck-approval-code").inner_text()) == {
        "text": "hello"
    }
    buttons = card.locator(".jp-RubberDuck-approval-actions button")
    assert [b.strip() for b in buttons.all_inner_texts()] == [
        "Allow",
        "Allow all in this turn",
        "Always for this conversation",
        "Don't allow",
    ]
    card.scroll_into_view_if_needed()
    light_and_dark(page, screenshot, "agent-tool-approval")
    # From the keyboard: the arguments' block, then Tab to Allow, Enter.
    card.locator(".jp-RubberDuck-approval-code").focus()
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.className")
    assert "jp-RubberDuck-approval-allow" in focused
    page.keyboard.press("Enter")
    page.wait_for_function("el => el.dataset.state === 'done'", arg=card.element_handle())
    assert card.locator(".jp-RubberDuck-approval-state").inner_text() == (
        "Allowed: the server calls it"
    )
    wait_done(page, answer)
    assert "The note is written." in answer.inner_text()
    assert calls.read_text().splitlines() == ["write_note hello"]
    tool_messages = [m for m in fake_requests(fake_llm)[-1]["messages"] if m.get("role") == "tool"]
    assert [m.get("content") for m in tool_messages] == ["written"]
    assert sources(page) == ["x = 1"]
