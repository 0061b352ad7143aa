"""The read tools over a real project folder and notebook file: containment (outside the
root, symlinks out, hidden and secret names, size caps), line ranges, the notebook's cells
with trimmed outputs and the live active cell over the saved one; and the write tools'
review gate with a real ruff, through a recording `suggest`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import nbformat
import pytest

from rubberduck_jupyter.domain.actions import ProjectFiles
from rubberduck_jupyter.domain.models import Project
from rubberduck_jupyter.llm.client import ToolCall
from rubberduck_jupyter.protocol import ChatContext
from rubberduck_jupyter.tools.base import ToolContext
from rubberduck_jupyter.tools.dispatch import Dispatcher
from rubberduck_jupyter.tools.registry import default_tools


class Suggestion:
    def __init__(self, n: int) -> None:
        self.id = f"sug-{n}"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1\nprint(x)")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": "iVBOR" * 1000}),
        nbformat.v4.new_output("stream", text="1\n" * 300),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), cell]
    nbformat.write(nb, str(project / "nb.ipynb"))
    (project / "mod.py").write_text("".join(f"line{n} = {n}\n" for n in range(1, 4001)))
    (project / "settings.json").write_text('{"a": 1}\n')
    (tmp_path / "secret.txt").write_text("OUTSIDE")
    (project / "out.txt").symlink_to(tmp_path / "secret.txt")
    (project / ".env").write_text("KEY=1")
    (project / "big.py").write_text("x = 1\n" * 10)
    return project


def _ctx(root: Path, suggested: list[dict[str, Any]], **context: Any) -> ToolContext:
    async def suggest(**kwargs: Any) -> Suggestion:
        suggested.append(kwargs)
        return Suggestion(len(suggested))

    files = ProjectFiles(Project.for_root(str(root), "alice"), max_file_bytes=30_000)
    return ToolContext(
        context=ChatContext(notebook_path="nb.ipynb", **context), files=files, suggest=suggest
    )


def _run(ctx: ToolContext, name: str, arguments: str) -> Any:
    return asyncio.run(Dispatcher(default_tools()).run(ToolCall("c", name, arguments), ctx)).result


def test_read_file_stays_inside_the_root(root: Path) -> None:
    ctx = _ctx(root, [])
    assert "outside the project" in _run(ctx, "read_file", '{"path": "../secret.txt"}').text
    assert "outside the project" in _run(ctx, "read_file", '{"path": "out.txt"}').text
    assert "give a path relative" in _run(ctx, "read_file", f'{{"path": "{root}/mod.py"}}').text
    assert _run(ctx, "read_file", '{"path": ".env"}').text.startswith("Error: cannot read .env")
    big = _run(ctx, "read_file", '{"path": "mod.py"}')
    assert "larger than" in big.text or "too large" in big.text or not big.ok


def test_read_file_pages_by_lines(root: Path) -> None:
    (root / "small.py").write_text("".join(f"v{n} = {n}\n" for n in range(1, 501)))
    ctx = _ctx(root, [])
    first = _run(ctx, "read_file", '{"path": "small.py"}').text
    assert first.startswith("small.py (lines 1-400 of 500)") and "lines 401-500 not shown" in first
    page = _run(ctx, "read_file", '{"path": "small.py", "start_line": 450, "end_line": 452}').text
    assert page.splitlines()[1:4] == ["  450  v450 = 450", "  451  v451 = 451", "  452  v452 = 452"]


def test_cells_from_disk_with_trimmed_outputs_and_the_live_cell(root: Path) -> None:
    ctx = _ctx(root, [], cell_index=1, active_cell="x = 2\nprint(x)")
    listing = _run(ctx, "list_cells", "{}").text
    assert listing.startswith("Notebook nb.ipynb: 2 cells.")
    assert "## Cell 1 [markdown]\n# Title" in listing
    assert "## Cell 2 [code] (active, unsaved edits)\nx = 2" in listing
    assert "[image/png output]" in listing and "iVBOR" not in listing
    assert "more characters]" in listing  # the stream's 600 characters trimmed
    assert len(listing) < 1500
    assert "there is no cell 3" in _run(ctx, "read_cell", '{"cell": 3}').text


def test_write_tools_pass_the_review_gate_once(root: Path) -> None:
    suggested: list[dict[str, Any]] = []
    ctx = _ctx(root, suggested)
    bad = _run(ctx, "replace_cell", '{"cell": 2, "source": "y = undefined_name + 1"}')
    assert not bad.ok and "F821" in bad.text and suggested == []
    # The second try of the same target is offered, its remaining findings attached.
    again = _run(ctx, "replace_cell", '{"cell": 2, "source": "y = undefined_name + 2"}')
    assert again.ok and "remaining findings" in again.text and "F821" in again.text
    assert suggested[0]["mode"] == "replace" and suggested[0]["target"].cell_index == 1
    assert suggested[0]["target"].source == "x = 1\nprint(x)"


def test_edit_file_replacement_and_json_checked(root: Path) -> None:
    suggested: list[dict[str, Any]] = []
    ctx = _ctx(root, suggested)
    twice = _run(ctx, "edit_file", '{"path": "big.py", "old": "x = 1", "new": "x = 2"}')
    assert "occurs 10 times" in twice.text
    bad_json = _run(ctx, "edit_file", '{"path": "settings.json", "old": "1", "new": "1,"}')
    assert bad_json.text.startswith("Not offered") and suggested == []
    good = _run(ctx, "edit_file", '{"path": "settings.json", "old": "1", "new": "2"}')
    assert good.ok and suggested[0]["proposed"] == '{"a": 2}\n'
    assert (
        suggested[0]["target"].path == "settings.json" and suggested[0]["target"].cell_index is None
    )
    assert (
        "notebooks with insert_cell"
        in _run(ctx, "edit_file", '{"path": "nb.ipynb", "content": ""}').text
    )


def test_insert_markdown_and_delete_are_suggestions(root: Path) -> None:
    suggested: list[dict[str, Any]] = []
    ctx = _ctx(root, suggested)
    md = _run(ctx, "insert_cell", '{"after": 1, "source": "## Notes (", "cell_type": "markdown"}')
    assert md.ok and suggested[0]["mode"] == "insert_markdown_after"
    gone = _run(ctx, "delete_cell", '{"cell": 2}')
    assert gone.ok and suggested[1]["proposed"] == "" and suggested[1]["target"].cell_index == 1


def test_a_cell_may_use_names_other_cells_define(root: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import pandas as pd\nframe = pd.DataFrame()"),
        nbformat.v4.new_code_cell("frame.head()"),
    ]
    nbformat.write(nb, str(root / "nb.ipynb"))
    suggested: list[dict[str, Any]] = []
    ctx = _ctx(root, suggested)
    ok = _run(ctx, "replace_cell", '{"cell": 2, "source": "frame.describe()\\npd.options"}')
    assert ok.ok and "F821" not in ok.text and len(suggested) == 1


def test_an_interrupted_call_is_not_replayed() -> None:
    from rubberduck_jupyter.domain.models import Message
    from rubberduck_jupyter.engines.agent import with_earlier_transcript

    call = {"id": "c1", "type": "function", "function": {"name": "list_cells", "arguments": "{}"}}
    cut = {"id": "c2", "type": "function", "function": {"name": "read_cell", "arguments": "{}"}}
    transcript = [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "Notebook: 2 cells."},
        {"role": "assistant", "content": None, "tool_calls": [cut]},  # Stop came here
    ]
    earlier = Message("m", "c", 1, "assistant", "Two cells.", "t", meta={"transcript": transcript})
    prompt = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "Two cells."},
        {"role": "user", "content": "q2"},
    ]
    out = with_earlier_transcript(prompt, [earlier])
    assert [m.get("tool_call_id") or m["role"] for m in out] == [
        "system",
        "user",
        "assistant",
        "c1",
        "assistant",
        "user",
    ]
    assert out[2]["tool_calls"] == [call]
