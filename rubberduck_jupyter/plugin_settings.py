"""The plugin settings in effect: the app's traitlets (or the CLI's reading of the same
config files) with the admin's `rubberduck_plugins.json` applied on top.

On JupyterHub a user writes their own server's config, so the traitlets are the user's
lists; the admin's lists live in a system config dir the user cannot write, and can only
be narrowed (allow/deny) or added to (untrusted) by the user's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .plugins import AccessPolicy
from .plugins.discovery import canonical_name, merge_policies
from .plugins.isolation import WorkerLimits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PluginSettings:
    """The admin's plugin settings (RubberDuckApp traitlets)."""

    folders: tuple[Path, ...] = ()
    entry_points: bool = True
    policy: AccessPolicy = field(default_factory=AccessPolicy)
    hook_timeout_s: float = 2.0
    command_timeout_s: float = 120.0
    max_consecutive_failures: int = 3
    reload: bool = True
    # Canonical names of plugins that run in an isolation worker; "*": every plugin that is
    # not built in.
    untrusted: frozenset[str] = frozenset()
    worker_limits: WorkerLimits = field(default_factory=WorkerLimits)

    def is_untrusted(self, name: str) -> bool:
        return "*" in self.untrusted or canonical_name(name) in self.untrusted


def plugin_settings(config: Mapping[str, Any]) -> PluginSettings:
    """PluginSettings from RubberDuckApp's plugin traitlets (the app's values, or the CLI's
    reading of jupyter_server_config), with the admin's policy file applied on top."""
    from jupyter_core.paths import jupyter_config_dir

    folder = config.get("plugins_dir") or ""
    path = (
        Path(folder).expanduser()
        if folder
        else Path(jupyter_config_dir()) / "rubberduck" / "plugins"
    )
    user = AccessPolicy.of(allow=config.get("plugins_allow"), deny=config.get("plugins_deny") or ())
    admin = admin_policy()
    return PluginSettings(
        folders=(path,),
        entry_points=bool(config.get("plugins_entry_points", True)),
        policy=merge_policies(admin, user) if admin is not None else user,
        hook_timeout_s=float(config.get("plugin_hook_timeout", 2.0)),
        command_timeout_s=float(config.get("plugin_command_timeout", 120.0)),
        max_consecutive_failures=int(config.get("plugin_max_failures", 3)),
        reload=bool(config.get("plugins_reload", True)),
        # The user's list and the admin's: either can ask for isolation, neither undo it.
        untrusted=frozenset(
            canonical_name(n) if n != "*" else "*" for n in config.get("plugins_untrusted") or ()
        )
        | admin_untrusted(),
        worker_limits=WorkerLimits(
            memory_mib=int(config.get("plugin_worker_memory_mib", 512)),
            cpu_s=int(config.get("plugin_worker_cpu_s", 30)),
            nofile=int(config.get("plugin_worker_open_files", 64)),
        ),
    )


ADMIN_POLICY_FILE = "rubberduck_plugins.json"


def _admin_files(dirs: Iterable[str] | None) -> list[tuple[Path, dict[str, Any] | None, str]]:
    """Each admin file found: its path, its data (None when invalid) and why it is not."""
    import json

    from jupyter_core.paths import ENV_CONFIG_PATH, SYSTEM_CONFIG_PATH

    out: list[tuple[Path, dict[str, Any] | None, str]] = []
    for folder in dirs if dirs is not None else [*ENV_CONFIG_PATH, *SYSTEM_CONFIG_PATH]:
        path = Path(folder) / ADMIN_POLICY_FILE
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("it must be a JSON object")
            for key in ("allow", "deny", "untrusted"):
                value = data.get(key)
                if value is None and key == "allow":
                    continue
                if value is not None and not (
                    isinstance(value, list) and all(isinstance(n, str) for n in value)
                ):
                    raise ValueError(f"{key!r} must be a list of names")
            out.append((path, data, ""))
        except (OSError, ValueError) as exc:
            out.append((path, None, str(exc)))
    return out


def admin_policy(dirs: Iterable[str] | None = None) -> AccessPolicy | None:
    """The admin's allow/deny lists: `rubberduck_plugins.json` in the system config dirs
    (`/etc/jupyter`, `/usr/local/etc/jupyter`, the environment's `etc/jupyter`), which a
    hub user cannot write: `{"allow": [...] | null, "deny": [...], "untrusted": [...]}`.
    Several files merge, each only narrowing. A file that cannot be read or is malformed is
    an error the admin must see: it fails closed (no plugin of anyone's loads; built-ins
    still do) and logs why. None: no such file."""
    found: AccessPolicy | None = None
    for path, data, problem in _admin_files(dirs):
        if data is None:
            log.error(
                "RubberDuck: %s is not valid (%s); no plugin of anyone's loads", path, problem
            )
            policy = AccessPolicy.of(allow=[], deny=[])
        else:
            policy = AccessPolicy.of(allow=data.get("allow"), deny=data.get("deny") or [])
        found = policy if found is None else merge_policies(found, policy)
    return found


def admin_untrusted(dirs: Iterable[str] | None = None) -> frozenset[str]:
    """The names the admin's files mark untrusted (a union: marking only adds isolation)."""
    names: set[str] = set()
    for _path, data, _problem in _admin_files(dirs):
        if data is not None:
            names |= {canonical_name(n) if n != "*" else "*" for n in data.get("untrusted") or []}
    return frozenset(names)
