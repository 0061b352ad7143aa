"""The file rules shared by the index and ProjectFiles: what one refuses, the other does."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from rubberduck_jupyter.domain.actions import (
    ActionError,
    FileNotAllowed,
    ProjectFiles,
    TargetMissing,
)
from rubberduck_jupyter.domain.file_rules import is_secret_name, name_refusal
from rubberduck_jupyter.domain.models import Project
from rubberduck_jupyter.index.discovery import Candidate, check_file

REFUSED_BY_NAME = [
    ".env",
    ".env.py",
    ".env.local",
    ".hidden.py",
    ".git/config.py",
    "sub/.secret/x.py",
    "deploy/server.pem",
    "tls.key",
    "id_rsa",
    "home/id_ed25519",
    "store.p12",
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
def files(root: Path) -> ProjectFiles:
    return ProjectFiles(Project.for_root(str(root), "alice"), max_file_bytes=10_000)


@pytest.mark.parametrize("rel", REFUSED_BY_NAME)
def test_index_and_project_files_refuse_the_same_names(
    rel: str, root: Path, files: ProjectFiles
) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x = 1\n")
    assert name_refusal(rel) is not None
    assert not isinstance(check_file(root, path), Candidate)
    with pytest.raises(FileNotAllowed, match="RubberDuck does not read hidden files"):
        files.read(rel)
    with pytest.raises(FileNotAllowed):
        files.write(rel, "y = 2\n")
    assert path.read_text() == "x = 1\n"


def test_the_message_names_the_file_and_the_rule(root: Path, files: ProjectFiles) -> None:
    (root / ".env.py").write_text("KEY = 'x'\n")
    (root / ".hidden.py").write_text("x = 1\n")
    with pytest.raises(FileNotAllowed) as env:
        files.read(".env.py")
    assert str(env.value).startswith("`.env.py` is an .env file; RubberDuck does not read")
    with pytest.raises(FileNotAllowed) as hidden:
        files.read(".hidden.py")
    assert str(hidden.value).startswith("`.hidden.py` is a hidden file;")
    assert is_secret_name("ID_RSA") and not is_secret_name("keys.py")


def test_a_harmless_name_linking_to_a_refused_file_is_refused(
    root: Path, files: ProjectFiles
) -> None:
    (root / ".env").write_text("SECRET=1\n")
    (root / "settings.py").symlink_to(root / ".env")
    with pytest.raises(FileNotAllowed, match="links to"):
        files.read("settings.py")


def test_fifo_folder_binary_huge_and_missing(root: Path, files: ProjectFiles) -> None:
    os.mkfifo(root / "pipe.py")
    (root / "folder.py").mkdir()
    (root / "blob.py").write_bytes(b"x = 1\0\1\2")
    (root / "huge.py").write_text("x = 1\n" * 5000)
    (root / "latin.py").write_bytes("x = 'é'\n".encode("latin-1"))
    # A FIFO must be refused at once: run the read in a thread with a deadline so a
    # regression shows as a failure, not a hung suite.
    outcome: list[BaseException | None] = []

    def read_fifo() -> None:
        try:
            files.read("pipe.py")
            outcome.append(None)
        except BaseException as exc:  # handed back to the test thread
            outcome.append(exc)

    reader = threading.Thread(target=read_fifo, daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive():
        with open(root / "pipe.py", "wb"):  # unblock the reader before failing
            pass
        pytest.fail("reading a FIFO blocked")
    assert isinstance(outcome[0], FileNotAllowed), outcome
    assert "not a regular file" in str(outcome[0])
    for rel, words in [
        ("folder.py", "a folder"),
        ("blob.py", "binary"),
        ("huge.py", "larger than 10,000 bytes"),
        ("latin.py", "not a UTF-8 text file"),
    ]:
        with pytest.raises(FileNotAllowed, match=words):
            files.read(rel)
    with pytest.raises(TargetMissing):
        files.read("absent.py")
    with pytest.raises(FileNotAllowed):
        files.write("pipe.py", "x = 2\n")


@pytest.mark.parametrize("rel", ["../x.py", "/etc/passwd", "a\0b.py", ""])
def test_paths_outside_the_root_or_malformed(rel: str, files: ProjectFiles) -> None:
    with pytest.raises(ActionError) as refused:
        files.read(rel)
    assert not isinstance(refused.value, FileNotAllowed | TargetMissing)


def test_the_index_refuses_a_harmless_name_linking_to_a_secret(root: Path) -> None:
    # Found by the path corpus: `envlink.py -> .env` was indexed and searchable.
    from rubberduck_jupyter.index.discovery import Skipped, discover

    (root / ".env").write_text("SECRET=1\n")
    (root / "envlink.py").symlink_to(root / ".env")
    (root / "ok.py").write_text("x = 1\n")
    found = {r.rel_path: r for r in discover(root)}
    assert isinstance(found["ok.py"], Candidate)
    assert isinstance(found["envlink.py"], Skipped)
    assert found["envlink.py"].reason == "links to a hidden or secret file"
    assert isinstance(check_file(root, root / "envlink.py"), Skipped)


def test_a_write_follows_no_planted_temporary_symlink(root: Path, tmp_path: Path) -> None:
    # The old fixed temporary name `.calc.py.rubberduck-tmp` could be planted as a symlink
    # out of the root; the write would then have gone to the link's target.
    files = ProjectFiles(Project.for_root(str(root), "alice"))
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched\n")
    (root / "calc.py").write_text("x = 1\n")
    (root / "calc.py").chmod(0o640)
    (root / ".calc.py.rubberduck-tmp").symlink_to(outside)
    files.write("calc.py", "x = 2\n")
    assert (root / "calc.py").read_text() == "x = 2\n"
    assert (root / "calc.py").stat().st_mode & 0o777 == 0o640
    assert outside.read_text() == "untouched\n"
    leftovers = [p.name for p in root.iterdir() if p.name.endswith(".rubberduck-tmp")]
    assert leftovers == [".calc.py.rubberduck-tmp"]  # only the planted link, untouched
