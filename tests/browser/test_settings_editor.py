"""RubberDuck's shortcuts through JupyterLab's own Settings Editor, applied without a reload."""

from __future__ import annotations

from typing import Any

import json5  # JupyterLab writes settings as JSON5 with comments (jupyterlab_server's own parser)
import pytest


@pytest.fixture(scope="module")
def lab_server(fake_llm_server: Any, start_lab: Any) -> Any:
    return start_lab(
        {
            "RUBBERDUCK_MODEL": "openai/fake-model",
            "RUBBERDUCK_API_BASE": fake_llm_server.base_url,
            "RUBBERDUCK_API_KEY": "sk-browser-test",
        },
        # Commands (open the editor, close the sidebar) go through the app itself.
        ["--LabApp.expose_app_in_browser=True", "--RubberDuckApp.ollama_url=http://127.0.0.1:9"],
    )


def _user_shortcuts(lab_server: Any) -> list[dict[str, Any]]:
    settings_dir = lab_server.root.parent / "settings" / "@jupyterlab" / "shortcuts-extension"
    path = settings_dir / "shortcuts.jupyterlab-settings"
    if not path.exists():
        return []
    return list(json5.loads(path.read_text()).get("shortcuts", []))


def test_a_shortcut_added_in_the_settings_editor_opens_the_chat(
    page: Any, lab_server: Any, open_sidebar: Any, screenshot: Any
) -> None:
    open_sidebar()
    page.evaluate(
        "() => window.jupyterapp.commands.execute('settingeditor:open',"
        " {query: 'Keyboard Shortcuts'})"
    )
    search = page.locator(".jp-Shortcuts-Search input, input[placeholder='Search…']").first
    search.fill("rubberduck")
    row = page.locator('.jp-Shortcuts-Row[data-shortcut^="rubberduck:open-chat"]')
    # The schema's default is listed as RubberDuck declared it.
    assert "Ctrl + Alt + D" in " ".join(row.inner_text().split())
    row.hover()
    row.locator(".jp-Shortcuts-Plus").click()
    page.keyboard.press("Control+Alt+K")
    page.wait_for_selector(".jp-Shortcuts-InputText:has-text('Ctrl Alt K')")
    row.locator(".jp-Shortcuts-Submit").click()
    page.wait_for_function(
        "() => window.jupyterapp.commands.keyBindings.some(b =>"
        " b.command === 'rubberduck:open-chat' && b.keys.join(' ') === 'Ctrl Alt K')"
    )
    screenshot("settings-shortcut-added")
    saved = _user_shortcuts(lab_server)
    assert {"command": "rubberduck:open-chat", "keys": ["Ctrl Alt K"]}.items() <= next(
        s for s in saved if s.get("command") == "rubberduck:open-chat"
    ).items()

    # The new keys work at once: collapse the right sidebar, press them from the editor.
    page.evaluate("() => window.jupyterapp.shell.collapseRight()")
    page.locator(".jp-RubberDuck").wait_for(state="hidden")
    page.locator(".jp-Shortcuts-Search input, input[placeholder='Search…']").first.click()
    page.keyboard.press("Escape")
    page.locator("#jp-main-dock-panel .jp-SettingsPanel, #jp-main-dock-panel").first.click(
        position={"x": 5, "y": 5}
    )
    page.keyboard.press("Control+Alt+K")
    page.locator(".jp-RubberDuck").wait_for(state="visible")
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.closest('.jp-RubberDuck')"
        " && document.activeElement.tagName === 'TEXTAREA'"
    )
    # The default still works beside it.
    page.evaluate("() => window.jupyterapp.shell.collapseRight()")
    page.locator(".jp-RubberDuck").wait_for(state="hidden")
    page.keyboard.press("Control+Alt+D")
    page.locator(".jp-RubberDuck").wait_for(state="visible")


def test_the_default_model_is_a_choice_among_the_allowed_models(
    page: Any, open_sidebar: Any, open_rubberduck_settings: Any, screenshot: Any
) -> None:
    open_sidebar()
    open_rubberduck_settings()
    field = page.locator("select[id$='defaultModel']")
    field.wait_for()
    options = field.locator("option").all_inner_texts()
    assert "The server's default" in options, options
    screenshot("settings-rubberduck")
    assert "openai/fake-model" in options, options
