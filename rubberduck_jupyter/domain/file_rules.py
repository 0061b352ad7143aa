"""Which files RubberDuck may read at all: one set of rules for the index and for every
file an engine reads or a suggestion writes.

A file is refused when any part of its path is hidden (`.git/`, `.env.py`, `.ssh/`), when its
name says it holds secrets (`.env*`, private keys), when it is not a regular file (a folder,
a FIFO, a device), when it is larger than the cap, or when it looks binary. Containment in the
project root (symlinks resolved) is checked by the callers, which know the root.

Standard library only, so both the domain and the index (a leaf) can import it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DEFAULT_MAX_FILE_BYTES = 2_000_000  # a notebook with a few plots; larger files are data
SNIFF_BYTES = 8192  # git's own binary check reads the first 8 KiB looking for a NUL

REFUSED_KINDS = "RubberDuck does not read hidden files, .env files or keys"
# Private keys and keystores under their usual names (ssh-keygen, openssl, Java, PuTTY).
_KEY_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".ppk", ".jks", ".keystore")
_KEY_NAMES = frozenset(
    {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"}
)


def is_secret_name(name: str) -> bool:
    """A file name that says it holds secrets: `.env`, `.env.*`, a private key."""
    lower = name.lower()
    return (
        lower == ".env"
        or lower.startswith(".env.")
        or lower.endswith(_KEY_SUFFIXES)
        or lower in _KEY_NAMES
    )


def name_refusal(rel_path: str) -> str | None:
    """Why a path (POSIX, relative to the root) is refused from its name alone, or None."""
    parts = [p for p in rel_path.split("/") if p not in ("", ".", "..")]
    if not parts:
        return None
    name = parts[-1]
    if is_secret_name(name):
        what = "an .env file" if name.lower().startswith(".env") else "a key file"
        return f"`{rel_path}` is {what}; {REFUSED_KINDS}"
    if name.startswith("."):
        return f"`{rel_path}` is a hidden file; {REFUSED_KINDS}"
    if any(p.startswith(".") for p in parts[:-1]):
        return f"`{rel_path}` is inside a hidden folder; {REFUSED_KINDS}"
    return None


def looks_binary(head: bytes) -> bool:
    return b"\0" in head[:SNIFF_BYTES]


def read_allowed(path: Path, rel_path: str, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular, text-looking file within the cap, else `FileRefused`.

    Opened once without blocking and checked on the open descriptor, so a FIFO (which would
    block `open()` until a writer comes) or a file swapped after a check is refused, never
    waited on.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise  # missing is the caller's "not found", not a refusal by the rules
    except OSError as exc:
        raise FileRefused(f"`{rel_path}` cannot be read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise FileRefused(f"`{rel_path}` is {kind}; RubberDuck reads regular text files")
        if info.st_size > max_file_bytes:
            raise FileRefused(f"`{rel_path}` is larger than {max_file_bytes:,} bytes")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(max_file_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_file_bytes:  # it grew after the check
        raise FileRefused(f"`{rel_path}` is larger than {max_file_bytes:,} bytes")
    if looks_binary(data):
        raise FileRefused(f"`{rel_path}` is a binary file; RubberDuck reads text files")
    return data


class FileRefused(Exception):
    """A file the rules above refuse; the message names the file and the rule."""
