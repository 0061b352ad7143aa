"""Actions on the domain, named for what they do. Each runs for an actor and checks the
policy first; none knows about HTTP. File access goes through `ProjectFiles`, which keeps
every path inside the project root (symlinks resolved) and applies the index's rules
(`file_rules`: no hidden, .env or key files, no FIFOs or folders, no binary or huge files)."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .file_rules import DEFAULT_MAX_FILE_BYTES, FileRefused, name_refusal, read_allowed
from .models import CodeFile, CodeSuggestion, Project, SuggestionStatus, User, content_hash
from .policies import require_project, require_suggestion

# Modes that add a cell below the target instead of changing it: the target's text may
# have changed since, the new cell does not depend on it.
INSERT_MODES = frozenset({"insert_after", "insert_markdown_after"})
# Removes the target cell on apply (the agent's delete_cell); like a replace, refused if
# the cell changed since the suggestion was made (its `proposed` is empty).
DELETE_MODE = "delete"


class ActionError(Exception):
    """An action that cannot be done as asked; the message says why and what to do."""

    code = "bad_request"


class SuggestionConflict(ActionError):
    code = "conflict"


class TargetMissing(ActionError):
    code = "not_found"


class FileNotAllowed(ActionError):
    """A file inside the root that the file rules refuse (hidden, secret, binary, ...)."""


class ProjectFiles:
    """Reads and writes files of one project, refusing any path that leaves its root or
    that the index would refuse (the same `file_rules`, so what the index never holds no
    engine sends to a model either)."""

    def __init__(
        self,
        project: Project,
        on_write: Callable[[Path], None] | None = None,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        self.project = project
        self.root = Path(project.root).resolve()
        self.max_file_bytes = max_file_bytes
        self._on_write = on_write

    def resolve(self, rel: str) -> Path:
        """The real path of `rel`, inside the root and allowed by name, both as given and
        after symlinks (a harmless name may link to `.env`)."""
        if not rel or "\0" in rel or Path(rel).is_absolute():
            raise ActionError(f"{rel!r}: give a path relative to the project root")
        try:
            path = (self.root / rel).resolve()
        except (OSError, RuntimeError):  # a symlink loop, a name too long
            raise ActionError(f"{rel!r} cannot be resolved") from None
        if not path.is_relative_to(self.root):
            raise ActionError(f"{rel!r} is outside the project")
        refusal = name_refusal(Path(rel).as_posix())
        if refusal is not None:
            raise FileNotAllowed(refusal)
        real_rel = path.relative_to(self.root).as_posix()
        refusal = name_refusal(real_rel) if real_rel != "." else None
        if refusal is not None:
            raise FileNotAllowed(f"`{rel}` links to {refusal}")
        return path

    def read(self, rel: str) -> CodeFile:
        path = self.resolve(rel)
        try:
            data = read_allowed(path, rel, self.max_file_bytes)
        except FileNotFoundError:
            raise TargetMissing(f"{rel} does not exist") from None
        except FileRefused as exc:
            raise FileNotAllowed(str(exc)) from None
        try:
            return CodeFile(rel, data.decode("utf-8"))
        except UnicodeDecodeError:
            raise FileNotAllowed(f"`{rel}` is not a UTF-8 text file") from None

    def write(self, rel: str, text: str) -> None:
        path = self.resolve(rel)
        if path.exists() and not path.is_file():
            raise FileNotAllowed(f"`{rel}` is not a regular file; RubberDuck writes text files")
        # A fresh temporary file (O_EXCL: never a planted symlink out of the root), given
        # the file's own mode, then renamed over it: a reader sees the old file or the new.
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
        fd, tmp_name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".rubberduck-tmp"
        )
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            tmp.chmod(mode)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if self._on_write is not None:
            self._on_write(path)


@dataclass(frozen=True)
class AnalysisReport:
    findings: list[Any]
    functions: list[Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": [f.to_json() for f in self.findings],
            "functions": [getattr(f, "__dict__", f) for f in self.functions],
        }


def analyze_code(
    actor: User,
    code: CodeFile | str,
    *,
    project: Project | None = None,
    known_names: Collection[str] = (),
) -> AnalysisReport:
    """Static analysis of a cell or a project file: findings with locations, and the
    functions' sizes and complexity. Blocking (runs ruff): call it from a thread."""
    from ..review.metrics import outline
    from ..review.static import analyze_python

    if isinstance(code, CodeFile):
        if project is None:
            raise ActionError("analyzing a project file needs its project")
        require_project(actor, project)
        source, filename = code.text, code.path
    else:
        source, filename = code, "cell.py"
    findings = analyze_python(source, filename=filename, known_names=known_names)
    try:
        functions = outline(source)
    except SyntaxError:
        functions = []
    return AnalysisReport(findings, functions)


def generate_tests(actor: User, source: str, module_name: str = "module") -> str:
    """A pytest skeleton for the code's public functions (the model-free part; engines ask
    the model for full tests when one is configured)."""
    from ..review.testgen import test_skeleton

    if not actor.name:
        raise ActionError("an action needs an actor")
    return test_skeleton(source, module_name)


def _locate_cell(nb: dict[str, Any], suggestion: CodeSuggestion) -> int:
    cells = nb.get("cells", [])
    target = suggestion.target
    if target.cell_id:
        for i, cell in enumerate(cells):
            if cell.get("id") == target.cell_id:
                return i
        raise TargetMissing(f"The cell {target.cell_id} is no longer in {target.path}.")
    if target.cell_index is None or not 0 <= target.cell_index < len(cells):
        raise TargetMissing(f"{target.path} has no cell {target.cell_index}.")
    return target.cell_index


def _cell_source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _apply_blocking(suggestion: CodeSuggestion, files: ProjectFiles) -> str:
    target = suggestion.target
    if target.path is None:
        raise ActionError(
            "This suggestion targets an unsaved notebook; apply it from the notebook itself."
        )
    current = files.read(target.path)
    if not target.is_cell:
        if current.hash != suggestion.base_hash:
            raise SuggestionConflict(
                f"{target.path} changed since the suggestion was made; ask again for a fresh one."
            )
        files.write(target.path, suggestion.proposed)
        return target.path
    try:
        nb = json.loads(current.text)
    except ValueError:
        raise ActionError(f"{target.path} is not a valid notebook") from None
    index = _locate_cell(nb, suggestion)
    if suggestion.mode in INSERT_MODES:
        import nbformat

        new_cell = (
            nbformat.v4.new_markdown_cell(suggestion.proposed)
            if suggestion.mode == "insert_markdown_after"
            else nbformat.v4.new_code_cell(suggestion.proposed)
        )
        if nb.get("nbformat_minor", 0) < 5:
            new_cell.pop("id", None)
        nb["cells"].insert(index + 1, dict(new_cell))
    elif suggestion.mode == DELETE_MODE:
        if content_hash(_cell_source(nb["cells"][index])) != suggestion.base_hash:
            raise SuggestionConflict(
                f"Cell {index} of {target.path} changed since its removal was suggested; "
                "ask again for a fresh one."
            )
        del nb["cells"][index]
    else:
        if content_hash(_cell_source(nb["cells"][index])) != suggestion.base_hash:
            raise SuggestionConflict(
                f"Cell {index} of {target.path} changed since the suggestion was made; "
                "ask again for a fresh one."
            )
        nb["cells"][index]["source"] = suggestion.proposed
    files.write(target.path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return target.path


async def apply_suggestion(
    actor: User,
    suggestion: CodeSuggestion | None,
    suggestion_id: str,
    files: ProjectFiles | None,
    *,
    client_target_hash: str | None = None,
) -> CodeSuggestion:
    """Applies a proposed change, refusing if its target changed since it was made.

    `client_target_hash`: the client applied it to a notebook open in the browser, and says
    what the target's text hashed to just before; the server checks and records it.
    """
    suggestion = require_suggestion(actor, suggestion, suggestion_id)
    if suggestion.status is not SuggestionStatus.PROPOSED:
        raise ActionError(f"This suggestion was already {suggestion.status}.")
    if suggestion.mode == DELETE_MODE and not suggestion.target.is_cell:
        raise ActionError("Only a notebook cell can be deleted by a suggestion.")
    if client_target_hash is not None:
        if suggestion.mode not in INSERT_MODES and client_target_hash != suggestion.base_hash:
            raise SuggestionConflict(
                "The cell changed since the suggestion was made; ask again for a fresh one."
            )
    else:
        if files is None:
            raise ActionError("No project to apply the suggestion in.")
        require_project(actor, files.project)
        await asyncio.to_thread(_apply_blocking, suggestion, files)
    return replace(suggestion, status=SuggestionStatus.APPLIED)
