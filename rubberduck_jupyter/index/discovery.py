"""Which files of a folder belong in the index, and which are refused and why.

Refused: hidden files and folders, `.env*`, what .gitignore files exclude, files over the
size cap, binary files, unknown kinds, and anything whose real path (symlinks resolved)
leaves the indexed root.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# The hidden/secret/binary rules are shared with the engines' file reads (domain.file_rules).
from ..domain.file_rules import DEFAULT_MAX_FILE_BYTES, SNIFF_BYTES, name_refusal
from ..domain.file_rules import is_secret_name as _is_secret_name
from ..domain.file_rules import looks_binary as _head_looks_binary

# Text kinds worth indexing in a data-science project.
INDEXED_SUFFIXES = frozenset(
    {
        ".ipynb", ".py", ".pyi", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".md",
        ".markdown", ".rst", ".txt", ".toml", ".cfg", ".ini", ".yaml", ".yml", ".sql",
        ".r", ".R", ".jl", ".sh", ".html", ".css", ".tex",
    }
)  # fmt: skip
ALWAYS_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "venv"})


@dataclass(frozen=True, slots=True)
class Candidate:
    path: Path  # real path, inside the root
    rel_path: str  # POSIX, relative to the root
    size: int
    mtime: float


# Why a file was skipped, as a stable code a client can count and translate; `reason` is the
# sentence a person reads (it may carry details such as the size cap or the suffix).
SKIP_CODES = (
    "outside_root",  # the path, or its symlink target, leaves the indexed folder
    "hidden",  # hidden or secret name, or under an excluded folder
    "gitignored",
    "unsupported_kind",  # a suffix the chunkers do not index
    "too_large",
    "binary",
    "unreadable",
    "not_regular",  # a device, socket or FIFO
    "other",
)


@dataclass(frozen=True, slots=True)
class Skipped:
    rel_path: str
    reason: str
    code: str = "other"


def looks_binary(path: Path) -> bool:
    with path.open("rb") as handle:
        return _head_looks_binary(handle.read(SNIFF_BYTES))


class _GitIgnore:
    """The .gitignore files from the root down to one folder, applied in order."""

    def __init__(self) -> None:
        self._specs: list[tuple[str, object]] = []

    def child(self, folder: Path, rel_folder: str) -> _GitIgnore:
        ignore_file = folder / ".gitignore"
        if not ignore_file.is_file():
            return self
        import pathspec

        try:
            lines = ignore_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return self
        child = _GitIgnore()
        child._specs = [*self._specs, (rel_folder, pathspec.GitIgnoreSpec.from_lines(lines))]
        return child

    def ignores(self, rel_path: str, is_dir: bool) -> bool:
        for base, spec in self._specs:
            local = rel_path[len(base) + 1 :] if base else rel_path
            if spec.match_file(local + ("/" if is_dir else "")):  # type: ignore[attr-defined]
                return True
        return False


def discover(
    root: Path,
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    under: Sequence[Path] = (),
) -> Iterator[Candidate | Skipped]:
    """Walks `root` (or only the files and folders `under` it), yielding what to index and
    what was refused (with the reason)."""
    root = root.resolve()
    if not under:
        yield from _walk(root, root, "", _GitIgnore().child(root, ""), max_file_bytes)
        return
    rules = GitIgnoreRules(root)
    for path in under:
        try:
            rel = path.absolute().relative_to(root).as_posix()
        except ValueError:
            yield Skipped(str(path), "outside the indexed folder", "outside_root")
            continue
        if rel == ".":
            yield from discover(root, max_file_bytes=max_file_bytes)
            continue
        if not path.is_dir() or path.is_symlink():
            yield check_file(root, path, max_file_bytes=max_file_bytes, rules=rules)
            continue
        if excluded_by_name(rel) or rules.ignores(rel, True):
            continue
        yield from _walk(root, path, rel, rules.folder_chain(rel), max_file_bytes)


def excluded_by_name(rel_path: str) -> bool:
    """Hidden or secret at any level, or under a folder that is never indexed: decided from
    the path alone, so a file watcher can drop such churn (.git/, node_modules) for free."""
    parts = rel_path.split("/")
    return (
        any(part.startswith(".") for part in parts)
        or any(part in ALWAYS_SKIPPED_DIRS for part in parts)
        or _is_secret_name(parts[-1])
    )


class GitIgnoreRules:
    """The .gitignore files of a tree, each read once, for checking many paths (a save
    burst, a `git checkout`). Call `clear()` when a .gitignore file changes."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._chains: dict[str, _GitIgnore] = {}

    def clear(self) -> None:
        self._chains.clear()

    def _chain(self, rel_folder: str) -> _GitIgnore:
        chain = self._chains.get(rel_folder)
        if chain is None:
            if rel_folder:
                parent, _, _ = rel_folder.rpartition("/")
                chain = self._chain(parent).child(self.root / rel_folder, rel_folder)
            else:
                chain = _GitIgnore().child(self.root, "")
            self._chains[rel_folder] = chain
        return chain

    def folder_ignored(self, rel_path: str) -> bool:
        """Whether a folder above `rel_path` is excluded (then its own rules never apply)."""
        parts = rel_path.split("/")
        rel_folder = ""
        for part in parts[:-1]:
            parent = rel_folder
            rel_folder = f"{rel_folder}/{part}" if rel_folder else part
            if self._chain(parent).ignores(rel_folder, True):
                return True
        return False

    def ignores(self, rel_path: str, is_dir: bool = False) -> bool:
        if self.folder_ignored(rel_path):
            return True
        parent, _, _ = rel_path.rpartition("/")
        return self._chain(parent).ignores(rel_path, is_dir)

    def folder_chain(self, rel_folder: str) -> _GitIgnore:
        """The rules that apply inside a folder, its own .gitignore included."""
        return self._chain(rel_folder)

    def chain_for(self, rel_path: str) -> _GitIgnore:
        parent, _, _ = rel_path.rpartition("/")
        return self._chain(parent)


def check_file(
    root: Path,
    path: Path,
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    rules: GitIgnoreRules | None = None,
) -> Candidate | Skipped:
    """The same rules for one file (a save hook): hidden parts and .gitignore included.
    Pass `rules` when checking many files of one tree, so each .gitignore is read once."""
    root = root.resolve()
    try:
        rel = path.absolute().relative_to(root).as_posix()
    except ValueError:
        return Skipped(str(path), "outside the indexed folder", "outside_root")
    parts = rel.split("/")
    if any(part.startswith(".") for part in parts) or any(p in ALWAYS_SKIPPED_DIRS for p in parts):
        return Skipped(rel, "hidden or excluded folder", "hidden")
    rules = rules if rules is not None and rules.root == root else GitIgnoreRules(root)
    if rules.folder_ignored(rel):
        return Skipped(rel, "ignored by .gitignore", "gitignored")
    return _consider(root, path, rel, rules.chain_for(rel), max_file_bytes)


def _walk(
    root: Path, folder: Path, rel_folder: str, ignore: _GitIgnore, max_file_bytes: int
) -> Iterator[Candidate | Skipped]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        yield Skipped(rel_folder or ".", f"unreadable folder: {exc.strerror}", "unreadable")
        return
    for entry in entries:
        rel = f"{rel_folder}/{entry.name}" if rel_folder else entry.name
        if entry.name.startswith(".") or _is_secret_name(entry.name):
            continue  # hidden and secret files are never looked at, not even reported
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if is_dir:
            if entry.name in ALWAYS_SKIPPED_DIRS or ignore.ignores(rel, True):
                continue
            real = Path(os.path.realpath(entry.path))
            if not real.is_relative_to(root):
                yield Skipped(rel, "links outside the indexed folder", "outside_root")
                continue
            if entry.is_symlink():
                continue  # its target inside the root is walked on its own; no loops
            yield from _walk(
                root, Path(entry.path), rel, ignore.child(Path(entry.path), rel), max_file_bytes
            )
        elif not ignore.ignores(rel, False):
            yield _consider(root, Path(entry.path), rel, ignore, max_file_bytes)


def _consider(
    root: Path, path: Path, rel: str, ignore: _GitIgnore, max_file_bytes: int
) -> Candidate | Skipped:
    name = path.name
    if name.startswith(".") or _is_secret_name(name):
        return Skipped(rel, "hidden or secret file", "hidden")
    if ignore.ignores(rel, False):
        return Skipped(rel, "ignored by .gitignore", "gitignored")
    if path.suffix not in INDEXED_SUFFIXES and path.suffix.lower() not in INDEXED_SUFFIXES:
        return Skipped(
            rel, f"not an indexed kind of file ({path.suffix or 'no suffix'})", "unsupported_kind"
        )
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(root):
        return Skipped(rel, "links outside the indexed folder", "outside_root")
    if real != path.absolute() and name_refusal(real.relative_to(root).as_posix()) is not None:
        return Skipped(rel, "links to a hidden or secret file", "hidden")  # `notes.py -> .env`
    try:
        stat = real.stat()
    except OSError as exc:
        return Skipped(rel, f"unreadable: {exc.strerror}", "unreadable")
    if not real.is_file():
        return Skipped(rel, "not a regular file", "not_regular")
    if stat.st_size > max_file_bytes:
        return Skipped(rel, f"larger than {max_file_bytes} bytes", "too_large")
    try:
        if looks_binary(real):
            return Skipped(rel, "binary file", "binary")
    except OSError as exc:
        return Skipped(rel, f"unreadable: {exc.strerror}", "unreadable")
    return Candidate(path=real, rel_path=rel, size=stat.st_size, mtime=stat.st_mtime)
