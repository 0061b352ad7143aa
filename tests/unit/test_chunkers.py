"""The chunkers with the embedder's real tokenizer: every chunk fits its window and nothing
of the indexed text is lost. The notebook tests run on the pdsh corpus (66 real notebooks),
read in place; they are skipped where the corpus is not checked out."""

from __future__ import annotations

import random
import re
import statistics
import time
import unicodedata
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import (
    new_code_cell,
    new_markdown_cell,
    new_notebook,
    new_output,
    new_raw_cell,
)

from rubberduck_jupyter.index.chunkers import (
    chunk_bytes,
    chunk_file,
    chunk_javascript,
    chunk_markdown,
    chunk_notebook,
    chunk_python,
    chunk_source,
    chunk_text,
    split_to_window,
)
from rubberduck_jupyter.index.tokens import HFTokenCounter, minilm_token_counter
from rubberduck_jupyter.index.types import Chunk, ChunkError, ChunkKind


def _pdsh_dir() -> Path | None:
    candidates = (
        Path(__file__).resolve().parents[3] / "shared" / "corpora" / "pdsh",
        Path("/work/shared/corpora/pdsh"),
    )
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("*.ipynb")):
            return candidate
    return None


PDSH = _pdsh_dir()
needs_pdsh = pytest.mark.skipif(PDSH is None, reason="pdsh corpus not checked out")
# An ATX heading line outside fenced code: an independent check of the chunker's parser.
_ATX = re.compile(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")


@pytest.fixture(scope="module")
def counter() -> HFTokenCounter:
    return minilm_token_counter()


@pytest.fixture(scope="module")
def pdsh(counter: HFTokenCounter) -> dict[str, tuple[nbformat.NotebookNode, list[Chunk]]]:
    """Each pdsh notebook with its chunks, chunked once for all the corpus tests."""
    assert PDSH is not None
    paths = sorted(PDSH.glob("*.ipynb"))
    sources = {path.name: path.read_text(encoding="utf-8") for path in paths}
    chunk_file(paths[0], paths[0].name, counter)  # imports and parsers, outside the timing
    start = time.perf_counter()
    chunks = {path.name: chunk_file(path, path.name, counter) for path in paths}
    elapsed = time.perf_counter() - start
    total = sum(len(found) for found in chunks.values())
    print(f"\nchunked {len(paths)} pdsh notebooks into {total} chunks in {elapsed:.2f}s")
    return {name: (nbformat.reads(sources[name], as_version=4), chunks[name]) for name in sources}


def _body(chunk: Chunk) -> str:
    """A titled chunk's text without its header line (untitled notebook chunks have none)."""
    return chunk.text.split("\n", 1)[1] if chunk.title is not None else chunk.text


def _stitch(pieces: list[str]) -> str:
    """Consecutive overlapping pieces joined back into the text they were cut from."""
    whole = pieces[0]
    for piece in pieces[1:]:
        for start in range(max(0, len(whole) - len(piece)), len(whole)):
            if piece.startswith(whole[start:]) and whole[start:].strip():
                whole = whole[:start] + piece
                break
        else:
            raise AssertionError(f"piece does not overlap the one before: {piece[:60]!r}")
    return whole


def _headings(source: str) -> list[str]:
    found, fenced = [], False
    for line in source.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and (match := _ATX.match(line)) and match.group(1).strip():
            found.append(match.group(1).strip())
    return found


# ---- notebooks: the pdsh corpus ----------------------------------------------------------


@needs_pdsh
def test_every_pdsh_chunk_fits_the_window(pdsh, counter: HFTokenCounter) -> None:
    assert len(pdsh) == 66
    for name, (_, chunks) in pdsh.items():
        assert chunks, name
        for chunk in chunks:
            assert chunk.n_tokens == counter.count(chunk.text) <= counter.window == 256
            assert chunk.path == name
            assert chunk.cells and chunk.start_line is None and chunk.end_line is None


@needs_pdsh
def test_pdsh_chunks_cover_every_cell_source(pdsh) -> None:
    for name, (notebook, chunks) in pdsh.items():
        texts: dict[int, list[str]] = defaultdict(list)  # one cell's pieces, in part order
        for chunk in chunks:
            for index in chunk.cells:
                texts[index].append(_body(chunk))
        for index, cell in enumerate(notebook.cells):
            source = cell.source.strip()
            if not source:
                continue
            assert index in texts, f"{name} cell {index} is in no chunk"
            covered = _stitch(texts[index]) if len(texts[index]) > 1 else texts[index][0]
            # The whole source, in order: every line and every token of it reaches the index.
            assert source in covered, f"{name} cell {index}"


@needs_pdsh
def test_pdsh_long_cells_are_split_into_overlapping_parts(pdsh, counter) -> None:
    split_cells = 0
    for _, chunks in pdsh.values():
        parts: dict[int, list[Chunk]] = defaultdict(list)
        for chunk in chunks:
            if chunk.part > 0 or len(chunk.cells) == 1:
                parts[chunk.cells[0]].append(chunk)
        for pieces in parts.values():
            if len(pieces) < 2:
                continue
            split_cells += 1
            assert [piece.part for piece in pieces] == list(range(len(pieces)))
            assert len({piece.title for piece in pieces}) == 1
            first_lines = {piece.text.split("\n", 1)[0] for piece in pieces}
            if pieces[0].title is not None:  # the section header is repeated on every part
                assert first_lines == {f"# Section: {pieces[0].title}"}
            _stitch([_body(piece) for piece in pieces])  # raises if two parts do not overlap
    assert split_cells >= 10


@needs_pdsh
def test_pdsh_packing_fills_chunks_within_sections(pdsh, counter: HFTokenCounter) -> None:
    packed_tokens, single_tokens = [], []
    for name, (notebook, chunks) in pdsh.items():
        packed_tokens += [chunk.n_tokens for chunk in chunks]
        source = nbformat.writes(notebook)
        single_tokens += [
            c.n_tokens for c in chunk_notebook(source, name, counter, pack_cells=False)
        ]
        heading_cells, nearest, heading = set(), {}, None
        for index, cell in enumerate(notebook.cells):
            found = _headings(cell.source) if cell.cell_type == "markdown" else []
            if found:
                heading_cells.add(index)
                heading = found[-1]
            nearest[index] = heading
        for chunk in chunks:
            # A heading cell can only open a chunk, and the title is the heading in force.
            assert not heading_cells & set(chunk.cells[1:]), f"{name} {chunk.cells}"
            assert chunk.title == nearest[chunk.cells[0]], f"{name} {chunk.cells}"
            cell_kind = f"{notebook.cells[chunk.cells[0]].cell_type}_cell"
            assert chunk.kind == (ChunkKind.CELLS if len(chunk.cells) > 1 else cell_kind)
    packed, single = statistics.mean(packed_tokens), statistics.mean(single_tokens)
    print(
        f"\npdsh: {len(packed_tokens)} chunks, tokens mean {packed:.1f} min {min(packed_tokens)}"
        f" max {max(packed_tokens)}, total {sum(packed_tokens)};"
        f" one cell per chunk: {len(single_tokens)} chunks, mean {single:.1f},"
        f" total {sum(single_tokens)}"
    )
    assert packed >= 1.5 * single, (packed, single)
    assert statistics.median(packed_tokens) >= 180


# ---- notebooks: built here ---------------------------------------------------------------


def _notebook_json(*cells: nbformat.NotebookNode) -> str:
    return nbformat.writes(new_notebook(cells=list(cells)))


def test_outputs_keep_trimmed_text_and_skip_images_and_tracebacks(counter) -> None:
    printed = "".join(f"line {i} of the training log\n" for i in range(100))
    code = new_code_cell(
        "train(model)",
        outputs=[
            new_output("stream", name="stdout", text=printed),
            new_output(
                "display_data",
                data={"image/png": "iVBORw0KGgoAAAANSUhEUg", "text/plain": "<Figure size 640x480>"},
            ),
            new_output("execute_result", data={"text/plain": "<Axes at 0x7f3a2c1d>"}),
            new_output(
                "error",
                ename="ValueError",
                evalue="bad shape",
                traceback=["\x1b[0;31mTraceback (most recent call last)\x1b[0m", "  File x.py"],
            ),
        ],
    )
    chunks = chunk_notebook(_notebook_json(code), "nb.ipynb", counter, max_output_chars=400)
    assert len(chunks) == 1
    text = chunks[0].text
    assert text.startswith("train(model)\n# Output:\nline 0 of the training log\n")
    output = text.split("# Output:\n", 1)[1]
    assert len(output) <= 400 + len("\n...") and output.endswith("\n...")
    assert "line 99" not in text  # the trimmed tail
    for skipped in ("iVBOR", "<Figure", "0x7f3a2c1d", "Traceback", "\x1b"):
        assert skipped not in text
    error_only = new_code_cell(
        "1/0", outputs=[new_output("error", ename="ZeroDivisionError", evalue="division by zero")]
    )
    chunks = chunk_notebook(_notebook_json(error_only), "nb.ipynb", counter)
    assert chunks[0].text == "1/0\n# Output:\nZeroDivisionError: division by zero"


def test_cells_pack_under_their_heading_and_carry_it(counter) -> None:
    notebook = _notebook_json(
        new_code_cell("import numpy as np"),
        new_markdown_cell("# Arrays\nNumPy arrays are fast."),
        new_code_cell("x = np.arange(10)"),
        new_code_cell(""),  # empty cells are skipped but keep their index
        new_raw_cell("raw text"),
        new_markdown_cell("```python\n# not a heading\n```"),
        new_markdown_cell("## Broadcasting"),
        new_code_cell("x + 1"),
    )
    chunks = chunk_notebook(notebook, "nb.ipynb", counter)
    summary = [(c.kind, c.cells, c.title) for c in chunks]
    assert summary == [
        (ChunkKind.CODE_CELL, (0,), None),
        (ChunkKind.CELLS, (1, 2, 4, 5), "Arrays"),
        (ChunkKind.CELLS, (6, 7), "Broadcasting"),
    ]
    assert chunks[0].text == "import numpy as np"
    assert chunks[1].text == (
        "# Section: Arrays\n# Arrays\nNumPy arrays are fast.\n\nx = np.arange(10)\n\nraw text"
        "\n\n```python\n# not a heading\n```"
    )
    assert chunks[2].text == "# Section: Broadcasting\n## Broadcasting\n\nx + 1"
    alone = new_notebook(cells=[new_raw_cell("just raw")])
    assert chunk_notebook(nbformat.writes(alone), "r.ipynb", counter)[0].kind is ChunkKind.TEXT


def test_a_long_cell_is_split_with_its_header_on_each_part(counter) -> None:
    source = "\n".join(
        f"result_{i} = transform(frame, column='c{i}', scale={i})" for i in range(80)
    )
    notebook = _notebook_json(new_markdown_cell("## Transforms"), new_code_cell(source))
    chunks = chunk_notebook(notebook, "nb.ipynb", counter)
    parts = [c for c in chunks if c.cells == (1,)]
    assert len(parts) >= 4
    assert [c.part for c in parts] == list(range(len(parts)))
    for part in parts:
        assert part.kind is ChunkKind.CODE_CELL and part.title == "Transforms"
        assert part.text.startswith("# Section: Transforms\nresult_")
        assert part.n_tokens == counter.count(part.text) <= 256
    assert _stitch([_body(c) for c in parts]) == source


def test_invalid_notebooks_raise_chunk_error(counter, tmp_path: Path) -> None:
    for bad in ("not json", "[1, 2]", '{"cells": 5}', "{"):
        with pytest.raises(ChunkError, match="invalid notebook"):
            chunk_notebook(bad, "bad.ipynb", counter)
    path = tmp_path / "bad.ipynb"
    path.write_text("{ nope", encoding="utf-8")
    with pytest.raises(ChunkError, match="invalid notebook"):
        chunk_file(path, "bad.ipynb", counter)


def test_binary_and_undecodable_files_raise_chunk_error(counter, tmp_path: Path) -> None:
    for name, data in (("a.txt", b"PK\x03\x04\x00\x00zip"), ("b.py", b"x = '\xff\xfe'\n")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ChunkError, match="binary or non-UTF-8 file"):
            chunk_file(path, name, counter)
        with pytest.raises(ChunkError, match="binary or non-UTF-8 file"):
            chunk_bytes(data, name, counter)


# ---- Python --------------------------------------------------------------------------------

PY_SOURCE = '''\
import os
import sys

TIMEOUT = 30


class Greeter:
    """Says hello."""

    greeting = "hello"

    @staticmethod
    def make(name):
        return Greeter(name)

    def greet(self, name):
        def shout(text):
            return text.upper()

        return shout(f"{self.greeting} {name}")


# Adds one.
def helper(x):
    return x + 1


if __name__ == "__main__":
    print(helper(TIMEOUT))
'''


def test_python_definitions_have_their_own_chunks(counter) -> None:
    chunks = chunk_python(PY_SOURCE, "pkg/greet.py", counter)
    summary = [(c.kind, c.title, c.start_line, c.end_line, c.part) for c in chunks]
    assert summary == [
        (ChunkKind.MODULE, None, 1, 4, 0),
        (ChunkKind.CLASS, "Greeter", 7, 16, 0),
        (ChunkKind.METHOD, "Greeter.make", 12, 14, 0),
        (ChunkKind.METHOD, "Greeter.greet", 16, 20, 0),
        (ChunkKind.FUNCTION, "helper", 23, 25, 0),
        (ChunkKind.MODULE, None, 28, 29, 0),
    ]
    by_title = {c.title: c.text for c in chunks}
    assert chunks[0].text == "# pkg/greet.py: module\nimport os\nimport sys\n\nTIMEOUT = 30"
    class_text = by_title["Greeter"]
    assert class_text.startswith(
        '# pkg/greet.py: Greeter — Says hello.\nclass Greeter:\n    """Says hello."""'
    )
    assert '    greeting = "hello"' in class_text
    assert "    @staticmethod\n    def make(name):" in class_text  # the signatures stay
    assert "return Greeter(name)" not in class_text and "shout" not in class_text  # bodies go
    assert by_title["Greeter.make"].startswith(
        "# pkg/greet.py: Greeter.make(name) — (Says hello.)\n    @staticmethod\n"
    )
    assert "        def shout(text):\n            return text.upper()" in by_title["Greeter.greet"]
    # No docstring: the comment above the definition is its summary.
    assert by_title["helper"].startswith(
        "# pkg/greet.py: helper(x) — Adds one.\n# Adds one.\ndef helper(x):"
    )
    for chunk in chunks:
        assert chunk.n_tokens == counter.count(chunk.text)


def test_a_long_python_function_is_split_into_overlapping_parts(counter) -> None:
    body = [f"    total += compute_value_{i}(argument_{i}, weight={i})" for i in range(150)]
    lines = ["def long_function(data):", "    total = 0", *body, "    return total"]
    source = "x = 1\n\n\n" + "\n".join(lines) + "\n"
    chunks = [c for c in chunk_python(source, "long.py", counter) if c.title == "long_function"]
    assert len(chunks) >= 5
    assert [c.part for c in chunks] == list(range(len(chunks)))
    assert chunks[0].start_line == 4 and chunks[-1].end_line == 4 + len(lines) - 1
    for previous, following in pairwise(chunks):
        assert following.start_line <= previous.end_line  # the overlap
    for chunk in chunks:
        assert chunk.kind is ChunkKind.FUNCTION
        assert chunk.n_tokens == counter.count(chunk.text) <= 256
        assert chunk.text.startswith("# long.py: long_function(data)\n")
        # Whole lines: cuts fall on line breaks and overlaps start at the start of a line.
        assert chunk.text.split("\n")[1:] == lines[chunk.start_line - 4 : chunk.end_line - 3]
    assert _stitch([_body(c) for c in chunks]) == "\n".join(lines)


def test_python_with_syntax_errors_still_chunks(counter) -> None:
    source = (
        "def broken(:\n    pass\n\nclass Fine:\n    def ok(self):\n        return 1\n\nx = [1, 2\n"
    )
    chunks = chunk_python(source, "broken.py", counter)
    assert chunks
    assert "Fine.ok" in {c.title for c in chunks}
    shown = "\n".join(c.text for c in chunks)
    for line in source.splitlines():
        assert line in shown
    assert chunk_python("", "empty.py", counter) == []
    assert chunk_python("\n  \n", "blank.py", counter) == []


def test_every_line_of_real_python_lands_in_a_chunk(counter) -> None:
    package = Path(chunk_python.__code__.co_filename).parent
    for path in [*package.glob("*.py"), Path(__file__)]:
        source = path.read_text(encoding="utf-8")
        chunks = chunk_python(source, path.name, counter)
        shown = {line for c in chunks for line in c.text.split("\n")[1:]}
        assert {line for line in source.splitlines() if line.strip()} <= shown, path.name
        assert all(c.n_tokens == counter.count(c.text) <= 256 for c in chunks)


# ---- JavaScript, Markdown, text --------------------------------------------------------

JS_SOURCE = """\
import { api } from "./api.js";

const BASE = "/rubberduck";

// Fetches one page.
export async function fetchPage(n) {
  return api(`${BASE}/page/${n}`);
}

export class Client extends Base {
  static retries = 3;
  onClick = (event) => {
    this.handle(event);
  };

  constructor(url) {
    super();
    this.url = url;
  }
}

const square = (x) => {
  return x * x;
};

module.exports.cube = function (x) {
  return x * x * x;
};
console.log(square(2));
"""


def test_javascript_definitions_have_their_own_chunks(counter) -> None:
    chunks = chunk_javascript(JS_SOURCE, "web/client.js", counter)
    summary = [(c.kind, c.title, c.start_line, c.end_line) for c in chunks]
    assert summary == [
        (ChunkKind.MODULE, None, 1, 3),
        (ChunkKind.FUNCTION, "fetchPage", 5, 8),
        (ChunkKind.CLASS, "Client", 10, 20),
        (ChunkKind.METHOD, "Client.onClick", 12, 14),
        (ChunkKind.METHOD, "Client.constructor", 16, 19),
        (ChunkKind.FUNCTION, "square", 22, 24),
        (ChunkKind.FUNCTION, "module.exports.cube", 26, 28),
        (ChunkKind.MODULE, None, 29, 29),
    ]
    class_text = chunks[2].text
    assert class_text.startswith(
        "// web/client.js: Client(extends Base)\nexport class Client extends Base {"
    )
    assert "static retries = 3;" in class_text and "this.url" not in class_text
    assert chunks[1].text.startswith(
        "// web/client.js: fetchPage(n) — Fetches one page.\n// Fetches one page.\n"
    )
    minified = "function a(){return 1}function b(){return 2}var c=a()+b();"
    (chunk,) = chunk_javascript(minified, "min.js", counter)
    assert chunk.kind is ChunkKind.MODULE and minified in chunk.text


MD_SOURCE = """\
Intro text before any heading.

# Guide

## Install

```bash
# not a heading
pip install rubberduck-jupyter
```

## Usage
Open the sidebar.

Setext heading
--------------
{long}
"""


def test_markdown_sections_carry_their_heading_path(counter) -> None:
    long = "\n\n".join(f"Paragraph {i} explains option number {i} in detail." for i in range(60))
    source = MD_SOURCE.format(long=long)
    chunks = chunk_markdown(source, "docs/guide.md", counter)
    head = [(c.title, c.start_line, c.end_line, c.part) for c in chunks[:3]]
    assert head == [(None, 1, 1, 0), ("Install", 3, 10, 0), ("Usage", 12, 13, 0)]
    assert chunks[0].text == "# docs/guide.md\nIntro text before any heading."
    assert chunks[1].text.startswith("# docs/guide.md: Guide > Install\n# Guide\n\n## Install\n")
    assert "# not a heading" in chunks[1].text
    setext = chunks[3:]
    assert len(setext) >= 3  # the long section, packed by paragraphs
    assert [c.part for c in setext] == list(range(len(setext)))
    for chunk in chunks:
        assert chunk.kind is ChunkKind.MARKDOWN
        assert chunk.n_tokens == counter.count(chunk.text) <= 256
    for chunk in setext:
        assert chunk.title == "Setext heading"
        assert chunk.text.startswith("# docs/guide.md: Guide > Setext heading\n")
    shown = "\n".join(c.text for c in chunks)
    assert all(line in shown for line in source.splitlines())
    assert statistics.mean(c.n_tokens for c in setext[:-1]) >= 200


def test_text_lines_pack_and_a_huge_line_is_split(counter) -> None:
    lines = [f"setting_{i} = value_{i}" for i in range(120)]
    huge = " ".join(f"word{i}" for i in range(600))
    source = "\n".join([*lines[:60], huge, *lines[60:]]) + "\n"
    chunks = chunk_text(source, "conf/settings.ini", counter)
    huge_parts = [c for c in chunks if c.start_line == c.end_line == 61]
    assert len(huge_parts) >= 3
    assert [c.part for c in huge_parts] == list(range(len(huge_parts)))
    assert _stitch([c.text.split("\n", 1)[1] for c in huge_parts]) == huge
    for chunk in chunks:
        assert chunk.kind is ChunkKind.TEXT and chunk.text.startswith("# conf/settings.ini\n")
        assert chunk.n_tokens == counter.count(chunk.text) <= 256
    packed = [c for c in chunks if c not in huge_parts]
    assert len(packed) < 10 and packed[0].start_line == 1 and packed[-1].end_line == 121
    shown = "\n".join(c.text for c in packed)
    assert all(line in shown for line in lines)


def test_chunk_file_picks_the_chunker_by_suffix(counter, tmp_path: Path) -> None:
    files = {
        "a.py": ("def f():\n    return 1\n", ChunkKind.FUNCTION),
        "b.mjs": ("export function g() {}\n", ChunkKind.FUNCTION),
        "c.ts": ("function h(): number { return 1 }\n", ChunkKind.TEXT),
        "d.markdown": ("# Title\ntext\n", ChunkKind.MARKDOWN),
        "e.yaml": ("key: value\n", ChunkKind.TEXT),
    }
    for name, (content, kind) in files.items():
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        assert [c.kind for c in chunk_file(path, name, counter)] == [kind], name
    empty = tmp_path / "empty.py"
    empty.write_bytes(b"\xef\xbb\xbf")  # a byte-order mark alone
    assert chunk_file(empty, "empty.py", counter) == []


# ---- split_to_window ---------------------------------------------------------------------


def test_split_to_window_fits_overlaps_and_prefers_line_breaks(counter) -> None:
    text = "\n".join(f"row {i}: alpha beta gamma delta epsilon zeta" for i in range(100))
    pieces = split_to_window(text, counter, 32, reserved_tokens=20)
    assert len(pieces) >= 5
    for piece in pieces:
        assert counter.count(piece) <= 256 - 20
    for piece in pieces[:-1]:
        assert piece.endswith("zeta")  # every cut fell on a line break
    for previous, following in pairwise(pieces):
        shared = following[: len(following) // 10]
        assert shared in previous  # the overlap
    assert _stitch(pieces) == text
    one_line = " ".join(f"token{i}" for i in range(400))
    pieces = split_to_window(one_line, counter, 16)
    assert all(counter.count(piece) <= 256 for piece in pieces)
    assert _stitch(pieces) == one_line
    assert split_to_window("short text", counter) == ["short text"]


# ---- hostile input -----------------------------------------------------------------------

_SHARDS = (
    "a", "Z", " ", "\n", "\n\n", "#", "# ", "## ", "```", "def ", "class ", "(", ")", ":",
    "    ", "é", "日本", "🦆", "\t", "{", "}", "=", "=>", "function ", "const ", "tokenization",
    "supercalifragilistic" * 8, "\r\n", "\u2028", "\x01", "-----\n", "===\n",
)  # fmt: skip


def _printable(text: str) -> str:
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")


def test_hostile_text_keeps_the_window_and_every_word(counter) -> None:
    """Random shards of code, markdown, control characters and over-long words: broken
    syntax must neither break the window nor lose text (tree-sitter's error recovery can
    leave bytes outside every node)."""
    rng = random.Random(2)  # a seed whose broken Python leaves text outside every node
    for trial in range(12):
        text = "".join(rng.choice(_SHARDS) for _ in range(rng.randint(0, 3000)))
        words = {_printable(w) for w in text.split()} - {""}
        for name in ("a.py", "a.js", "a.md", "a.txt"):
            chunks = chunk_source(text, name, counter, overlap_tokens=rng.choice([8, 32, 200]))
            for chunk in chunks:
                assert chunk.n_tokens == counter.count(chunk.text) <= 256
            shown = _printable("\n".join(chunk.text for chunk in chunks))
            # Words longer than an overlap may be cut between two parts; shorter ones never.
            lost = {w for w in words if len(w) < 60 and w not in shown}
            assert not lost, (trial, name, sorted(lost)[:5])
