"""Code found by what it does, through BM25 alone: a real index (DuckDB file, the
keyword-only embedder, the real chunkers and tokenizer) over a few real standard-library
files, asked in words that are not the function's name.

Before identifiers were split, `createAttributeNS` was one term: a question in words never
reached it (rank > 10); split, its parts meet the question's words."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest

from rubberduck_jupyter.index.embedder_config import EmbedderConfig, build_embedder
from rubberduck_jupyter.index.indexer import Indexer
from rubberduck_jupyter.index.search import HybridSearcher
from rubberduck_jupyter.index.store import IndexStore

FILES = ("logging/__init__.py", "xml/dom/minidom.py", "json/decoder.py")


@pytest.fixture(scope="module")
def searcher(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("code_retrieval")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    root = tmp / "project"
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(stdlib / name, root / name)
    embedder = build_embedder(EmbedderConfig("none"))
    with IndexStore(tmp / "index.duckdb", dim=embedder.dim, embedder_id=embedder.id) as store:
        report = Indexer(store, embedder).index_folder(root)
        assert report.files_indexed == len(FILES)
        yield HybridSearcher(store, embedder.embed_query)


def _titles(searcher: HybridSearcher, query: str) -> list[str | None]:
    return [hit.title for hit in searcher.search(query, 3, mode="bm25")]


def test_a_camel_case_method_found_by_a_question_in_words(searcher) -> None:
    assert "Document.createAttributeNS" in _titles(
        searcher, "create an attribute node with a namespace"
    )


def test_the_identifier_itself_still_finds_it(searcher) -> None:
    assert _titles(searcher, "createAttributeNS")[0] == "Document.createAttributeNS"
    assert "Logger.setLevel" in _titles(searcher, "Logger.setLevel")


def test_hits_keep_the_code_s_line_numbers(searcher) -> None:
    hit = searcher.search("create an attribute node with a namespace", 3, mode="bm25")[0]
    lines = (Path(sysconfig.get_paths()["stdlib"]) / hit.path).read_text().split("\n")
    body = hit.text.split("\n")[1:]  # under its header
    assert hit.start_line is not None and hit.end_line is not None
    assert body == lines[hit.start_line - 1 : hit.end_line]
