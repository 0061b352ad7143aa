"""Text to BM25 terms.

Words are runs of letters, digits and underscores of any script, accent-stripped (`naïve`
and `naive` are the same). A plain word gives one term, lowercased and stemmed (Snowball's
English stemmer, "Porter2"). An identifier gives its parts, each stemmed, and itself whole,
lowercased, as one more term:

    read_csv_chunked  ->  read_csv_chunked, read, csv, chunk
    HTTPServer        ->  httpserver, http, server
    parseJSON2        ->  parsejson2, pars, json, 2

so a question in words ("read a csv in chunks") finds the identifier through its parts,
and the identifier itself, in a query or in code, matches most where it is written whole.
The query goes through the same function, so `read_csv` in a query matches both ways.
Parts are cut at underscores, at lower-to-upper case changes (an acronym ends before its
last capital when a lowercase letter follows: `HTTPServer`), and between letters and
digits. A word that starts with a digit (`0x1f`, `3d`, `1e10`), or mixes letters and digits
more than twice (a hash, a base64 blob), stays whole: its pieces would mean nothing.

No stopwords: code is searched for mean, value, get, none, first..., and IDF already
discounts common words. Each distinct word is analysed once and cached, so the cost per
word of text is one dictionary lookup (measured on pdsh: benchmarks/index_quality.py
--tokenizer-speed).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import Counter

# More terms than this in a query only slow BM25 down without changing the top hits much.
MAX_QUERY_TERMS = 64

_WORD = re.compile(r"\w+")
# Runs of letters (any script) and runs of digits, within an underscore-free piece.
_LETTERS_OR_DIGITS = re.compile(r"[^\W\d_]+|\d+")
# A piece with more letter/digit runs than this is a hash or an encoded blob, kept whole.
_MAX_RUNS = 3


class Tokenizer:
    """Text to BM25 terms. Thread-safe; analyses each distinct word once (cached)."""

    MAX_CACHE = 200_000

    def __init__(self, language: str = "english") -> None:
        import snowballstemmer

        self._stemmer = snowballstemmer.stemmer(language)
        self._stem_lock = threading.Lock()  # Snowball stemmers keep state while stemming
        self._cache: dict[str, tuple[str, ...]] = {}  # word as written -> its terms
        self._stems: dict[str, str] = {}  # lowercase part -> its stem

    def terms(self, text: str) -> list[str]:
        if not text.isascii():
            # Decompose and drop the marks first: a combining mark is not a letter, so
            # left in place it would cut `naïve` into `nai` and `ve`.
            text = "".join(
                c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
            )
        cache = self._cache
        out: list[str] = []
        for word in _WORD.findall(text):
            found = cache.get(word)
            if found is None:
                found = self._analyse(word)
            out += found
        return out

    def _analyse(self, word: str) -> tuple[str, ...]:
        parts = identifier_parts(word)
        stems = [self._stem(part) for part in parts]
        if len(parts) > 1:
            stems.insert(0, word.strip("_").lower())
        found = tuple(stems)
        if len(self._cache) >= self.MAX_CACHE:
            self._cache = {}  # a new dict: readers of the old one are unaffected
        self._cache[word] = found
        return found

    def _stem(self, part: str) -> str:
        # Words are cached as written, parts by their lowercase form: `Mean`, `mean` and
        # `mean_value` all reuse one stemming of `mean` (Snowball is pure Python, ~20 us).
        stem = self._stems.get(part)
        if stem is None:
            with self._stem_lock:
                stem = self._stemmer.stemWord(part)
            if len(self._stems) >= self.MAX_CACHE:
                self._stems = {}
            self._stems[part] = stem
        return stem

    def term_counts(self, text: str) -> dict[str, int]:
        return dict(Counter(self.terms(text)))

    def query_terms(self, query: str) -> list[str]:
        """The distinct terms of a query, in order, at most MAX_QUERY_TERMS."""
        return list(dict.fromkeys(self.terms(query)))[:MAX_QUERY_TERMS]


def identifier_parts(word: str) -> list[str]:
    """The lowercased parts of one word (a `\\w+` run), before stemming: [] for `___`."""
    parts: list[str] = []
    for piece in word.split("_"):
        if not piece:
            continue
        if piece[0].isdigit() or (piece.islower() and piece.isalpha()):
            parts.append(piece.lower())  # numbers, and the common case: no cut to make
            continue
        runs = _LETTERS_OR_DIGITS.findall(piece)
        if len(runs) > _MAX_RUNS:
            parts.append(piece.lower())
            continue
        for run in runs:
            parts += _case_parts(run)
    return parts


def _case_parts(run: str) -> list[str]:
    """A run of letters cut where its case changes: `camelCase`, `HTTPServer`, `iOS`."""
    if run.islower() or run.isupper() or run[1:].islower():
        return [run.lower()]
    parts = []
    start = 0
    for i in range(1, len(run)):
        if run[i].isupper() and (run[i - 1].islower() or _ends_acronym(run, start, i)):
            parts.append(run[start:i].lower())
            start = i
    parts.append(run[start:].lower())
    return parts


def _ends_acronym(run: str, start: int, i: int) -> bool:
    """Whether capital `i` starts a word after an acronym of two or more capitals
    (`HTTPServer`); a plural's `s` does not start one (`URLs`, `CPUs`)."""
    if i < start + 2 or i + 1 >= len(run) or not run[i + 1].islower():
        return False
    return not (i + 2 == len(run) and run[i + 1] == "s")


_default_tokenizer: Tokenizer | None = None


def default_tokenizer() -> Tokenizer:
    global _default_tokenizer
    if _default_tokenizer is None:
        _default_tokenizer = Tokenizer()
    return _default_tokenizer
