"""Where plugins come from, whether we may load them, and whether they speak our API.

Three sources, each yielding `Candidate`s that are not imported yet:

- the `rubberduck.plugins` entry-point group (`importlib.metadata`): a package declares
  `[project.entry-points."rubberduck.plugins"] hello = "hello_pkg.plugin"`; the entry-point
  name is the plugin's name;
- a plugins folder: every `*.py` file and every package directory (with `__init__.py`) is one
  plugin, named after the file or directory (files starting with '_' or '.' are ignored). Each
  is imported under a private module name derived from the folder's path, so two folders'
  `hello.py` never clash with each other or with an installed `hello` module;
- built-ins, registered directly by the registry (`PluginRegistry.register_builtin`).

The access policy (allow/deny by name) is checked on the candidate's name BEFORE its module is
imported: a denied plugin's code never runs. The registry then insists that the spec's
declared name equals the name it was discovered under, so that check cannot be dodged.

Capability negotiation (`negotiate`) compares the spec's `api` range with PLUGIN_API_VERSION
and explains which side is too old.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal

from packaging.version import InvalidVersion, Version

from .spec import PLUGIN_API_VERSION, PluginSpec

ENTRY_POINT_GROUP = "rubberduck.plugins"
# Folder plugins live under this prefix in sys.modules; never a name a real package uses.
PRIVATE_MODULE_PREFIX = "_rubberduck_plugin_"

SourceKind = Literal["entry_point", "folder", "builtin"]


def canonical_name(name: str) -> str:
    """Names compare case-insensitively and with '_' equal to '-' (as PyPI does)."""
    return str(name).strip().lower().replace("_", "-")


@dataclass(frozen=True)
class Candidate:
    """A plugin found but not imported: `load()` imports it and returns its module."""

    name: str
    source: str
    kind: SourceKind
    load: Callable[[], object]


# -- entry points -------------------------------------------------------------------------


def entry_point_candidates(group: str = ENTRY_POINT_GROUP) -> list[Candidate]:
    """Entry points of `group`, sorted by name (a stable registration order)."""
    found = importlib.metadata.entry_points(group=group)
    out: list[Candidate] = []
    for ep in sorted(found, key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        where = f" ({dist.name} {dist.version})" if dist is not None else ""
        out.append(
            Candidate(
                name=ep.name,
                source=f"entry point {ep.name} = {ep.value}{where}",
                kind="entry_point",
                load=ep.load,
            )
        )
    return out


# -- folders ------------------------------------------------------------------------------


def _private_name(folder: Path, stem: str) -> str:
    digest = hashlib.sha1(str(folder).encode(), usedforsecurity=False).hexdigest()[:10]
    return f"{PRIVATE_MODULE_PREFIX}{digest}_{stem}"


def _import_path(module_name: str, path: Path, package_dir: Path | None) -> ModuleType:
    """Import `path` as `module_name`; on any failure leave sys.modules as it was."""
    locations = [str(package_dir)] if package_dir is not None else None
    spec = importlib.util.spec_from_file_location(
        module_name, path, submodule_search_locations=locations
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered before exec so dataclasses, pickling and relative imports inside a
    # package plugin see their own module.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        for name in [n for n in sys.modules if n == module_name or n.startswith(module_name + ".")]:
            del sys.modules[name]
        raise
    return module


def folder_candidates(folder: str | Path) -> list[Candidate]:
    """One candidate per `*.py` file and package directory in `folder`, sorted by name.

    A missing folder yields nothing (the default folder need not exist).
    """
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        return []
    out: list[Candidate] = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(("_", ".")):
            continue
        if entry.is_file() and entry.suffix == ".py":
            stem, path, pkg = entry.stem, entry, None
        elif entry.is_dir() and (entry / "__init__.py").is_file():
            stem, path, pkg = entry.name, entry / "__init__.py", entry
        else:
            continue
        module_name = _private_name(root, stem)

        def load(m: str = module_name, p: Path = path, d: Path | None = pkg) -> ModuleType:
            return _import_path(m, p, d)

        out.append(Candidate(name=stem, source=str(path), kind="folder", load=load))
    return out


# -- negotiation --------------------------------------------------------------------------


def negotiate(spec: PluginSpec, api_version: str = PLUGIN_API_VERSION) -> str | None:
    """None when `spec.api` admits `api_version`; otherwise the reason, saying what to do."""
    ours = Version(api_version)
    wanted = spec.api_range
    if wanted.contains(ours, prereleases=True):
        return None
    # Versions the range names, plus later majors: if one newer than ours is admitted, the
    # plugin was written for a later API than this RubberDuck has.
    probes = [Version(f"{ours.major + step}.0") for step in range(1, 6)]
    for item in wanted:
        with contextlib.suppress(InvalidVersion):
            probes.append(Version(item.version.removesuffix(".*")))
    if any(v > ours and wanted.contains(v, prereleases=True) for v in probes):
        return (
            f"needs plugin API {spec.api}, this RubberDuck provides {api_version} (too old); "
            "upgrade rubberduck-jupyter or install an older version of the plugin"
        )
    return (
        f"needs plugin API {spec.api}, this RubberDuck provides {api_version} (newer than the "
        "plugin supports); upgrade the plugin"
    )


# -- allow / deny -------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessPolicy:
    """Which plugins may load, by name. `allow=None` means every plugin not denied.

    Rules: deny wins over allow; when an allow list is given, a plugin not on it is skipped.
    """

    allow: frozenset[str] | None = None
    deny: frozenset[str] = frozenset()

    @classmethod
    def of(cls, allow: Iterable[str] | None = None, deny: Iterable[str] = ()) -> AccessPolicy:
        return cls(
            allow=None if allow is None else frozenset(canonical_name(n) for n in allow),
            deny=frozenset(canonical_name(n) for n in deny),
        )

    def refusal(self, name: str, *, builtin: bool = False) -> str | None:
        """None when `name` may load; otherwise why not. Built-ins obey only the deny list:
        an allow list names the plugins an admin lets in, and must not switch off our
        engines by leaving them out."""
        key = canonical_name(name)
        if key in self.deny:
            return f"denied by plugins_deny ({key!r} is listed)"
        if builtin:
            return None
        if self.allow is not None and key not in self.allow:
            listed = ", ".join(sorted(self.allow)) or "nothing"
            return f"not in plugins_allow (which allows {listed})"
        return None


def merge_policies(admin: AccessPolicy, user: AccessPolicy) -> AccessPolicy:
    """The effective policy when a user's lists meet an admin's: the user can only narrow.

    - deny: the union (a user may deny more; an admin's deny stays whatever the user allows);
    - allow: the intersection when both give one, the admin's when only the admin gives one
      (a user's allow cannot add names), the user's when only the user gives one (narrowing
      "everything" to the user's list).
    """
    if admin.allow is None:
        allow = user.allow
    elif user.allow is None:
        allow = admin.allow
    else:
        allow = admin.allow & user.allow
    return AccessPolicy(allow=allow, deny=admin.deny | user.deny)


def iter_candidates(
    *, entry_points: bool = True, folders: Iterable[str | Path] = ()
) -> Iterator[Candidate]:
    """Entry points first, then each folder in the order given."""
    if entry_points:
        yield from entry_point_candidates()
    for folder in folders:
        yield from folder_candidates(folder)
