"""The index status in a real JupyterLab: the status-bar item, the index panel (a Dialog)
opened by click and by keyboard, Re-index and Stop of real indexing runs, the report with a
skipped file and its reason, and the no-index notice's "Index this project" button.

One lab for the module, embeddings from the fake provider (no model loads). The tests run in
file order: the notice needs a project that has never been indexed, so it comes first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = pytest.mark.browser

ITEM = "#rubberduck-index-status"
PANEL = ".jp-Dialog .jp-RubberDuck-indexPanel"
# The first run imports litellm: seconds when idle, much longer on a busy 2-core machine.
RUN_TIMEOUT_MS = 150_000
# Where the `screenshot` fixture saves too (conftest.ARTIFACTS).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


def _write_project(root: Path) -> None:
    for folder in ("src", "notebooks", "data"):
        (root / folder).mkdir()
    (root / "src" / "calendar_utils.py").write_text(
        "def fiscal_quarter(date):\n    return (date.month - 1) // 3 + 1\n"
    )
    (root / "src" / "churn_model.py").write_text(
        "def fit_churn(df):\n    return df.dropna(subset=['churned'])\n"
    )
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Churn\n\nGradient boosting on the churn table."),
        nbformat.v4.new_code_cell("import pandas as pd\ndf = pd.read_csv('churn.csv')"),
    ]
    nbformat.write(notebook, root / "notebooks" / "churn.ipynb")
    # A .py with NUL bytes: skipped as binary, with a reason the report shows.
    (root / "data" / "blob.py").write_bytes(b"x = 1\x00\x00\x00\xff")


@pytest.fixture(scope="module")
def lab_server(fake_llm_server: Any, start_lab: Any, tmp_path_factory: Any) -> Any:
    index_dir = tmp_path_factory.mktemp("index")
    lab = start_lab(
        {
            "RUBBERDUCK_MODEL": "openai/fake-model",
            "RUBBERDUCK_API_BASE": fake_llm_server.base_url,
            "RUBBERDUCK_API_KEY": "sk-browser-test",
        },
        [
            # The theme switch for the dark screenshots goes through the app's command.
            "--LabApp.expose_app_in_browser=True",
            "--RubberDuckApp.ollama_url=http://127.0.0.1:9",
            f"--RubberDuckApp.index_db_path={index_dir / 'index.duckdb'}",
            "--RubberDuckApp.index_embedder=litellm:openai/fake-embed",
            f"--RubberDuckApp.index_embedder_api_base={fake_llm_server.base_url}",
            "--RubberDuckApp.index_embedder_api_key=sk-browser-test",
            "--RubberDuckApp.index_watch_debounce=0.2",
        ],
    )
    _write_project(lab.root)
    return lab


def _wait_for(what: str, check: Callable[[], Any], timeout: float = 150) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def _finished(lab: Any) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status = lab.api("GET", "index")
        return status if status["activity"] != "indexing" else None

    return _wait_for("the indexing run to finish", done)


def _item_text(page: Any, pattern: str) -> None:
    """Waits (bounded) until the status item's label matches the JS regex `pattern`."""
    page.wait_for_function(
        "([sel, re]) => new RegExp(re).test(document.querySelector(sel)?.textContent ?? '')",
        arg=[ITEM, pattern],
        timeout=RUN_TIMEOUT_MS,
    )


def _theme(page: Any, dark: bool) -> None:
    name = "JupyterLab Dark" if dark else "JupyterLab Light"
    page.evaluate(
        f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{name}'}})"
    )
    light = "false" if dark else "true"
    page.wait_for_selector(f"body[data-jp-theme-light='{light}']", state="attached")
    # The theme's stylesheet swaps in after the attribute; let it paint.
    page.wait_for_timeout(500)


def _statusbar_shot(page: Any, item: Any, name: str) -> None:
    """The status bar alone, the item focused by keyboard (its focus ring shows)."""
    item.focus()
    page.keyboard.press("Shift")  # a key press makes :focus-visible apply
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("#jp-main-statusbar").screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _close_panel(page: Any) -> None:
    page.locator(".jp-Dialog button", has_text="Close").click()
    page.locator(".jp-Dialog").wait_for(state="detached", timeout=10_000)


def test_no_index_notice_button_starts_indexing(
    page: Any, open_sidebar: Any, lab_server: Any, fake_llm: Any, screenshot: Any
) -> None:
    item = page.locator(ITEM)
    item.wait_for(timeout=30_000)
    _item_text(page, "^Not indexed$")
    assert item.get_attribute("data-activity") == "idle"
    assert item.get_attribute("role") == "button"
    assert "no index yet" in (item.get_attribute("aria-label") or "")

    fake_llm.set_replies(["Quarters start in January."])
    panel = open_sidebar("fake-model")
    box = panel.locator("textarea.jp-RubberDuck-input")
    box.fill("How is the fiscal quarter computed?")
    box.press("Enter")
    notice = panel.locator('.jp-RubberDuck-notices [data-code="no_index"]')
    notice.wait_for(timeout=30_000)
    button = notice.locator("button.jp-RubberDuck-noticeAction")
    assert button.inner_text() == "Index this project"
    assert button.get_attribute("data-command") == "rubberduck:index-project"
    screenshot("index-notice-light")
    button.focus()
    button.press("Enter")
    # The button starts a run: the item says so, then settles on the project's file count.
    _item_text(page, "^(Indexing|Index: 3 files)")
    status = _finished(lab_server)
    assert status["files"] == 3, status
    _item_text(page, "^Index: 3 files$")


def test_panel_reindex_reports_files_chunks_and_skipped(
    page: Any, lab_server: Any, screenshot: Any
) -> None:
    item = page.locator(ITEM)
    _item_text(page, "^Index: 3 files$")
    assert item.get_attribute("data-activity") in {"idle", "watching"}
    screenshot("index-item-light")
    _statusbar_shot(page, item, "index-statusbar-light")

    # Keyboard: focus the item and press Enter.
    item.focus()
    assert page.evaluate(f"document.activeElement === document.querySelector('{ITEM}')")
    page.keyboard.press("Enter")
    panel = page.locator(PANEL)
    panel.wait_for(timeout=10_000)
    _close_panel(page)

    # Mouse: click it.
    item.click()
    panel.wait_for(timeout=10_000)
    folders = panel.locator(".jp-RubberDuck-indexPanel-folders input[type=checkbox]")
    page.wait_for_function(
        "sel => document.querySelectorAll(sel).length === 3",
        arg=f"{PANEL} .jp-RubberDuck-indexPanel-folders input[type=checkbox]",
        timeout=10_000,
    )
    labels = panel.locator(".jp-RubberDuck-indexPanel-folders label").all_inner_texts()
    assert [label.strip() for label in labels] == ["data/", "notebooks/", "src/"]
    whole = panel.get_by_label("The whole project")
    assert whole.is_checked()
    assert all(folders.nth(i).is_disabled() for i in range(3))
    # Under the whole project no folder reads as chosen: unticked and greyed alike.
    assert not any(folders.nth(i).is_checked() for i in range(3))
    choices = panel.locator(".jp-RubberDuck-indexPanel-folders label")
    assert choices.evaluate_all("els => els.every(e => e.classList.contains('jp-mod-disabled'))")

    # Narrow to src/ and re-index: only its two files stay.
    whole.uncheck()
    panel.get_by_label("src/").check()
    panel.get_by_role("button", name="Re-index").click()
    _item_text(page, "^(Indexing|Index: 2 files)")
    status = _finished(lab_server)
    assert status["scope"] == ["src"] and status["files"] == 2, status
    _item_text(page, "^Index: 2 files$")

    # The whole project again: src/ is unticked while it counts, and back when it is
    # unticked (the choice was kept, not lost).
    whole.check()
    assert not panel.get_by_label("src/").is_checked()
    assert panel.get_by_label("src/").is_disabled()
    whole.uncheck()
    assert [folders.nth(i).is_checked() for i in range(3)] == [False, False, True]
    assert not choices.evaluate_all("els => els.some(e => e.classList.contains('jp-mod-disabled'))")
    # Back to the whole project; the report lists the skipped binary with its reason.
    whole.check()
    panel.get_by_role("button", name="Re-index").click()
    status = _finished(lab_server)
    assert status["scope"] == [] and status["files"] == 3, status
    _item_text(page, "^Index: 3 files$")
    summary = panel.locator(".jp-RubberDuck-indexPanel-summary")
    page.wait_for_function(
        "sel => /Index now: 3 files/.test(document.querySelector(sel)?.textContent ?? '')",
        arg=f"{PANEL} .jp-RubberDuck-indexPanel-summary",
        timeout=15_000,
    )
    report = status["last_report"]
    text = summary.inner_text()
    chunks = report["chunks_written"]
    files = report["files_indexed"]
    assert f"{files} file{'' if files == 1 else 's'} indexed" in text, text
    assert f"{chunks} chunk{'' if chunks == 1 else 's'} in " in text and " s." in text, text
    assert f"Index now: 3 files, {status['chunks']} chunks" in text, text
    skipped = panel.locator(".jp-RubberDuck-indexPanel-skipped")
    assert "1 skipped: 1 binary" in skipped.locator("summary").inner_text()
    skipped.locator("summary").click()
    entry = skipped.locator('li[data-code="binary"]')
    assert entry.locator("code").inner_text() == "data/blob.py"
    reason = next(s["reason"] for s in report["skipped"] if s["path"] == "data/blob.py")
    assert reason and reason in entry.inner_text()
    screenshot("index-panel-light")

    _theme(page, dark=True)
    try:
        screenshot("index-panel-dark")
        _close_panel(page)
        screenshot("index-item-dark")
        _statusbar_shot(page, item, "index-statusbar-dark")
    finally:
        _theme(page, dark=False)


def test_stop_ends_a_slow_run(page: Any, lab_server: Any, fake_llm: Any) -> None:
    item = page.locator(ITEM)
    _item_text(page, "^Index: 3 files$")
    # Narrowed to src/ (fast), the whole project again needs the notebook embedded: real
    # work with no file change the watcher would race for. Each embedding then waits 60 s.
    lab_server.api("POST", "index", {"scope": ["src"]})
    assert _finished(lab_server)["files"] == 2
    fake_llm.update_settings({"fault": "slow_first_byte", "slow_first_byte_seconds": 60})
    try:
        item.click()
        panel = page.locator(PANEL)
        panel.wait_for(timeout=10_000)
        stop = panel.get_by_role("button", name="Stop")
        assert stop.is_disabled()
        panel.get_by_label("The whole project").check()
        panel.get_by_role("button", name="Re-index").click()
        _item_text(page, "^(Indexing|Stopping)")
        assert item.get_attribute("data-activity") == "indexing"
        page.wait_for_function(
            "sel => !document.querySelector(sel).disabled",
            arg=f"{PANEL} .jp-RubberDuck-indexPanel-actions button.jp-mod-warn",
            timeout=10_000,
        )
        started = time.monotonic()
        stop.click()
        status = _finished(lab_server)
        # Stop ended the run well before the 60 s the provider would have taken.
        assert time.monotonic() - started < 30, status
        assert status["last_report"]["cancelled"] is True, json.dumps(status)
        _item_text(page, r"^Index: \d+ files \(stopped\)$")
        assert item.get_attribute("data-activity") in {"idle", "watching"}
        page.wait_for_function(
            "sel => /\\(stopped\\)/.test(document.querySelector(sel)?.textContent ?? '')",
            arg=f"{PANEL} .jp-RubberDuck-indexPanel-summary",
            timeout=15_000,
        )
        assert "stopped" in (item.get_attribute("aria-label") or "").lower(), item.get_attribute(
            "aria-label"
        )
        _close_panel(page)
    finally:
        fake_llm.update_settings({"fault": None})
    print(json.dumps(status["last_report"]))
