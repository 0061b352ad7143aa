"""Ranking code by what it does (issue 14): BM25 weighs a code chunk's header fields over its
body, hybrid search fuses the two lists by their scaled scores, and a file's module code is
one hit. Measured on benchmarks/index_quality.py; here, the behaviour each one promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from rubberduck_jupyter.index import bm25
from rubberduck_jupyter.index.bm25 import HEADER_TERM_WEIGHT, Tokenizer, chunk_term_counts
from rubberduck_jupyter.index.chunkers import chunk_python
from rubberduck_jupyter.index.chunkers.headers import header_fields
from rubberduck_jupyter.index.indexer import Indexer
from rubberduck_jupyter.index.search import (
    Hit,
    HybridSearcher,
    collapse_definitions,
    reciprocal_rank_fusion,
    score_fusion,
)
from rubberduck_jupyter.index.store import IndexStore
from rubberduck_jupyter.index.tokens import minilm_token_counter
from rubberduck_jupyter.testing.embedding import HashingEmbedder

SOURCE = '''\
def split_host_and_port(netloc):
    """Split a network location into its host name and port number."""
    host, _, port = netloc.rpartition(":")
    return host, int(port)
'''


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer()


# --- the header's fields, weighted in BM25 --------------------------------------------------


def test_header_fields_are_the_first_line_after_the_path() -> None:
    (chunk,) = chunk_python(SOURCE, "pkg/net_tools.py", minilm_token_counter())
    fields = header_fields(chunk.text)
    assert fields.startswith("split_host_and_port(netloc) — Split a network location")
    assert "net_tools" not in fields  # the path, shared by every chunk of the file
    assert "rpartition" not in fields  # the body
    assert header_fields("x = 1\ny = 2") == ""  # no header line


def test_header_terms_count_weight_times_and_path_and_body_once(tokenizer: Tokenizer) -> None:
    (chunk,) = chunk_python(SOURCE, "pkg/net_tools.py", minilm_token_counter())
    plain = tokenizer.term_counts(chunk.text)
    weighted = chunk_term_counts(tokenizer, chunk.kind, chunk.text)
    header = tokenizer.term_counts(header_fields(chunk.text))
    assert HEADER_TERM_WEIGHT > 1
    for term, count in plain.items():
        assert weighted[term] == count + (HEADER_TERM_WEIGHT - 1) * header.get(term, 0), term
    # In the summary (weighted) and in the docstring below it (once).
    assert plain["locat"] == 2 and weighted["locat"] == HEADER_TERM_WEIGHT + 1
    assert weighted["net_tools"] == plain["net_tools"] == 1  # the path
    assert weighted["rpartit"] == plain["rpartit"] == 1  # the body
    assert set(weighted) == set(plain)  # weights, never new terms


def test_notebook_and_text_chunks_are_counted_plainly(tokenizer: Tokenizer) -> None:
    text = "# Section: cleaning: drop rows\ndf.dropna()"
    for kind in ("code_cell", "markdown_cell", "cells", "markdown", "text"):
        assert chunk_term_counts(tokenizer, kind, text) == tokenizer.term_counts(text)


def test_a_definition_named_by_the_query_outranks_code_that_uses_its_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "codec.py").write_text(
        "def rotate_credentials(vault):\n    return vault.renew(now())\n"
    )
    (root / "jobs.py").write_text(
        "def nightly(vault):\n"
        "    rotate(vault)\n"
        "    credentials = vault.credentials()\n"
        "    log(credentials, rotate)\n"
    )

    def first(weight: int) -> str:
        monkeypatch.setattr(bm25, "HEADER_TERM_WEIGHT", weight)
        embedder = HashingEmbedder()
        db = tmp_path / f"w{weight}.duckdb"
        with IndexStore(db, dim=embedder.dim, embedder_id=embedder.id) as store:
            Indexer(store, embedder).index_folder(root)
            hits = HybridSearcher(store, embedder.embed_query).search(
                "rotate credentials", 2, mode="bm25"
            )
            return hits[0].path

    assert first(HEADER_TERM_WEIGHT) == "codec.py"
    assert first(1) == "jobs.py"  # the body's words alone would win: the weight decides


# --- fusion by scaled scores ----------------------------------------------------------------


def test_score_fusion_scales_each_list_and_keeps_a_wide_lead() -> None:
    # 1 is far ahead in the vector list and absent from BM25's; 2 and 3 are behind it there
    # and first and second in BM25's.
    vector = ([1, 2, 3, 4], [0.9, 0.3, 0.29, 0.1])
    keyword = ([2, 3, 5, 6], [10.0, 9.8, 9.0, 1.0])
    fused = dict(score_fusion([vector, keyword], [0.6, 0.4]))
    assert fused[1] == pytest.approx(0.6)  # top of its list: 1 x weight; absent: 0
    assert fused[6] == pytest.approx(0.0)  # last of its list, absent from the other
    assert fused[2] == pytest.approx(0.6 * 0.25 + 0.4)
    order = [item for item, _ in score_fusion([vector, keyword], [0.6, 0.4])]
    assert order[:3] == [1, 2, 3]
    # Reciprocal rank fusion ranks by places only: 1 falls behind both.
    rrf = [item for item, _ in reciprocal_rank_fusion([vector[0], keyword[0]])]
    assert rrf[:3] == [2, 3, 1]


def test_score_fusion_of_equal_scores_empty_lists_and_ties() -> None:
    assert score_fusion([([7, 8], [2.0, 2.0])], [1.0]) == [(7, 1.0), (8, 1.0)]
    assert score_fusion([([], []), ([4, 5], [3.0, 1.0])], [0.6, 0.4]) == [(4, 0.4), (5, 0.0)]
    # Equal fused scores: first seen first, the earlier list's ids before the later's.
    tied = score_fusion([([1, 2], [1.0, 0.0]), ([3, 4], [1.0, 0.0])], [0.5, 0.5])
    assert [item for item, _ in tied] == [1, 3, 2, 4]
    with pytest.raises(ValueError):
        score_fusion([([1], [1.0])], [0.5, 0.5])


# --- one hit for a file's module code -------------------------------------------------------


def _hit(path: str, kind: str, title: str | None, text: str) -> Hit:
    return Hit(path, kind, 1.0, text, None, (), 1, 2, title, None, None)


def test_a_file_s_module_code_is_one_hit_at_its_best_place() -> None:
    hits = [
        _hit("a.py", "module", None, "import os"),
        _hit("a.py", "function", "f", "def f(): ..."),
        _hit("a.py", "module", None, "X = 1"),
        _hit("b.py", "module", None, "import sys"),
        _hit("a.py", "function", "f", "def f(): ... (part 2)"),
        _hit("n.ipynb", "code_cell", "Intro", "x = 1"),
        _hit("n.ipynb", "code_cell", "Intro", "y = 2"),
        _hit("c.py", "function", "g", "def g(): ..."),
    ]
    kept = collapse_definitions(hits, 10)
    assert [h.text for h in kept] == [
        "import os",
        "def f(): ...",
        "import sys",  # another file's module code is another hit
        "x = 1",
        "y = 2",  # notebook cells under one heading stay distinct
        "def g(): ...",
    ]
    assert [h.text for h in collapse_definitions(hits, 3)] == [h.text for h in kept[:3]]
