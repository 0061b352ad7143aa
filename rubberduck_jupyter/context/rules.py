"""Project rules: what a team writes down once for every answer in a project.

Two places, both inside the project's root:

    AGENTS.md                   always applies (the convention other coding agents read)
    .rubberduck/rules/*.md      each applies always, or only where its front matter says:

        ---
        applies_to: "notebooks/**"          # or a list of globs
        ---
        Use polars, not pandas, in these notebooks.

A glob is matched against the path of the notebook or file the request comes from
(relative to the root, `index.globs` syntax: `**` crosses folders, a pattern without `/`
matches the name in any folder). A scoped rule does not apply to a request that names no
notebook. The rules that apply are added to every engine's system prompt, AGENTS.md first,
then the rule files by name, until `max_chars` is reached; the ones left out, and rule
files that cannot be used (bad front matter, too big, outside the root through a symlink,
not UTF-8), are reported with the reason by `/rules`, never sent.

Reading is blocking: call `select` from a worker thread. Files are re-read only when their
size or mtime changes, so a turn pays a few `stat` calls.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..index.globs import GlobError, glob_to_regex

AGENTS_FILE = "AGENTS.md"
RULES_DIR = ".rubberduck/rules"
# A rules file is instructions a person wrote, not a document: past this size it is most
# likely something pasted by mistake, and it would eat the prompt.
MAX_RULE_FILE_BYTES = 64_000
# How many rule files are looked at, so a folder of thousands cannot stall a turn.
MAX_RULE_FILES = 64
DEFAULT_MAX_CHARS = 8_000  # ~2k tokens of the prompt


@dataclass(frozen=True, slots=True)
class Rule:
    path: str  # relative to the root, POSIX
    text: str  # the body, front matter removed
    applies_to: tuple[str, ...] = ()  # empty: always
    problem: str | None = None  # why it cannot be used, if it cannot

    @property
    def scope(self) -> str:
        return ", ".join(f"`{g}`" for g in self.applies_to) if self.applies_to else "always"


@dataclass(frozen=True, slots=True)
class RuleSelection:
    applied: tuple[Rule, ...] = ()
    # (rule, why it is not in the prompt) for scoped rules that do not apply here, rules over
    # the budget and unusable files.
    left_out: tuple[tuple[Rule, str], ...] = ()
    searched: tuple[str, ...] = (AGENTS_FILE, f"{RULES_DIR}/*.md")

    def prompt(self) -> str:
        if not self.applied:
            return ""
        parts = [f"From {rule.path}:\n{rule.text.strip()}" for rule in self.applied]
        return "Project rules (written by the user's team; follow them):\n\n" + "\n\n".join(parts)


@dataclass
class _Cached:
    signature: tuple[int, int]
    rule: Rule


@dataclass
class ProjectRules:
    root: Path
    max_chars: int = DEFAULT_MAX_CHARS
    _cache: dict[str, _Cached] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()

    def select(self, notebook_path: str | None) -> RuleSelection:
        """The rules for a request from `notebook_path` (relative to the root, or None)."""
        where = _relative(notebook_path)
        applied: list[Rule] = []
        left_out: list[tuple[Rule, str]] = []
        budget = self.max_chars
        for rule in self.rules():
            if rule.problem is not None:
                left_out.append((rule, rule.problem))
                continue
            if rule.applies_to and not _applies(rule.applies_to, where):
                reason = "applies to " + rule.scope + (f", not {where}" if where else "")
                left_out.append((rule, reason))
                continue
            size = len(rule.text.strip())
            if size > budget:
                left_out.append((rule, f"over the budget ({size:,} characters, {budget:,} left)"))
                continue
            budget -= size
            applied.append(rule)
        return RuleSelection(tuple(applied), tuple(left_out))

    def rules(self) -> list[Rule]:
        """Every rules file, AGENTS.md first, then .rubberduck/rules/*.md by name."""
        paths = [AGENTS_FILE]
        folder = self.root / RULES_DIR
        try:
            names = sorted(
                entry.name
                for entry in os.scandir(folder)
                if entry.name.endswith(".md") and not entry.name.startswith(".")
            )
        except OSError:
            names = []
        paths += [f"{RULES_DIR}/{name}" for name in names[:MAX_RULE_FILES]]
        rules = []
        for rel in paths:
            rule = self._read(rel)
            if rule is not None:
                rules.append(rule)
        return rules

    def _read(self, rel: str) -> Rule | None:
        path = self.root / rel
        try:
            stat = path.stat()
        except OSError:
            with self._lock:
                self._cache.pop(rel, None)
            return None
        signature = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(rel)
        if cached is not None and cached.signature == signature:
            return cached.rule
        rule = self._parse(rel, path, stat.st_size)
        with self._lock:
            self._cache[rel] = _Cached(signature, rule)
        return rule

    def _parse(self, rel: str, path: Path, size: int) -> Rule:
        real = path.resolve()
        if not real.is_relative_to(self.root):
            return Rule(rel, "", problem="it links outside the project; not read")
        if not real.is_file():
            return Rule(rel, "", problem="not a file")
        if size > MAX_RULE_FILE_BYTES:
            return Rule(
                rel, "", problem=f"too big ({size:,} bytes; at most {MAX_RULE_FILE_BYTES:,})"
            )
        try:
            text = real.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            return Rule(rel, "", problem="not UTF-8 text")
        except OSError as exc:
            return Rule(rel, "", problem=f"cannot be read ({exc.strerror or exc})")
        if rel == AGENTS_FILE:
            return Rule(rel, text)  # AGENTS.md always applies; its front matter is its own
        return _with_front_matter(rel, text)


def _with_front_matter(rel: str, text: str) -> Rule:
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return Rule(rel, text)
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        return Rule(rel, "", problem="its front matter has no closing `---`")
    import yaml

    try:
        meta = yaml.safe_load("".join(lines[1:end])) or {}
    except yaml.YAMLError:
        return Rule(rel, "", problem="its front matter is not valid YAML")
    if not isinstance(meta, dict):
        return Rule(rel, "", problem="its front matter is not a mapping (`applies_to: ...`)")
    body = "".join(lines[end + 1 :])
    raw = meta.get("applies_to")
    if raw is None:
        return Rule(rel, body)
    globs = [raw] if isinstance(raw, str) else raw
    if not isinstance(globs, list) or not globs or not all(isinstance(g, str) for g in globs):
        return Rule(rel, "", problem="`applies_to` must be a glob or a list of globs")
    for glob in globs:
        try:
            glob_to_regex(glob)
        except GlobError as exc:
            return Rule(rel, "", problem=f"`applies_to` {glob!r}: {exc}")
    return Rule(rel, body, tuple(globs))


def _relative(notebook_path: str | None) -> str | None:
    if not notebook_path:
        return None
    path = PurePosixPath(notebook_path.replace("\\", "/").lstrip("/"))
    return str(path) if str(path) not in ("", ".") else None


def _applies(globs: tuple[str, ...], where: str | None) -> bool:
    if where is None:
        return False
    return any(glob_to_regex(glob).fullmatch(where) for glob in globs)
