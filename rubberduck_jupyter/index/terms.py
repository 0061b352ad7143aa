"""Text to BM25 terms.

Terms are runs of letters and digits of any script, accent-stripped, lowercased and
stemmed (Snowball's English stemmer, "Porter2"): `read_csv` is two terms, `float32` one,
`naïve` and `naive` the same. No stopwords: code is searched for mean, value, get, none,
first..., and IDF already discounts common words.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import Counter

# More terms than this in a query only slow BM25 down without changing the top hits much.
MAX_QUERY_TERMS = 64

_WORD = re.compile(r"[^\W_]+")


class Tokenizer:
    """Text to BM25 terms. Thread-safe; stems each distinct word once (cached)."""

    MAX_CACHE = 200_000

    def __init__(self, language: str = "english") -> None:
        import snowballstemmer

        self._stemmer = snowballstemmer.stemmer(language)
        self._stem_lock = threading.Lock()  # Snowball stemmers keep state while stemming
        self._cache: dict[str, str] = {}

    def terms(self, text: str) -> list[str]:
        if not text.isascii():
            # Decompose and drop the marks first: a combining mark is not a letter, so
            # left in place it would cut `naïve` into `nai` and `ve`.
            text = "".join(
                c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
            )
        words = _WORD.findall(text.lower())
        cache = self._cache
        out = []
        for word in words:
            term = cache.get(word)
            if term is None:
                term = self._stem(word)
            out.append(term)
        return out

    def _stem(self, word: str) -> str:
        with self._stem_lock:
            term: str = self._stemmer.stemWord(word)
        if len(self._cache) >= self.MAX_CACHE:
            self._cache = {}  # a new dict: readers of the old one are unaffected
        self._cache[word] = term
        return term

    def term_counts(self, text: str) -> dict[str, int]:
        return dict(Counter(self.terms(text)))

    def query_terms(self, query: str) -> list[str]:
        """The distinct terms of a query, in order, at most MAX_QUERY_TERMS."""
        return list(dict.fromkeys(self.terms(query)))[:MAX_QUERY_TERMS]


_default_tokenizer: Tokenizer | None = None


def default_tokenizer() -> Tokenizer:
    global _default_tokenizer
    if _default_tokenizer is None:
        _default_tokenizer = Tokenizer()
    return _default_tokenizer
