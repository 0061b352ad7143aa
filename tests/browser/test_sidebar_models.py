"""The sidebar's model picker and failover footer, against a lab offering two fake models."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lab_server(
    fake_llm_server: Any, start_lab: Any, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    def entry(name: str) -> dict[str, Any]:
        return {
            "model_name": name,
            "litellm_params": {
                "model": f"openai/fake-{name}",
                "api_base": fake_llm_server.base_url,
                "api_key": "sk-browser-test",
            },
        }

    models = tmp_path_factory.mktemp("models") / "models.json"
    models.write_text(
        json.dumps(
            {"model_list": [entry("main"), entry("backup")], "fallbacks": {"main": ["backup"]}}
        )
    )
    # The app in the browser: the last test opens the Settings Editor by its command.
    return start_lab(
        {"RUBBERDUCK_MODELS_FILE": str(models)}, ["--LabApp.expose_app_in_browser=True"]
    )


def ask_and_wait(panel: Any, question: str) -> Any:
    """Send a question; return the usage line of its answer once the answer is done."""
    footers = panel.locator(".jp-RubberDuck-usage")
    before = footers.count()
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill(question)
    box.press("Enter")
    footer = footers.nth(before)
    footer.wait_for()
    return footer


def test_picker_lists_the_models_and_sends_the_choice(
    page: Any, open_sidebar: Any, fake_llm: Any
) -> None:
    panel = open_sidebar()
    picker = panel.locator("select.jp-RubberDuck-model")
    assert picker.is_visible()
    assert picker.get_attribute("aria-label") == "Model"
    assert picker.locator("option").all_inner_texts() == ["main", "backup"]
    assert picker.input_value() == "main"

    # Keyboard only: a closed select steps through its options with the arrow keys.
    picker.focus()
    page.keyboard.press("ArrowDown")
    assert picker.input_value() == "backup"
    panel.locator(".jp-RubberDuck-status:has-text('Model: backup')").wait_for()

    footer = ask_and_wait(panel, "Which model are you?")
    assert fake_llm.requests[-1]["model"] == "fake-backup"
    assert footer.inner_text().startswith("backup · ")

    # The choice holds for the next question too.
    ask_and_wait(panel, "Still you?")
    assert fake_llm.requests[-1]["model"] == "fake-backup"
    assert picker.input_value() == "backup"


def test_footer_says_when_a_fallback_answered(
    page: Any, open_sidebar: Any, fake_llm: Any, screenshot: Any
) -> None:
    # main fails both of its tries (max_attempts is 2), so the answer comes from backup.
    fake_llm.add_faults(["500", "500"])
    panel = open_sidebar()
    assert panel.locator("select.jp-RubberDuck-model").input_value() == "main"

    footer = ask_and_wait(panel, "Is anyone there?")
    assert [request["model"] for request in fake_llm.requests] == [
        "fake-main",
        "fake-main",
        "fake-backup",
    ]
    failover = footer.locator(".jp-RubberDuck-failover")
    assert failover.inner_text() == "answered by backup after main failed (server error)"
    assert "tokens" in footer.inner_text()
    assert "backup: ok" in (footer.get_attribute("title") or "")
    screenshot("sidebar-models-failover")


def test_picker_keeps_the_choice_while_the_server_still_lists_it(
    page: Any, open_sidebar: Any
) -> None:
    # Each reconnect brings a new hello; the third claims backup is no longer offered.
    sockets: list[Any] = []

    def route(ws: Any) -> None:
        server = ws.connect_to_server()
        third = len(sockets) == 2
        sockets.append(ws)

        def to_page(message: str | bytes) -> None:
            frame = json.loads(message)
            if third and frame.get("type") == "hello":
                frame["models"] = ["main", "spare"]
            ws.send(json.dumps(frame))

        server.on_message(to_page)

    page.route_web_socket(lambda url: "/rubberduck/ws" in url, route)
    page.reload()
    page.wait_for_selector("#jp-main-dock-panel", state="attached")
    panel = open_sidebar()
    picker = panel.locator("select.jp-RubberDuck-model")
    picker.select_option("backup")

    def status(text: str) -> None:
        panel.locator(f".jp-RubberDuck-status:has-text('{text}')").wait_for()

    sockets[-1].close()
    status("Disconnected")
    status("Model: backup")
    assert len(sockets) == 2
    assert picker.input_value() == "backup"

    sockets[-1].close()
    status("Model: main")
    assert len(sockets) == 3
    assert picker.locator("option").all_inner_texts() == ["main", "spare"]
    assert picker.input_value() == "main"


def test_the_default_model_setting_picks_a_model_at_once_and_after_a_reload(
    page: Any,
    lab_server: Any,
    open_sidebar: Any,
    open_rubberduck_settings: Any,
    fake_llm: Any,
    screenshot: Any,
) -> None:
    panel = open_sidebar()
    picker = panel.locator("select.jp-RubberDuck-model")
    assert picker.input_value() == "main"
    open_rubberduck_settings()
    field = page.locator("select[id$='defaultModel']")
    field.wait_for()
    # Only what the server allows, plus "the server's default" (empty).
    options = field.locator("option").all_inner_texts()
    assert [o for o in options if o != "The server's default"] == ["main", "backup"], options
    field.select_option("backup")
    # Applied without a reload: the open sidebar's picker follows the setting.
    page.wait_for_function(
        "() => document.querySelector('select.jp-RubberDuck-model').value === 'backup'"
    )
    panel.locator(".jp-RubberDuck-status:has-text('Model: backup')").wait_for()
    screenshot("settings-default-model")
    footer = ask_and_wait(panel, "Who answers by default?")
    assert fake_llm.requests[-1]["model"] == "fake-backup"
    assert footer.inner_text().startswith("backup · ")

    # Saved in the user's settings (the editor saves after a short debounce), so a new
    # page opens on it too.
    lab_server.wait_saved(page, "defaultModel", "backup")
    page.reload()
    page.wait_for_selector("#jp-main-dock-panel", state="attached")
    panel = open_sidebar()
    picker = panel.locator("select.jp-RubberDuck-model")
    page.wait_for_function(
        "() => document.querySelector('select.jp-RubberDuck-model').value === 'backup'"
    )
    # A choice in the picker still beats the setting for this page.
    picker.select_option("main")
    ask_and_wait(panel, "And now?")
    assert fake_llm.requests[-1]["model"] == "fake-main"
    lab_server.reset_settings()  # the module's other tests expect the defaults
