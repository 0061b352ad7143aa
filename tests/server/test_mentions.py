"""`@` mentions: the server resolves files inside the root only (no `..`, no symlinks, no
`.env`), bounds what it attaches, labels each item in the prompt, and the fake provider's
recorded request shows exactly what was attached, with secrets redacted."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import indexed_config

from rubberduck_jupyter.context import mentions
from rubberduck_jupyter.context.mentions import (
    MentionRefused,
    describe_file,
    describe_variable,
    resolve_file,
    resolve_mentions,
)
from rubberduck_jupyter.protocol import ChatContext, Mention, ProtocolError

SECRET = "sk-proj-" + "Q7w8E9r0" * 4
ETL = "import pandas as pd\n\n\ndef load_orders(path):\n    return pd.read_csv(path)\n"


@pytest.fixture
def project(jp_root_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    (jp_root_dir / "src").mkdir()
    (jp_root_dir / "src" / "etl.py").write_text(ETL)
    (jp_root_dir / "src" / "settings.py").write_text(f"API_KEY = '{SECRET}'\nDEBUG = True\n")
    notebook = {
        "cells": [
            {"id": "c1", "cell_type": "markdown", "metadata": {}, "source": ["# Orders"]},
            {
                "id": "c2",
                "cell_type": "code",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": ["orders = load_orders('orders.csv')"],
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (jp_root_dir / "etl.ipynb").write_text(json.dumps(notebook))
    (jp_root_dir / ".env").write_text(f"OPENAI_API_KEY={SECRET}\n")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "private.py").write_text("PRIVATE = 'outside the root'\n")
    (jp_root_dir / "linked_out.py").symlink_to(outside / "private.py")
    (jp_root_dir / "linked_in.py").symlink_to(jp_root_dir / "src" / "etl.py")
    (jp_root_dir / "linked_dir").symlink_to(jp_root_dir / "src", target_is_directory=True)
    return jp_root_dir


# --- resolution, without a server ----------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "reason"),
    [
        ("../outside/private.py", "outside the project"),
        ("/etc/passwd", "relative to its root"),
        ("src/../../x.py", "outside the project"),
        ("linked_out.py", "symbolic link"),
        ("linked_in.py", "symbolic link"),  # even a link that stays inside
        ("linked_dir/etl.py", "symbolic link"),  # a link on the way, not only at the end
        (".env", ".env"),
        ("src", "not a regular file"),
        ("src/missing.py", "does not exist"),
        ("src/etl.py\0.txt", "not a file name"),
    ],
)
def test_refused_paths_name_the_reason(project: Path, rel: str, reason: str) -> None:
    with pytest.raises(MentionRefused, match=reason.replace(".", r"\.")):
        resolve_file(project, rel)


def test_a_path_inside_the_root_resolves(project: Path) -> None:
    path, rel, info = resolve_file(project, "./src/etl.py")
    assert path == project / "src" / "etl.py"
    assert rel == "src/etl.py"
    assert info.st_size == len(ETL)


async def test_file_text_is_bounded_and_huge_files_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "big.py").write_text("x = 1\n" * 5_000)  # 30,000 characters
    attached = await describe_file(project, "big.py", None)
    assert "read from disk" in attached.text
    assert "more characters not attached" in attached.text
    assert len(attached.text) < mentions.MAX_FILE_CHARS + 200
    monkeypatch.setattr(mentions, "MAX_FILE_BYTES", 10_000)
    with pytest.raises(MentionRefused, match="larger than 10,000 bytes"):
        await describe_file(project, "big.py", None)


async def test_a_notebook_is_attached_as_numbered_cells(project: Path) -> None:
    attached = await describe_file(project, "etl.ipynb", None)
    assert attached.label == "@etl.ipynb"
    assert "# cell 1 (markdown)\n# Orders" in attached.text
    assert "# cell 2 (code)\norders = load_orders('orders.csv')" in attached.text
    assert '"nbformat"' not in attached.text  # the cells, not the JSON


class _Chunk:
    def __init__(self, text: str, start: int, end: int, title: str) -> None:
        self.text, self.start_line, self.end_line, self.title = text, start, end, title
        self.cells: tuple[int, ...] = ()
        self.kind = "code"


class _Index:
    """An IndexService's file_chunks only: what describe_file asks of it."""

    def __init__(self, chunks: list[_Chunk] | None) -> None:
        self.chunks = chunks
        self.asked: list[tuple[str, int]] = []

    async def file_chunks(self, rel: str, *, mtime: float, size: int) -> list[_Chunk] | None:
        self.asked.append((rel, size))
        return self.chunks


async def test_an_indexed_file_comes_from_its_chunks_else_from_disk(project: Path) -> None:
    index = _Index([_Chunk("def load_orders(path): ...", 4, 5, "load_orders")])
    attached = await describe_file(project, "src/etl.py", index)  # type: ignore[arg-type]
    assert index.asked == [("src/etl.py", len(ETL))]
    assert "from the project index, 1 chunks" in attached.text
    assert "# lines 4-5: load_orders" in attached.text
    stale = await describe_file(project, "src/etl.py", _Index(None))  # type: ignore[arg-type]
    assert "read from disk" in stale.text
    assert "import pandas as pd" in stale.text


def test_variable_values_only_when_asked_and_never_of_a_secret_name() -> None:
    described = describe_variable(
        Mention(
            kind="variable",
            name="df",
            type="pandas.DataFrame",
            shape=(3, 2),
            columns=("region", "sales"),
            dtypes=("object", "int64"),
        )
    ).text
    assert described.startswith("[@df] Kernel variable `df`: pandas.DataFrame")
    assert "shape: (3, 2)" in described
    assert "columns: region (object), sales (int64)" in described
    assert "values" not in described
    asked = describe_variable(
        Mention(kind="variable", name="df", type="pandas.DataFrame", values="  region  sales")
    )
    assert asked.label == "@df:values"
    assert "values:\n```\n  region  sales\n```" in asked.text
    secret = describe_variable(
        Mention(kind="variable", name="api_token", type="str", summary="'abc'", values="'abc'")
    ).text
    assert "'abc'" not in secret
    assert "[REDACTED]" in secret


async def test_mentions_resolve_in_order_once_each_and_refusals_are_said(project: Path) -> None:
    resolved = await resolve_mentions(
        [
            Mention(kind="cell", cell=2, source="orders.head()", cell_type="code"),
            Mention(kind="file", path="src/etl.py"),
            Mention(kind="file", path="src/etl.py"),
            Mention(kind="file", path="linked_out.py"),
        ],
        root=project,
        notebook_path="etl.ipynb",
    )
    assert [a.label for a in resolved.attachments] == ["@cell:2", "@src/etl.py"]
    assert resolved.attachments[0].text.startswith("[@cell:2] Cell 2 (code) of etl.ipynb:")
    assert len(resolved.refusals) == 1
    assert resolved.refusals[0].startswith("@linked_out.py was not attached:")


@pytest.mark.parametrize(
    ("mentions_json", "message"),
    [
        ("not a list", "'context.mentions' must be a list"),
        ([{"kind": "secret"}], "needs 'kind', one of variable, file, cell"),
        ([{"kind": "variable"}], "of kind 'variable' needs its 'name'"),
        ([{"kind": "file", "path": 3}], "'path' must be a string"),
        ([{"kind": "cell", "cell": 0, "source": ""}], "'cell' must be a cell number from 1"),
        ([{"kind": "cell", "cell": 2}], "needs its 'cell' number and 'source'"),
        ([{"kind": "variable", "name": "df", "shape": [-1]}], "'shape' must be a list"),
        ([{"kind": "variable", "name": "df", "columns": [1]}], "'columns' must be a list"),
        ([{"kind": "file", "path": "a.py"}] * 21, "at most 20 objects"),
    ],
)
def test_bad_mentions_are_refused_with_a_precise_reason(mentions_json: Any, message: str) -> None:
    with pytest.raises(ProtocolError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ChatContext.from_json({"mentions": mentions_json}, "m1")


def test_mentions_round_trip_through_json() -> None:
    raw = {
        "mentions": [
            {"kind": "variable", "name": "df", "type": "pandas.DataFrame", "shape": [3, 2]},
            {"kind": "file", "path": "src/etl.py"},
            {"kind": "cell", "cell": 4, "source": "x = 1", "cell_type": "code"},
        ]
    }
    assert ChatContext.from_json(raw, "m1").to_json() == raw


# --- through a real server to the fake provider ---------------------------------------


@pytest.fixture
def rubberduck_config(fake_llm: Any, project: Path, tmp_path: Path) -> dict[str, Any]:
    return indexed_config(fake_llm, tmp_path)


async def _turn(jp_ws_fetch: Any, read_turn: Any, msg_id: str, context: dict[str, Any]) -> Any:
    ws = await jp_ws_fetch("rubberduck", "ws")
    assert json.loads(await ws.read_message())["type"] == "hello"
    frame = {
        "type": "chat",
        "v": 1,
        "id": msg_id,
        "conversation_id": f"conv-{msg_id}",
        "text": "What do these do?",
        "context": context,
    }
    ws.write_message(json.dumps(frame))
    # A bound for failing, not a speed expectation: six helpers share two cores here.
    frames = await read_turn(ws, msg_id, timeout=120)
    ws.close()
    return frames


async def test_attachments_reach_the_model_labelled_and_redacted(
    jp_ws_fetch: Any, fake_llm: Any, read_turn: Any
) -> None:
    context = {
        "notebook_path": "etl.ipynb",
        "mentions": [
            {
                "kind": "variable",
                "name": "df",
                "type": "pandas.DataFrame",
                "shape": [3, 2],
                "columns": ["region", "sales"],
                "dtypes": ["object", "int64"],
            },
            {"kind": "cell", "cell": 2, "source": "orders = load_orders('orders.csv')"},
            {"kind": "file", "path": "src/settings.py"},
            {"kind": "file", "path": "linked_out.py"},
            {"kind": "file", "path": ".env"},
        ],
    }
    frames = await _turn(jp_ws_fetch, read_turn, "m1", context)
    assert frames[-1]["type"] == "done", frames[-1]
    notices = [f["message"] for f in frames if f["type"] == "notice"]
    assert any(n.startswith("@linked_out.py was not attached") for n in notices), notices
    assert any(n.startswith("@.env was not attached") for n in notices), notices
    sent = fake_llm.requests[-1]["messages"][-1]["content"]
    assert "Attached by the user with @" in sent
    assert "[@df] Kernel variable `df`: pandas.DataFrame" in sent
    assert "columns: region (object), sales (int64)" in sent
    assert "[@cell:2] Cell 2 (code) of etl.ipynb:" in sent
    assert "[@src/settings.py] File src/settings.py (read from disk):" in sent
    assert "DEBUG = True" in sent
    everything = json.dumps(fake_llm.requests[-1]["messages"])
    assert SECRET not in everything  # the file's key, redacted at the LLM service's door
    assert "outside the root" not in everything  # the symlinked file's text
    assert "OPENAI_API_KEY" not in everything


async def test_an_indexed_file_is_attached_from_the_index(
    jp_fetch: Any, jp_ws_fetch: Any, fake_llm: Any, read_turn: Any, project: Path
) -> None:
    started = await jp_fetch("rubberduck", "api", "index", method="POST", body='{"paths": []}')
    assert started.code == 202
    for _ in range(600):
        status = json.loads((await jp_fetch("rubberduck", "api", "index")).body)
        if status["state"] != "indexing":
            break
        await asyncio.sleep(0.1)
    assert status["state"] == "idle", status
    frames = await _turn(
        jp_ws_fetch, read_turn, "m2", {"mentions": [{"kind": "file", "path": "src/etl.py"}]}
    )
    assert frames[-1]["type"] == "done", frames[-1]
    sent = fake_llm.requests[-1]["messages"][-1]["content"]
    assert "[@src/etl.py] File src/etl.py (from the project index" in sent
    assert "def load_orders(path):" in sent
    # Edited after indexing: the index's chunks are stale, so the file is read instead.
    (project / "src" / "etl.py").write_text(ETL + "\n\ndef fresh():\n    return 1\n")
    os.utime(project / "src" / "etl.py", (1, 1))
    frames = await _turn(
        jp_ws_fetch, read_turn, "m3", {"mentions": [{"kind": "file", "path": "src/etl.py"}]}
    )
    sent = fake_llm.requests[-1]["messages"][-1]["content"]
    assert "File src/etl.py (read from disk)" in sent
    assert "def fresh():" in sent
