"""Retrieval quality on query sets written for this project: hit@5 and MRR for vector-only,
BM25-only and hybrid search, per embedder, reported apart for each set:

    notebooks   53 questions over the pdsh notebooks (index_quality.json)
    stdlib      27 questions over some stdlib modules (index_quality.json)
    tornado     questions over the tornado package tree (code_search.json)
    traitlets   held-out questions over the traitlets package tree (code_search_heldout.json),
                written before the retrieval changes they check and never tuned on

One corpus holds all three (the index is searched as a whole, as a project would be), and
the same run measures a baseline: a plain Okapi BM25 (rank_bm25's formula, k1 = 1.5,
b = 0.75, lowercased [a-z0-9]+ words, no stemming) over 2,000-character windows of the
same files, a window counting when it holds the sought definition's `def`/`class` line.

    python benchmarks/index_quality.py [--embedders minilm,model2vec,none] [--show-misses]
    python benchmarks/index_quality.py --tokenizer-speed     # the BM25 Tokenizer alone

`progressive:<P>` in --embedders is the default (minilm) built progressively: model2vec's
tier first, then MiniLM's vectors for P% of the chunks (a random, seeded share; 0: the
static tier alone, 50: mid-transition, 100: the final index, which must score as `minilm`).

`--vector-cache DIR` keeps chunk vectors between runs, by text, so comparing two chunkings
re-embeds only what changed (the scores are those of the same model either way).

Goals: hybrid hit@5 >= 0.9 on every set with the default embedder (minilm), tornado's MRR
>= 0.75, and hybrid better than either method alone.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import math
import os
import re
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from index_common import (
    build_corpus,
    load_code_queries,
    load_heldout_queries,
    load_queries,
    machine,
    pdsh_dir,
)

from rubberduck_jupyter.index.embedder_config import EmbedderConfig, build_embedder
from rubberduck_jupyter.index.indexer import Indexer
from rubberduck_jupyter.index.search import HybridSearcher
from rubberduck_jupyter.index.store import IndexStore

MODES = ("vector", "bm25", "hybrid")
WINDOW_CHARS = 2_000
TOP = 10
MISS_DEPTH = 50  # --show-misses looks this deep into each list for the sought definition
COLLAPSED = "one hit per definition"


@dataclass(frozen=True)
class Case:
    query: str
    path: str  # a suffix of the indexed path
    name: str | None  # None: any chunk of the file counts


def load_cases() -> dict[str, list[Case]]:
    queries = load_queries()
    return {
        "notebooks": [Case(q, f"notebooks/{nb}", None) for q, nb in queries["notebooks"]],
        "stdlib": [Case(q, f"code/{module}", name) for q, module, name in queries["code"]],
        "tornado": [Case(q, f"tree/{path}", name) for q, path, name in load_code_queries()["code"]],
        "traitlets": [
            Case(q, f"tree/{path}", name) for q, path, name in load_heldout_queries()["code"]
        ],
    }


def names_match(name: str, qualname: str) -> bool:
    """A dotted name must end the qualified name ("Queue.join" is not "JoinableQueue.join");
    a bare one may be any part of it: a method counts for its class ("Sniffer.sniff"
    answers "Sniffer") and for its own name."""
    if "." in name:
        return qualname == name or qualname.endswith("." + name)
    return name in qualname.split(".")


def relevant(path: str, title: str | None, case: Case) -> bool:
    if not path.endswith(case.path):
        return False
    return case.name is None or (title is not None and names_match(case.name, title))


@dataclass
class Score:
    hits5: int = 0
    rr: float = 0.0
    n: int = 0

    def add(self, rank: int | None) -> None:
        self.n += 1
        self.hits5 += rank is not None and rank <= 5
        self.rr += 1 / rank if rank else 0.0

    def cells(self) -> str:
        return f"{self.hits5 / self.n:.3f} | {self.rr / self.n:.3f}"


def first_rank(flags: Iterable[bool]) -> int | None:
    return next((i for i, ok in enumerate(flags, 1) if ok), None)


# --- the baseline: plain BM25 over fixed windows ------------------------------------------

_PLAIN_WORD = re.compile(r"[a-z0-9]+")


def plain_words(text: str) -> list[str]:
    return _PLAIN_WORD.findall(text.lower())


class WindowBM25:
    """Okapi BM25 as rank_bm25's BM25Okapi computes it, over 2,000-character windows."""

    def __init__(self, root: Path, k1: float = 1.5, b: float = 0.75, eps: float = 0.25) -> None:
        self.windows: list[tuple[str, int, int]] = []  # path, first and last line (1-based)
        self.tfs: list[Counter[str]] = []
        for path in sorted(root.rglob("*")):
            if path.suffix not in (".py", ".ipynb", ".pyi"):
                continue
            rel = path.relative_to(root).as_posix()
            text = _notebook_text(path) if path.suffix == ".ipynb" else path.read_text()
            for start in range(0, len(text), WINDOW_CHARS):
                piece = text[start : start + WINDOW_CHARS]
                first = text.count("\n", 0, start) + 1
                self.windows.append((rel, first, first + piece.count("\n")))
                self.tfs.append(Counter(plain_words(piece)))
        lengths = [sum(tf.values()) for tf in self.tfs]
        self.avgdl = sum(lengths) / len(lengths)
        self.norm = [k1 * (1 - b + b * n / self.avgdl) for n in lengths]
        df = Counter(term for tf in self.tfs for term in tf)
        n = len(self.tfs)
        idf = {t: math.log(n - d + 0.5) - math.log(d + 0.5) for t, d in df.items()}
        floor = eps * sum(idf.values()) / len(idf)
        self.idf = {t: v if v >= 0 else floor for t, v in idf.items()}
        self.k1 = k1
        self.postings: dict[str, list[tuple[int, int]]] = {}
        for row, tf in enumerate(self.tfs):
            for term, count in tf.items():
                self.postings.setdefault(term, []).append((row, count))

    def search(self, query: str, k: int) -> list[int]:
        scores: dict[int, float] = {}
        for term in plain_words(query):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for row, tf in self.postings[term]:
                gain = idf * tf * (self.k1 + 1) / (tf + self.norm[row])
                scores[row] = scores.get(row, 0.0) + gain
        return sorted(scores, key=lambda row: (-scores[row], row))[:k]


def _notebook_text(path: Path) -> str:
    import nbformat

    notebook = nbformat.read(str(path), as_version=4)
    return "\n\n".join(cell.source for cell in notebook.cells)


def definition_lines(path: Path) -> dict[str, list[int]]:
    """Qualified name -> the lines of its `def`/`class` keyword (several for overloads)."""
    found: dict[str, list[int]] = {}

    def walk(nodes: list[ast.stmt], prefix: str) -> None:
        for node in nodes:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                qualname = prefix + node.name
                found.setdefault(qualname, []).append(node.lineno)
                if isinstance(node, ast.ClassDef):
                    walk(node.body, qualname + ".")

    walk(ast.parse(path.read_text()).body, "")
    return found


def baseline_ranks(root: Path, cases: dict[str, list[Case]]) -> dict[str, Score]:
    index = WindowBM25(root)
    print(f"baseline: {len(index.windows)} windows of {WINDOW_CHARS} characters")
    lines_cache: dict[str, dict[str, list[int]]] = {}
    scores: dict[str, Score] = {}
    for name, group in cases.items():
        score = scores[name] = Score()
        for case in group:
            targets: list[int] = []
            if case.name is not None:
                rel = next(w[0] for w in index.windows if w[0].endswith(case.path))
                if rel not in lines_cache:
                    lines_cache[rel] = definition_lines(root / rel)
                for qualname, lines in lines_cache[rel].items():
                    if names_match(case.name, qualname):
                        targets += lines

            def hit(row: int, case: Case = case, targets: list[int] = targets) -> bool:
                rel, first, last = index.windows[row]
                if not rel.endswith(case.path):
                    return False
                return case.name is None or any(first <= line <= last for line in targets)

            score.add(first_rank(hit(row) for row in index.search(case.query, TOP)))
    return scores


# --- the index, per embedder ----------------------------------------------------------------


def check_targets(root: Path, cases: dict[str, list[Case]]) -> None:
    """Every question's file and definition exist: a typo would count as a miss forever."""
    for name in ("stdlib", "tornado", "traitlets"):
        for case in cases[name]:
            matches = [p for p in root.rglob("*.py") if p.as_posix().endswith(case.path)]
            if len(matches) != 1:
                raise SystemExit(f"{case.path}: {len(matches)} files")
            if case.name and not any(
                names_match(case.name, q) for q in definition_lines(matches[0])
            ):
                raise SystemExit(f"{case.path}: no definition {case.name}")


class CachedEmbedder:
    """An embedder whose chunk vectors are kept on disk by text, between runs: comparing
    two chunkings re-embeds only the chunks whose text differs (the notebooks' do not).
    Same model, same vectors; only the time is saved (--vector-cache)."""

    def __init__(self, inner: Any, path: Path) -> None:
        self.inner, self.path = inner, path
        self.id, self.dim, self.counter = inner.id, inner.dim, inner.counter
        self.vectors: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path) as saved:
                self.vectors = dict(zip(saved["keys"].tolist(), saved["vectors"], strict=True))
        self.reused = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        keys = [hashlib.sha1(text.encode()).hexdigest() for text in texts]
        missing = [i for i, key in enumerate(keys) if key not in self.vectors]
        if missing:
            fresh = self.inner.embed([texts[i] for i in missing])
            for i, vector in zip(missing, fresh, strict=True):
                self.vectors[keys[i]] = vector
        self.reused += len(texts) - len(missing)
        return np.stack([self.vectors[key] for key in keys]).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)  # type: ignore[no-any-return]

    def save(self) -> None:
        keys = np.array(list(self.vectors))
        np.savez(self.path, keys=keys, vectors=np.stack(list(self.vectors.values())))


class _SecondTierHeld(Exception):
    pass


class _FirstTierOnly:
    """MiniLM's stand-in while the first tier is written: refuses to embed chunks."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.id, self.dim, self.counter = inner.id, inner.dim, inner.counter

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if texts:
            raise _SecondTierHeld()
        return self.inner.embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)


def progressive_build(
    store: IndexStore, root: Path, embedder: Any, static: Any, share: float
) -> int:
    """The first tier, then MiniLM's vectors for `share` of the chunks; returns how many."""
    with contextlib.suppress(_SecondTierHeld):
        Indexer(
            store, _FirstTierOnly(embedder), progressive=True, static_embedder=static
        ).index_folder(root)
    missing = store.missing_full_ids()
    rng = np.random.default_rng(14)
    chosen = np.sort(rng.permutation(missing)[: round(share * len(missing))])
    for start in range(0, len(chosen), 256):
        chunks = store.chunks(chosen[start : start + 256].tolist())
        store.add_vectors([c.id for c in chunks], embedder.embed([c.text for c in chunks]))
    return len(chosen)


def index_ranks(
    root: Path,
    tmp: Path,
    spec: str,
    cases: dict[str, list[Case]],
    show_misses: bool,
    vector_cache: Path | None,
) -> dict[tuple[str, str], Score]:
    kind, _, share = spec.partition(":")
    progressive = kind == "progressive"
    embedder = build_embedder(EmbedderConfig("minilm" if progressive else spec))
    if vector_cache is not None and spec != "none":
        vector_cache.mkdir(parents=True, exist_ok=True)
        name = "minilm" if progressive else spec
        embedder = CachedEmbedder(embedder, vector_cache / f"{name}.npz")
    db = tmp / f"index-{spec.replace(':', '-')}.duckdb"
    started = time.perf_counter()
    static = build_embedder(EmbedderConfig("model2vec")) if progressive else None
    options = {} if static is None else {"static_embedder_id": static.id, "static_dim": static.dim}
    with IndexStore(db, dim=embedder.dim, embedder_id=embedder.id, **options) as store:
        if progressive:
            improved = progressive_build(store, root, embedder, static, float(share) / 100)
            counts = store.tier_counts()
            print(
                f"[{spec}] {counts['chunks']} chunks: {improved} with MiniLM's vectors, "
                f"{counts['static']} with model2vec's, in {time.perf_counter() - started:.0f} s; "
                f"load {load()}"
            )
        else:
            report = Indexer(store, embedder).index_folder(root)
            print(
                f"[{spec}] indexed {report.files_indexed} files, {report.chunks_written} chunks "
                f"in {time.perf_counter() - started:.0f} s; load {load()}"
            )
        if isinstance(embedder, CachedEmbedder):
            print(f"[{spec}] {embedder.reused} chunk vectors reused from {embedder.path}")
            embedder.save()
        searcher = HybridSearcher(
            store, embedder.embed_query, static.embed_query if static is not None else None
        )
        modes = ("bm25",) if spec == "none" else MODES
        scores: dict[tuple[str, str], Score] = {}
        for mode in modes:
            for name, group in cases.items():
                score = scores[(name, mode)] = Score()
                collapsed = scores[(name, f"{mode}, {COLLAPSED}")] = Score()
                for case in group:
                    hits = searcher.search(case.query, TOP, mode=mode, one_per_definition=False)
                    rank = first_rank(relevant(h.path, h.title, case) for h in hits)
                    score.add(rank)
                    # search.py's own collapsing (its default since 2026-12-04).
                    one = searcher.search(case.query, TOP, mode=mode)
                    one_rank = first_rank(relevant(h.path, h.title, case) for h in one)
                    collapsed.add(one_rank)
                    if show_misses and mode == "hybrid" and (one_rank is None or one_rank > 5):
                        print(f"  [{spec} {name}] miss ({one_rank}): {case.query!r}")
                        print(f"      {miss_ranks(searcher, case, spec)}")
                        for h in one[:2]:
                            print(f"      beaten by {h.path}:{h.title} ({h.kind})")
    db.unlink(missing_ok=True)
    return scores


def miss_ranks(searcher: HybridSearcher, case: Case, spec: str) -> str:
    """Where the sought definition is in each list alone (of the first MISS_DEPTH)."""
    ranks = []
    for mode in ("vector", "bm25") if spec != "none" else ("bm25",):
        hits = searcher.search(case.query, MISS_DEPTH, mode=mode)
        rank = first_rank(relevant(h.path, h.title, case) for h in hits)
        ranks.append(f"{mode} rank {rank if rank else f'>{MISS_DEPTH}'}")
    return ", ".join(ranks)


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def quality(embedders: list[str], show_misses: bool, vector_cache: Path | None) -> None:
    cases = load_cases()
    sizes = ", ".join(f"{name} {len(group)}" for name, group in cases.items())
    print(f"machine: {machine()}; questions: {sizes}; load {load()}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = build_corpus(tmp / "project", tree=True)
        check_targets(root, cases)
        rows: list[tuple[str, str, str, Score]] = []
        for name, score in baseline_ranks(root, cases).items():
            rows.append((name, "baseline", "BM25, 2,000-char windows", score))
        for spec in embedders:
            for (name, mode), score in index_ranks(
                root, tmp, spec, cases, show_misses, vector_cache
            ).items():
                rows.append((name, spec, mode, score))
    print("\n| set | embedder | mode | hit@5 | MRR |\n|---|---|---|---|---|")
    for name in cases:
        for set_name, spec, mode, score in rows:
            if set_name == name:
                print(f"| {name} | {spec} | {mode} | {score.cells()} |")


# --- the tokenizer's speed ------------------------------------------------------------------


class LegacyTokenizer:
    """The Tokenizer as it was before identifiers were split (2026-12-04): the baseline."""

    _word = re.compile(r"[^\W_]+")

    def __init__(self) -> None:
        import snowballstemmer

        self._stemmer = snowballstemmer.stemmer("english")
        self._cache: dict[str, str] = {}

    def term_counts(self, text: str) -> dict[str, int]:
        import unicodedata

        if not text.isascii():
            text = "".join(
                c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
            )
        cache = self._cache
        out = []
        for word in self._word.findall(text.lower()):
            term = cache.get(word)
            if term is None:
                term = cache[word] = self._stemmer.stemWord(word)
            out.append(term)
        return dict(Counter(out))


def tokenizer_speed(rounds: int) -> None:
    """Both tokenizers over pdsh's chunk texts, interleaved round by round, medians. Cold:
    a fresh tokenizer (empty cache), as when a server starts indexing; warm: a second pass
    of the same one, as for the files after the first few (most words seen already)."""
    from rubberduck_jupyter.index.chunkers import chunk_file
    from rubberduck_jupyter.index.terms import Tokenizer
    from rubberduck_jupyter.index.tokens import minilm_token_counter

    counter = minilm_token_counter()
    texts = [
        chunk.text
        for path in sorted(pdsh_dir().glob("*.ipynb"))
        for chunk in chunk_file(path, path.name, counter)
    ]
    words = sum(len(re.findall(r"\w+", text)) for text in texts)
    chars = sum(map(len, texts))
    makers: dict[str, Callable[[], object]] = {"before": LegacyTokenizer, "after": Tokenizer}
    times: dict[tuple[str, str], list[float]] = {}
    terms: dict[str, int] = {}
    loads = []
    for _ in range(rounds):
        for name, make in makers.items():
            tokenizer = make()
            for phase in ("cold", "warm"):
                started = time.perf_counter()
                counts = [tokenizer.term_counts(text) for text in texts]  # type: ignore[attr-defined]
                times.setdefault((name, phase), []).append(time.perf_counter() - started)
            terms[name] = sum(sum(c.values()) for c in counts)
        loads.append(os.getloadavg()[0])
    print(
        f"machine: {machine()}; pdsh: {len(texts)} chunks, {chars:,} characters, "
        f"{words:,} words (\\w+ runs); {rounds} rounds, load {min(loads):.2f}-{max(loads):.2f}"
    )
    median = {key: statistics.median(values) for key, values in times.items()}
    for phase in ("cold", "warm"):
        for name in makers:
            seconds = median[(name, phase)]
            print(
                f"{phase} {name:>6}: {seconds * 1000:7.1f} ms  {words / seconds:>10,.0f} words/s"
                f"  {terms[name]:,} terms out"
            )
        ratio = median[("after", phase)] / median[("before", phase)]
        print(f"{phase} after / before: {ratio:.2f}x the time")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--embedders", default="minilm,model2vec,none")
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--tokenizer-speed", action="store_true")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--vector-cache", type=Path, help="keep chunk vectors here between runs (by text)"
    )
    args = parser.parse_args()
    if args.tokenizer_speed:
        tokenizer_speed(args.rounds)
    else:
        specs = [spec for spec in args.embedders.split(",") if spec]
        quality(specs, args.show_misses, args.vector_cache)


if __name__ == "__main__":
    main()
