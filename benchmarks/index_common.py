"""Shared by the index benchmarks: the corpus they measure on, copied to a temp folder.

The corpus is the pdsh notebooks (../shared/corpora/pdsh, never copied into the repo)
plus a code tree: some pure-Python standard-library modules of this interpreter, and, on
request, real package trees from the venv, tests left out: tornado for the code question
set of benchmarks/queries/code_search.json, traitlets for the held-out one of
code_search_heldout.json (written before any change it measures, never tuned on).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sysconfig
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
QUERIES = REPO / "benchmarks" / "queries" / "index_quality.json"
CODE_QUERIES = REPO / "benchmarks" / "queries" / "code_search.json"
HELDOUT_QUERIES = REPO / "benchmarks" / "queries" / "code_search_heldout.json"
CORPUS_CANDIDATES = [REPO.parent / "shared" / "corpora" / "pdsh", Path("/work/shared/corpora/pdsh")]


def pdsh_dir() -> Path:
    for candidate in CORPUS_CANDIDATES:
        if candidate.is_dir():
            return candidate
    raise SystemExit("The pdsh corpus was not found next to the repository (../shared).")


def load_queries() -> dict[str, Any]:
    return json.loads(QUERIES.read_text())


def load_code_queries() -> dict[str, Any]:
    return json.loads(CODE_QUERIES.read_text())


def load_heldout_queries() -> dict[str, Any]:
    return json.loads(HELDOUT_QUERIES.read_text())


def package_dir(name: str) -> Path:
    """The folder of an installed package, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {name!r} is not installed in this environment")
    return Path(next(iter(spec.submodule_search_locations)))


def build_corpus(
    target: Path, *, notebooks: bool = True, code: bool = True, tree: bool = False
) -> Path:
    """A project folder with `notebooks/` (pdsh), `code/` (stdlib modules) and, with
    `tree`, `tree/<package>/` for the packages of code_search.json and of
    code_search_heldout.json."""
    target.mkdir(parents=True, exist_ok=True)
    if notebooks:
        shutil.copytree(pdsh_dir(), target / "notebooks", ignore=shutil.ignore_patterns("*.md"))
    if code:
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        (target / "code").mkdir()
        for name in load_queries()["code_modules"]:
            shutil.copy(stdlib / name, target / "code" / name)
        for package in ("json", "email", "concurrent"):
            shutil.copytree(
                stdlib / package,
                target / "code" / package,
                ignore=shutil.ignore_patterns("__pycache__", "test*"),
            )
    if tree:
        for package in (load_code_queries()["package"], load_heldout_queries()["package"]):
            shutil.copytree(
                package_dir(package),
                target / "tree" / package,
                ignore=shutil.ignore_patterns("__pycache__", "test", "tests", "*.so"),
            )
    return target


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
