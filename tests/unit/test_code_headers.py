"""The header over each code chunk (chunkers/headers.py): path, qualified name, signature,
first sentence of the docstring; module code under the module docstring's. With the real
MiniLM tokenizer: the header is part of the text that is counted and must fit the window."""

from __future__ import annotations

from pathlib import Path

import pytest

from rubberduck_jupyter.index.chunkers import chunk_file, chunk_javascript, chunk_python
from rubberduck_jupyter.index.chunkers.headers import MAX_SIGNATURE_CHARS, clip, summary
from rubberduck_jupyter.index.terms import Tokenizer
from rubberduck_jupyter.index.tokens import (
    HFTokenCounter,
    minilm_token_counter,
    minilm_tokenizer_json,
)
from rubberduck_jupyter.index.types import Chunk, ChunkKind

SOURCE = '''\
"""Paths shared by the server and the CLI.

Everything here is pure: no file is touched.
"""

__all__ = ["common_prefix", "PathTable"]

import os


def common_prefix(paths: list[str], *, sep: str = "/") -> str:
    """Find the longest leading path that all the given paths share.

    An empty list gives "".
    """
    return os.path.commonpath(paths) if paths else ""


class PathTable(dict):
    """A table of paths by name. Not thread-safe."""

    @classmethod
    def from_lines(cls, lines):
        """Build a table from "name=path" lines."""
        return cls(line.split("=", 1) for line in lines)

    def resolve(self, name, default=None):
        return self.get(name, default)
'''


@pytest.fixture(scope="module")
def counter() -> HFTokenCounter:
    return minilm_token_counter()


def _by_title(chunks: list[Chunk]) -> dict[str | None, Chunk]:
    return {chunk.title: chunk for chunk in chunks}


def _header(chunk: Chunk) -> str:
    return chunk.text.split("\n", 1)[0]


def test_definitions_carry_path_qualified_name_signature_and_summary(counter) -> None:
    chunks = _by_title(chunk_python(SOURCE, "pkg/paths.py", counter))
    assert _header(chunks["common_prefix"]) == (
        "# pkg/paths.py: common_prefix(paths, *, sep)"
        " — Find the longest leading path that all the given paths share."
    )
    assert _header(chunks["PathTable"]) == (
        "# pkg/paths.py: PathTable(dict) — A table of paths by name."
    )
    # A method: its class in the name, the receiver (cls, self) left out of the signature,
    # its class's summary after its own.
    assert _header(chunks["PathTable.from_lines"]) == (
        '# pkg/paths.py: PathTable.from_lines(lines) — Build a table from "name=path" lines.'
        " (A table of paths by name.)"
    )
    assert _header(chunks["PathTable.resolve"]) == (
        # No docstring: the class's summary alone.
        "# pkg/paths.py: PathTable.resolve(name, default) — (A table of paths by name.)"
    )
    for chunk in chunks.values():
        assert chunk.n_tokens == counter.count(chunk.text) <= counter.window


def test_a_method_header_carries_its_own_class_s_summary_only(counter) -> None:
    source = (
        "class Outer:\n"
        '    """Holds the pool."""\n\n'
        "    def drain(self):\n"
        '        """Empty it."""\n\n'
        "    class Inner:\n"
        '        """One lease of the pool."""\n\n'
        "        def release(self):\n"
        "            return None\n\n"
        "class Bare:\n"
        "    def go(self):\n"
        "        return 1\n\n"
        "def free(x):\n"
        '    """Free x."""\n'
    )
    chunks = _by_title(chunk_python(source, "m.py", counter))
    assert _header(chunks["Outer.drain"]) == "# m.py: Outer.drain() — Empty it. (Holds the pool.)"
    # A nested class is not a method: its own summary alone; its methods get its summary.
    assert _header(chunks["Outer.Inner"]) == "# m.py: Outer.Inner — One lease of the pool."
    assert _header(chunks["Outer.Inner.release"]) == (
        "# m.py: Outer.Inner.release() — (One lease of the pool.)"
    )
    assert _header(chunks["Bare.go"]) == "# m.py: Bare.go()"  # no summary on either side
    assert _header(chunks["free"]) == "# m.py: free(x) — Free x."  # a function has no class


def test_module_code_carries_the_module_docstring_and_its_exports(counter) -> None:
    chunks = chunk_python(SOURCE, "pkg/paths.py", counter)
    module = [c for c in chunks if c.kind is ChunkKind.MODULE]
    assert module and all(
        _header(c) == "# pkg/paths.py: module — Paths shared by the server and the CLI."
        for c in module
    )
    # The names of __all__ reach BM25 in words: "common prefix" finds the module's chunk.
    terms = Tokenizer().term_counts(module[0].text)
    assert {"common_prefix", "common", "prefix", "pathtable", "path", "tabl"} <= terms.keys()


def test_line_numbers_stay_the_code_s(counter) -> None:
    lines = SOURCE.split("\n")
    for chunk in chunk_python(SOURCE, "pkg/paths.py", counter):
        assert chunk.start_line is not None and chunk.end_line is not None
        body = chunk.text.split("\n")[1:]
        assert body[0] == lines[chunk.start_line - 1]
        assert body[-1] == lines[chunk.end_line - 1]


def test_a_function_that_fits_stays_one_chunk(counter) -> None:
    chunks = chunk_python(SOURCE, "pkg/paths.py", counter)
    assert [c.part for c in chunks if c.title == "common_prefix"] == [0]


def test_every_part_of_a_split_definition_keeps_the_header(counter) -> None:
    body = [f"        total += weigh_{i}(item, factor={i})" for i in range(120)]
    source = "\n".join(
        [
            "class Scale:",
            "    def weigh_all(self, items, *, factor=1.0):",
            '        """Sum the weights of the items, each scaled by the factor."""',
            "        total = 0",
            *body,
            "        return total",
            "",
        ]
    )
    parts = [c for c in chunk_python(source, "scale.py", counter) if c.title == "Scale.weigh_all"]
    assert len(parts) >= 4
    assert [c.part for c in parts] == list(range(len(parts)))
    expected = (
        "# scale.py: Scale.weigh_all(items, *, factor)"
        " — Sum the weights of the items, each scaled by the factor."
    )
    lines = source.split("\n")
    for chunk in parts:
        assert _header(chunk) == expected
        assert chunk.n_tokens == counter.count(chunk.text) <= counter.window
        assert chunk.text.split("\n")[1:] == lines[chunk.start_line - 1 : chunk.end_line]


def test_signatures_are_names_and_long_ones_are_cut_short(counter) -> None:
    parameters = ", ".join(f"argument_{i}: dict[str, list[int]] = DEFAULT_{i}" for i in range(12))
    long_doc = "Do " + " ".join(["a great many things"] * 40) + "."
    source = f'def wide({parameters}) -> None:\n    """{long_doc}"""\n    return None\n'
    chunk = chunk_python(source, "wide.py", counter)[0]
    header = _header(chunk)
    # Names alone: annotations, defaults and the return type stay in the code line.
    assert header.startswith("# wide.py: wide(argument_0, argument_1, ")
    assert "dict[str" not in header and "DEFAULT_" not in header and "None" not in header
    signature = header.split(" — ")[0]
    assert signature.endswith(" ...") and len(signature) <= len("# wide.py: wide") + 84
    assert header.endswith(" ...")  # the summary is cut too
    assert len(counter.offsets(header)) <= counter.window // 4
    assert chunk.n_tokens == counter.count(chunk.text) <= counter.window


def test_headers_fit_a_small_window() -> None:
    small = HFTokenCounter(minilm_tokenizer_json(), window=64)
    for chunk in chunk_python(SOURCE * 3, "a/rather/deep/folder/of/the/project/paths.py", small):
        assert chunk.n_tokens == small.count(chunk.text) <= 64
        assert len(small.offsets(_header(chunk))) <= 64 // 4 + 3  # and " ..."


def test_summary_is_the_first_sentence_of_the_first_paragraph() -> None:
    assert summary("Returns the closest match\n    for the given code.\n\n    More.") == (
        "Returns the closest match for the given code."
    )
    assert summary("\n\n  Add two numbers. Then more.") == "Add two numbers."
    assert summary("Parse it.\n:param x: the thing") == "Parse it."
    assert summary("") == ""
    assert clip("word " * 100, 30).endswith(" ...") and len(clip("word " * 100, 30)) <= 34
    assert len(clip("x" * 200, MAX_SIGNATURE_CHARS)) <= MAX_SIGNATURE_CHARS + 4


JS_SOURCE = """\
/**
 * Fetches one page of results.
 * @param {number} n the page
 */
export async function fetchPage(n, { retries = 3 } = {}) {
  return api(n, retries);
}

export class Client extends Base {
  /** Opens the connection. Once. */
  open(url) {
    this.url = url;
  }
  onClick = (event) => this.handle(event);
}

const square = x => x * x;
"""


def test_javascript_headers(counter) -> None:
    chunks = _by_title(chunk_javascript(JS_SOURCE, "web/client.js", counter))
    assert _header(chunks["fetchPage"]) == (
        "// web/client.js: fetchPage(n, { retries = 3 }) — Fetches one page of results."
    )
    assert _header(chunks["Client"]) == "// web/client.js: Client(extends Base)"
    assert _header(chunks["Client.open"]) == (
        "// web/client.js: Client.open(url) — Opens the connection."
    )
    assert _header(chunks["Client.onClick"]) == "// web/client.js: Client.onClick(event)"
    assert _header(chunks["square"]) == "// web/client.js: square(x)"


def test_real_python_keeps_every_line_and_fits(counter) -> None:
    """This project's own chunkers: every line indexed, every chunk within the window,
    every definition's parts under one header."""
    package = Path(chunk_python.__code__.co_filename).parent
    for path in sorted(package.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        chunks = chunk_file(path, path.name, counter)
        shown = {line for c in chunks for line in c.text.split("\n")[1:]}
        assert {line for line in source.splitlines() if line.strip()} <= shown, path.name
        for previous, chunk in zip([None, *chunks], chunks, strict=False):
            assert chunk.n_tokens == counter.count(chunk.text) <= counter.window
            title = chunk.title or "module"
            assert _header(chunk).startswith(f"# {path.name}: {title}")
            if chunk.part:
                assert previous is not None and _header(chunk) == _header(previous)
