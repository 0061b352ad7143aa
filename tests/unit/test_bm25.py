"""The BM25 tokenizer and in-memory inverted index, without DuckDB."""

from __future__ import annotations

import math
import threading
from collections import Counter

import numpy as np
import pytest

from rubberduck_jupyter.index import bm25
from rubberduck_jupyter.index.bm25 import K1, B, BM25Index, Tokenizer, top_k


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer()


# --- tokenizer ----------------------------------------------------------------------------


def test_terms_are_letters_and_digits_lowercased_and_stemmed(tokenizer: Tokenizer) -> None:
    # Identifiers give their parts and themselves whole (test_code_terms.py has the cases).
    assert tokenizer.terms("read_csv('a.b')") == ["read_csv", "read", "csv", "a", "b"]
    assert tokenizer.terms("df.groupby(key).Mean()") == ["df", "groupbi", "key", "mean"]
    assert tokenizer.terms("float32 x2") == ["float32", "float", "32", "x2", "x", "2"]
    assert tokenizer.terms("grouping groups grouped") == ["group"] * 3
    assert tokenizer.terms("  ,;()[]{}  ") == []
    # No stopwords: code is searched for exactly these.
    assert tokenizer.terms("the mean value of None if not") == [
        "the",
        "mean",
        "valu",
        "of",
        "none",
        "if",
        "not",
    ]


def test_accents_and_other_scripts(tokenizer: Tokenizer) -> None:
    assert tokenizer.terms("naïve café") == tokenizer.terms("naive cafe") == ["naiv", "cafe"]
    assert tokenizer.terms("İstanbul Ångström") == ["istanbul", "angstrom"]
    assert tokenizer.terms("Привет, мир") == ["привет", "мир"]  # kept, not stemmed
    assert tokenizer.terms("数据 分析") == ["数据", "分析"]
    # One letter that decomposes into several words: split, never a term with a space.
    ligature = tokenizer.terms("\ufdfa")
    assert len(ligature) > 1 and all(t.isalnum() for t in ligature)


def test_query_terms_are_distinct_and_capped(tokenizer: Tokenizer) -> None:
    assert tokenizer.query_terms("mean Mean means of mean") == ["mean", "of"]
    consonants = "bcdfghjklmnpqrtvwxz"  # no suffix for the stemmer to take off
    words = [f"zz{a}{b}" for a in consonants for b in consonants][:100]
    assert tokenizer.query_terms(" ".join(words)) == words[: bm25.MAX_QUERY_TERMS]
    assert tokenizer.query_terms("'\"; DROP TABLE chunks; --") == ["drop", "tabl", "chunk"]


def test_term_counts(tokenizer: Tokenizer) -> None:
    assert tokenizer.term_counts("Plot plots; plotting x") == {"plot": 3, "x": 1}


def test_stemming_from_many_threads_matches_one_thread() -> None:
    # Snowball stemmers keep state while they work: the tokenizer must serialize them.
    words = [
        f"{stem}{suffix}"
        for stem in ("run", "group", "index", "valu")
        for suffix in ("ing", "ed", "s", "ation", "ness", "ly", "er", "ize")
    ]
    texts = [" ".join(np.random.default_rng(i).permutation(words)) for i in range(40)]
    expected = [Tokenizer().terms(t) for t in texts]
    shared = Tokenizer()
    results: dict[int, list[str]] = {}

    def work(start: int) -> None:
        for i in range(start, len(texts), 4):
            results[i] = shared.terms(texts[i])

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(len(texts))] == expected


# --- scoring ------------------------------------------------------------------------------

DOCS = {
    0: {"apple": 2, "banana": 1},  # length 3
    1: {"banana": 1, "cherry": 1},  # length 2
    2: {"cherry": 3, "date": 1},  # length 4
}


def index_of(docs: dict[int, dict[str, int]], n_rows: int | None = None) -> BM25Index:
    """Built the way a load builds it: CSR postings, terms sorted."""
    terms = sorted({t for counts in docs.values() for t in counts})
    rows: list[int] = []
    tfs: list[int] = []
    indptr = [0]
    for term in terms:
        for row in sorted(docs):
            if term in docs[row]:
                rows.append(row)
                tfs.append(docs[row][term])
        indptr.append(len(rows))
    n = n_rows if n_rows is not None else max(docs, default=-1) + 1
    return BM25Index.from_postings(terms, np.array(indptr), np.array(rows), np.array(tfs), n)


def test_bm25_scores_match_a_hand_computed_example() -> None:
    index = index_of(DOCS)
    # N = 3 documents, average length (3 + 2 + 4) / 3 = 3.
    idf_1 = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))  # a term in one document
    idf_2 = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))  # in two

    def part(tf: int, length: int) -> float:
        return tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / 3))

    rows, scores = index.top(["appl"], 10)  # not a term: nothing
    assert rows.tolist() == []
    rows, scores = index.top(["apple"], 10)
    assert rows.tolist() == [0]
    assert scores[0] == pytest.approx(idf_1 * part(2, 3))  # = idf_1 * 4.4 / 3.2
    rows, scores = index.top(["banana", "cherry"], 10)
    assert rows.tolist() == [1, 2, 0]
    assert scores.tolist() == pytest.approx(
        [
            idf_2 * part(1, 2) * 2,  # banana and cherry once each, in the shortest doc
            idf_2 * part(3, 4),  # cherry three times
            idf_2 * part(1, 3),  # banana once
        ]
    )
    # Repeating a query term changes nothing; a filter keeps only allowed rows.
    assert index.top(["cherry", "cherry"], 10)[0].tolist() == [2, 1]
    allowed = np.array([True, False, True])
    assert index.top(["banana", "cherry"], 10, allowed)[0].tolist() == [2, 0]
    assert index.top(["banana", "cherry"], 1)[0].tolist() == [1]
    assert index.top(["banana"], 0)[0].tolist() == []


def test_incrementally_built_index_scores_like_a_loaded_one() -> None:
    built = BM25Index.empty().updated([], sorted(DOCS.items()), 3)
    loaded = index_of(DOCS)
    for query in (["apple"], ["banana", "cherry"], ["date", "apple", "banana"]):
        a, b = built.top(query, 10), loaded.top(query, 10)
        assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist()


def test_top_k_breaks_ties_by_lowest_row() -> None:
    scores = np.array([1.0, 3.0, 2.0, 3.0, 2.0, 2.0, 0.5, 2.0])
    assert top_k(scores, 3).tolist() == [1, 3, 2]
    assert top_k(scores, 4).tolist() == [1, 3, 2, 4]
    assert top_k(scores, 20).tolist() == [1, 3, 2, 4, 5, 7, 0, 6]
    assert top_k(scores, 2, np.array([0, 5, 7])).tolist() == [5, 7]
    assert top_k(scores, 0).tolist() == []
    # Ties decided the same way whatever argpartition does with them.
    many = np.zeros(1000)
    many[::7] = 1.0
    assert top_k(many, 5).tolist() == [0, 7, 14, 21, 28]


@pytest.mark.parametrize("distinct", [3, 50, 100_000])
def test_top_k_of_many_scores_equals_a_full_sort(distinct: int) -> None:
    # Large inputs take the sampled-bound path; few distinct values make ties everywhere.
    rng = np.random.default_rng(distinct)
    for n, k in ((5000, 10), (20_000, 50), (100_000, 7), (20_000, 3000)):
        scores = rng.integers(0, distinct, n).astype(np.float32)
        expected = np.argsort(-scores, kind="stable")[:k]
        assert top_k(scores, k).tolist() == expected.tolist()
        rows = np.flatnonzero(rng.random(n) < 0.7)
        expected = rows[np.argsort(-scores[rows], kind="stable")[:k]]
        assert top_k(scores, k, rows).tolist() == expected.tolist()


# --- incremental updates --------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_updates_equal_a_fresh_index(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """After random additions and removals (with folds of the changed lists into the base
    array along the way), searches equal those of an index built from the survivors."""
    monkeypatch.setattr(bm25, "MAX_OVERRIDES", 15)
    rng = np.random.default_rng(seed)
    vocab = [f"t{i}" for i in range(40)]
    live: dict[int, dict[str, int]] = {}  # row -> term counts
    index = BM25Index.empty()
    next_row = 0
    folds = 0
    for step in range(60):
        removed = []
        if live and rng.random() < 0.6:
            for row in rng.choice(
                sorted(live), size=min(len(live), int(rng.integers(1, 6))), replace=False
            ).tolist():
                removed.append((row, list(live.pop(row))))
        added = []
        for _ in range(int(rng.integers(0, 8))):
            words = rng.choice(vocab, size=int(rng.integers(0, 12)), p=_zipf(len(vocab)))
            counts = dict(Counter(words.tolist()))
            added.append((next_row, counts))
            live[next_row] = counts
            next_row += 1
        had_overrides = bool(index.overrides)
        index = index.updated(removed, added, next_row)
        folds += had_overrides and not index.overrides
        if step % 20 == 19:
            keep = np.zeros(next_row, dtype=bool)
            keep[list(live)] = True
            new_row = np.where(keep, np.cumsum(keep) - 1, -1)
            index = index.compacted(new_row)
            live = {int(new_row[r]): counts for r, counts in live.items()}
            next_row = int(keep.sum())
        # A fresh index of the survivors, renumbered 0..n-1 in the same order.
        order = sorted(live)
        fresh = index_of({i: live[row] for i, row in enumerate(order) if live[row]}, len(order))
        position = {row: i for i, row in enumerate(order)}
        assert (index.n_docs, index.total_len) == (fresh.n_docs, fresh.total_len)
        for _ in range(5):
            query = rng.choice(vocab, size=int(rng.integers(1, 5))).tolist()
            got_rows, got_scores = index.top(query, 7)
            want_rows, want_scores = fresh.top(query, 7)
            assert [position[r] for r in got_rows.tolist()] == want_rows.tolist(), query
            assert got_scores.tolist() == want_scores.tolist()  # bit for bit
    assert folds  # changed lists were folded back into the base array along the way


def _zipf(n: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1)
    return weights / weights.sum()


def test_update_leaves_the_old_index_untouched() -> None:
    old = index_of(DOCS)
    before = old.top(["banana", "cherry"], 10)
    new = old.updated([(1, ["banana", "cherry"])], [(3, {"banana": 5, "fig": 1})], 4)
    after = old.top(["banana", "cherry"], 10)
    assert before[0].tolist() == after[0].tolist() and before[1].tolist() == after[1].tolist()
    assert old.top(["fig"], 5)[0].tolist() == []  # a term the old copy never had
    assert new.top(["fig"], 5)[0].tolist() == [3]
    assert new.top(["banana", "cherry"], 10)[0].tolist() == [2, 3, 0]  # cherry is rarer now
    with pytest.raises(ValueError, match="new"):
        new.updated([], [(2, {"x": 1})], 4)
    with pytest.raises(KeyError):
        new.updated([(1, ["banana"])], [], 4)  # already removed


# --- the score cache carried across writes --------------------------------------------------


def _common_docs(n: int, rng: np.random.Generator) -> dict[int, dict[str, int]]:
    """n rows of 8 words from 6: every term is in most rows (the dense, cached form)."""
    vocab = ["alpha", "beta", "gamma", "delta", "omega", "kappa"]
    return {row: dict(Counter(rng.choice(vocab, size=8).tolist())) for row in range(n)}


def _assert_scores_equal(index: BM25Index, live: dict[int, dict[str, int]]) -> None:
    order = sorted(live)
    fresh = index_of({i: live[row] for i, row in enumerate(order)}, len(order))
    position = {row: i for i, row in enumerate(order)}
    for query in (["alpha"], ["beta", "gamma"], ["delta", "alpha", "omega", "zeta"]):
        got_rows, got_scores = index.top(query, 20)
        want_rows, want_scores = fresh.top(query, 20)
        assert [position[r] for r in got_rows.tolist()] == want_rows.tolist(), query
        assert got_scores.tolist() == want_scores.tolist(), query  # bit for bit
        # Every live row's score, not only the top: a stale cached factor shows anywhere.
        rows, scores = index.scores(query)
        dense = np.zeros(index.n_rows, np.float32)
        dense[rows if rows is not None else slice(None)] = scores
        want = np.zeros(fresh.n_rows, np.float32)
        fresh_rows, fresh_scores = fresh.scores(query)
        want[fresh_rows if fresh_rows is not None else slice(None)] = fresh_scores
        assert dense[order].tolist() == want.tolist(), query
        assert not dense[[r for r in range(index.n_rows) if r not in live]].any()
        # The dense sum (one reused buffer) equals adding each term's weights in turn.
        summed = np.zeros(index.n_rows, np.float32)
        for term in dict.fromkeys(query):
            term_rows, weights = index.weights(term)
            if len(weights) == index.n_rows:
                summed += weights
            else:
                summed[term_rows] += weights
        assert summed[order].tolist() == dense[order].tolist(), query


def test_cached_weights_are_carried_across_a_write_that_changes_df() -> None:
    rng = np.random.default_rng(5)
    live = _common_docs(200, rng)
    index = index_of(live)
    _assert_scores_equal(index, live)  # fills the cache of every query term
    cached = index.carried_terms
    assert cached >= 5
    before = dict(live)
    # A write that removes rows with "alpha" and adds rows without it: df and N change, the
    # (rounded) mean length not; one added row brings a term ("zeta") no row had.
    removed = [(row, list(live.pop(row))) for row in (3, 17, 40) if "alpha" in live[row]]
    assert removed
    added = [(200, {"beta": 4, "gamma": 4}), (201, {"zeta": 2, "omega": 6}), (202, {"kappa": 8})]
    new = index.updated(removed, added, 203)
    live.update(dict(added))
    assert new.avgdl == index.avgdl and new.carried_terms == cached  # carried, not dropped
    _assert_scores_equal(new, live)
    # The old copy still scores its own rows: the shared buffers were only appended to.
    _assert_scores_equal(index, before)


def test_a_write_that_moves_the_rounded_mean_length_drops_the_cache() -> None:
    rng = np.random.default_rng(6)
    live = _common_docs(100, rng)
    index = index_of(live)
    _assert_scores_equal(index, live)
    # Long rows: the mean length moves by far more than a rounding step.
    added = [(100 + i, {"alpha": 30, "beta": 30}) for i in range(40)]
    new = index.updated([], added, 140)
    live.update(dict(added))
    assert new.avgdl != index.avgdl and new.carried_terms == 0
    _assert_scores_equal(new, live)
