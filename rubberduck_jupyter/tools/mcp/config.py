"""Which MCP servers a user's agent may use: the admin's `c.RubberDuckApp.mcp_servers`,
and the user's own (a JSON file) when `mcp_allow_user_servers` is on.

A server is `{"command": [...], "env": {...}, "cwd": "..."}` (stdio) or `{"url": "...",
"headers": {...}}` (streamable HTTP), plus `"permission"` (read | write | run, default
run), an optional `"tools"` allow-list, `"timeout"` (seconds for each call, and for
start-up unless `"start_timeout"` gives its own: `npx` fetching a package is slow once).
Values in `env` and `headers` may name environment variables (`${TOKEN}`), so secrets
stay out of the file; they are secrets either way: never logged, never in a repr, never
sent to the browser.

The default permission is `run`, the most restrictive: an MCP tool is code behind a
description we cannot check, and it may change files, tickets or databases. A server is
offered without asking only when its configuration says `read`; a server's own
`readOnlyHint` is believed only when it says the tool changes things.

The hub rules: an admin's server cannot be replaced, widened (its allow-list) or
raised (its permission) by a user: a user's entry with an admin server's name is
dropped, and with user servers not allowed only the admin's run. On a laptop the
traitlets are the admin's (the user is the admin). On JupyterHub a user controls their
own server's config files, so traitlets cannot bind them (plugins have the same rule,
docs/plugins.md): the admin's servers and `allow_user_servers` then live in
`rubberduck_mcp.json` in a system config dir, which users cannot write; once such a file
exists, the traitlets' servers count as the user's. A file that cannot be read fails
closed: no MCP server runs. Importing this module imports no `mcp`: the SDK loads on
the first agent turn.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from ..base import Permission

# OpenAI's function names are ^[a-zA-Z0-9_-]{1,64}$; `<server>__<tool>` must fit.
SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,23}$")
# Start-up (spawn, handshake, tools/list) and each call. A stdio server in Python starts
# in ~0.7 s here (the SDK's import); ten seconds means it is stuck, not slow.
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 300.0
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_KEYS = {
    "command",
    "env",
    "cwd",
    "url",
    "headers",
    "permission",
    "tools",
    "timeout",
    "start_timeout",
}

Source = Literal["admin", "user"]
ADMIN_FILE = "rubberduck_mcp.json"
USER_FILE = "mcp.json"  # under <jupyter config dir>/rubberduck/


class McpConfigError(ValueError):
    """One server's configuration cannot be used; the message names the server."""


@dataclass(frozen=True, slots=True)
class McpServerSpec:
    name: str
    source: Source
    command: tuple[str, ...] = ()
    cwd: str | None = None
    url: str | None = None
    permission: Permission = Permission.RUN
    tools: frozenset[str] | None = None  # the allow-list; None: all the server lists
    timeout_s: float = DEFAULT_TIMEOUT_S  # each call
    start_timeout_s: float = DEFAULT_TIMEOUT_S  # spawn, handshake, tools/list
    # Secrets: kept out of repr and equality's printout.
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "http" if self.url else "stdio"

    def allows(self, tool: str) -> bool:
        return self.tools is None or tool in self.tools

    def secrets(self) -> list[str]:
        """Values to redact wherever this server's words go (results, errors, logs): its
        env and header values, and a URL's query (`?key=...`) and user info."""
        values = [*self.env.values(), *self.headers.values()]
        if self.url:
            parts = urlsplit(self.url)
            values += [v for _k, v in parse_qsl(parts.query)]
            values += [p for p in (parts.username, parts.password) if p]
        return [v for v in values if len(v) >= 6]

    def where(self) -> str:
        """Where it runs, for a notice or the log: the program or the URL, no secrets."""
        if self.url:
            parts = urlsplit(self.url)
            port = f":{parts.port}" if parts.port else ""
            return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
        return os.path.basename(self.command[0]) if self.command else "?"


def parse_server(name: str, raw: Any, source: Source, env: Mapping[str, str]) -> McpServerSpec:
    """One entry of `mcp_servers`, checked. Raises McpConfigError saying what to fix."""
    if not isinstance(name, str) or not SERVER_NAME.match(name):
        raise McpConfigError(
            f"MCP server name {name!r}: use 1-24 letters, digits, '_' or '-' (tools are "
            "offered as <server>__<tool>)"
        )
    if not isinstance(raw, Mapping):
        raise McpConfigError(f"MCP server {name}: expected a dict, got {type(raw).__name__}")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise McpConfigError(
            f"MCP server {name}: unknown key(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_KEYS))})"
        )
    command = raw.get("command")
    url = raw.get("url")
    if (command is None) == (url is None):
        raise McpConfigError(f"MCP server {name}: give either 'command' (stdio) or 'url' (HTTP)")
    if isinstance(command, str):
        command = [command]
    if command is not None and (
        not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command)
    ):
        raise McpConfigError(f"MCP server {name}: 'command' must be a list of strings")
    if url is not None and (
        not isinstance(url, str) or not url.startswith(("http://", "https://"))
    ):
        raise McpConfigError(f"MCP server {name}: 'url' must be an http:// or https:// URL")
    permission = raw.get("permission", Permission.RUN.value)
    try:
        permission = Permission(permission)
    except ValueError:
        raise McpConfigError(
            f"MCP server {name}: 'permission' must be read, write or run, not {permission!r}"
        ) from None
    tools = raw.get("tools")
    if tools is not None and (
        not isinstance(tools, list) or not all(isinstance(t, str) for t in tools)
    ):
        raise McpConfigError(f"MCP server {name}: 'tools' must be a list of tool names")
    timeout = _seconds(name, "timeout", raw.get("timeout", DEFAULT_TIMEOUT_S))
    start_timeout = _seconds(name, "start_timeout", raw.get("start_timeout", timeout))
    cwd = raw.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise McpConfigError(f"MCP server {name}: 'cwd' must be a path")
    return McpServerSpec(
        name=name,
        source=source,
        command=tuple(command or ()),
        cwd=os.path.expanduser(cwd) if cwd else None,
        url=url,
        permission=permission,
        tools=frozenset(tools) if tools is not None else None,
        timeout_s=timeout,
        start_timeout_s=start_timeout,
        env=_strings(name, "env", raw.get("env"), env),
        headers=_strings(name, "headers", raw.get("headers"), env),
    )


def _seconds(name: str, key: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_TIMEOUT_S
    ):
        raise McpConfigError(
            f"MCP server {name}: '{key}' must be a number of seconds in (0, {MAX_TIMEOUT_S:g}]"
        )
    return float(value)


def _strings(name: str, key: str, raw: Any, env: Mapping[str, str]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise McpConfigError(f"MCP server {name}: '{key}' must map strings to strings")
    out = {}
    for k, v in raw.items():
        missing = [m for m in _VARIABLE.findall(v) if m not in env]
        if missing:
            # The variable's name only: its value (if any) is a secret.
            raise McpConfigError(
                f"MCP server {name}: {key}[{k!r}] names ${{{missing[0]}}}, which is not set"
            )
        out[k] = _VARIABLE.sub(lambda m: env[m.group(1)], v)
    return out


def merge_servers(
    admin: Mapping[str, Any],
    user: Mapping[str, Any] | None,
    *,
    allow_user: bool,
    env: Mapping[str, str] | None = None,
) -> tuple[list[McpServerSpec], list[str]]:
    """The servers in effect, and what was left out and why (for the log)."""
    env = os.environ if env is None else env
    specs: list[McpServerSpec] = []
    problems: list[str] = []
    for name, raw in admin.items():
        try:
            specs.append(parse_server(name, raw, "admin", env))
        except McpConfigError as exc:
            problems.append(str(exc))
    if not user:
        return specs, problems
    if not allow_user:
        problems.append(
            "the user's MCP servers are not used: the admin set mcp_allow_user_servers = False"
        )
        return specs, problems
    admin_names = set(admin)
    for name, raw in user.items():
        if name in admin_names:
            # Replacing it would widen its allow-list or raise its permission.
            problems.append(
                f"the user's MCP server {name!r} is ignored: the admin configures a server "
                "of that name"
            )
            continue
        try:
            specs.append(parse_server(name, raw, "user", env))
        except McpConfigError as exc:
            problems.append(str(exc))
    return specs, problems


@dataclass(frozen=True, slots=True)
class AdminFile:
    """What the admin's `rubberduck_mcp.json` files say, merged (each only narrowing
    `allow_user_servers`; the first file to name a server keeps it)."""

    servers: Mapping[str, Any]
    allow_user: bool
    error: str = ""  # a file that cannot be used: no MCP server runs


def read_admin_files(dirs: list[str] | None = None) -> AdminFile | None:
    """`rubberduck_mcp.json` in the system config dirs (`/etc/jupyter`,
    `/usr/local/etc/jupyter`, the environment's `etc/jupyter`): `{"mcp_servers": {...},
    "allow_user_servers": false}`. None: there is none."""
    if dirs is None:
        from jupyter_core.paths import ENV_CONFIG_PATH, SYSTEM_CONFIG_PATH

        dirs = [*ENV_CONFIG_PATH, *SYSTEM_CONFIG_PATH]
    found: AdminFile | None = None
    for folder in dirs:
        path = Path(folder) / ADMIN_FILE
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            servers = data.get("mcp_servers", {}) if isinstance(data, dict) else None
            allow = data.get("allow_user_servers", True) if isinstance(data, dict) else None
            if not isinstance(servers, dict) or not isinstance(allow, bool):
                raise ValueError(
                    'it must be {"mcp_servers": {name: {...}}, "allow_user_servers": true|false}'
                )
        except (OSError, ValueError) as exc:
            return AdminFile({}, False, f"{path} cannot be used ({exc}): no MCP server runs")
        if found is None:
            found = AdminFile(dict(servers), allow)
        else:
            merged = {**servers, **found.servers}  # the first file's entry wins
            found = AdminFile(merged, found.allow_user and allow)
    return found


def servers_in_effect(
    *,
    configured: Mapping[str, Any],
    allow_user: bool,
    user_file: Mapping[str, Any] | None,
    admin_file: AdminFile | None,
    env: Mapping[str, str] | None = None,
) -> tuple[list[McpServerSpec], list[str]]:
    """The servers this process may run: `configured` (the traitlet) is the admin's
    unless an admin file exists, in which case it counts as the user's; `allow_user`
    (the traitlet) can only narrow what an admin file allows."""
    if admin_file is None:
        return merge_servers(configured, user_file, allow_user=allow_user, env=env)
    if admin_file.error:
        return [], [admin_file.error]
    user = {**configured, **(user_file or {})}
    return merge_servers(
        admin_file.servers, user, allow_user=admin_file.allow_user and allow_user, env=env
    )


def read_user_servers(path: Path) -> tuple[dict[str, Any], str | None]:
    """The user file's `mcp_servers` (`{"mcp_servers": {name: {...}}}`), or why not."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        return {}, f"cannot read {path}: {exc.strerror}"
    try:
        data = json.loads(text)
    except ValueError as exc:
        return {}, f"{path} is not valid JSON ({exc})"
    servers = data.get("mcp_servers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        return {}, f'{path} must be an object with "mcp_servers": {{name: {{...}}}}'
    return servers, None
