"""Identifiers split for BM25 (index/terms.py): parts and the whole token, in text and in
queries alike."""

from __future__ import annotations

import pytest

from rubberduck_jupyter.index.bm25 import BM25Index
from rubberduck_jupyter.index.terms import Tokenizer, identifier_parts


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer()


@pytest.mark.parametrize(
    ("word", "parts"),
    [
        ("read_csv_chunked", ["read", "csv", "chunked"]),
        ("camelCase", ["camel", "case"]),
        ("HTTPServer", ["http", "server"]),
        ("parseJSON2", ["parse", "json", "2"]),
        ("getHTTPResponseCode", ["get", "http", "response", "code"]),
        ("XMLHttpRequest", ["xml", "http", "request"]),
        ("float32", ["float", "32"]),
        ("b64encode", ["b", "64", "encode"]),
        ("__init__", ["init"]),
        ("_private_name", ["private", "name"]),
        ("MAX_QUERY_TERMS", ["max", "query", "terms"]),
        ("URLs", ["urls"]),  # a plural acronym is one word, not "ur" + "ls"
        ("HTTPs", ["https"]),
        ("IDs", ["ids"]),
        ("mean", ["mean"]),
        ("Mean", ["mean"]),
        ("0x1f3a", ["0x1f3a"]),  # starts with a digit: a number, kept whole
        ("1e10", ["1e10"]),
        ("d41d8cd98f00b204", ["d41d8cd98f00b204"]),  # a hash: its pieces mean nothing
        ("Größe_Wert", ["größe", "wert"]),
        ("ПриветМир", ["привет", "мир"]),  # case changes of any script
        ("数据_分析", ["数据", "分析"]),  # letters without case are one part
        ("___", []),
    ],
)
def test_identifier_parts(word: str, parts: list[str]) -> None:
    assert identifier_parts(word) == parts


def test_an_identifier_gives_its_stemmed_parts_and_itself_whole(tokenizer: Tokenizer) -> None:
    assert tokenizer.terms("read_csv_chunked") == ["read_csv_chunked", "read", "csv", "chunk"]
    assert tokenizer.terms("HTTPServer") == ["httpserver", "http", "server"]
    assert tokenizer.terms("parseJSON2") == ["parsejson2", "pars", "json", "2"]
    # A plain word is one term, as before; a name padded with underscores is its core.
    assert tokenizer.terms("Grouping __init__") == ["group", "init"]
    # Accents are stripped before the split: the same terms as the unaccented spelling.
    assert tokenizer.terms("naïve_Café") == tokenizer.terms("naive_Cafe")
    assert tokenizer.terms("naïve_Café") == ["naive_cafe", "naiv", "cafe"]


def test_the_whole_token_is_one_term_that_the_parts_alone_do_not_give(
    tokenizer: Tokenizer,
) -> None:
    words = tokenizer.term_counts("read the csv in chunks")
    code = tokenizer.term_counts("df = read_csv_chunked(path)")
    assert "read_csv_chunked" in code and "read_csv_chunked" not in words
    assert {"read", "csv", "chunk"} <= words.keys() & code.keys()


def test_queries_are_split_the_same_way(tokenizer: Tokenizer) -> None:
    assert tokenizer.query_terms("how do I read_csv in chunks") == [
        "how",
        "do",
        "i",
        "read_csv",
        "read",
        "csv",
        "in",
        "chunk",
    ]
    assert tokenizer.query_terms("HTTPServer http server") == ["httpserver", "http", "server"]


def test_an_identifier_in_a_query_matches_both_ways(tokenizer: Tokenizer) -> None:
    texts = [
        "frame = read_csv(path)",  # the identifier itself
        "read a csv file from a path",  # the same words in prose
        "write json to a path",
    ]
    added = [(row, tokenizer.term_counts(text)) for row, text in enumerate(texts)]
    index = BM25Index.empty().updated([], added, len(texts))
    rows, scores = index.top(tokenizer.query_terms("read_csv"), 3)
    assert rows.tolist()[:2] == [0, 1]  # both found, the exact identifier first
    assert scores[0] > scores[1] > 0
    assert 2 not in rows.tolist()
    # And words in a query find the identifier written whole in code.
    rows, _ = index.top(tokenizer.query_terms("read csv"), 3)
    assert set(rows.tolist()[:2]) == {0, 1}


def test_the_cache_keeps_results_per_spelling(tokenizer: Tokenizer) -> None:
    first = tokenizer.terms("getValue get_value GetValue")
    assert first == [
        "getvalue",
        "get",
        "valu",
        "get_value",
        "get",
        "valu",
        "getvalue",
        "get",
        "valu",
    ]
    assert tokenizer.terms("getValue get_value GetValue") == first  # served from the cache
