"""McpServers: the MCP servers of one user's server process, as the agent's tool source.

Nothing starts with Jupyter: the first agent turn starts every configured server at
once (in parallel, each under its own timeout) and waits for them at most the longest
timeout; a server that is not ready by then is left out of that turn with a notice.
Connections are kept for the process and closed at server stop. The user's file is
read again when it changes (one `stat` per turn).

Read-permission tools are offered to every agent turn. A write or run tool acts outside
the notebook (a ticket, a file, a query), so each call asks the user first (a `tool`
approval, tools/mcp/adapter.py): such tools are offered only to a turn whose client
answers approvals (the sidebar, `context.agent.can_run`); to any other (REST, magics)
they are left out with one notice per server, and refused by their handler if a model
names them anyway.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..base import Permission, Tool
from ..registry import Notify
from .adapter import adapt, permission_of
from .config import (
    AdminFile,
    McpServerSpec,
    read_admin_files,
    read_user_servers,
    servers_in_effect,
)
from .connection import McpConnection

log = logging.getLogger(__name__)

# The permissions a tool needs to be offered without asking the user; the others are
# offered only when the turn can ask (each call asks first).
OFFERED = frozenset({Permission.READ})
# The turn waits this much past the longest start-up timeout (the owner's own timeout
# fires first; this covers its clean-up).
WAIT_MARGIN_S = 0.5


class McpServers:
    def __init__(
        self,
        configured: Mapping[str, Any],
        *,
        allow_user: bool = True,
        user_file: Path | None = None,
        admin_dirs: list[str] | None = None,
        root: str | None = None,
        notice_code: str = "mcp_unavailable",
        redact: Callable[[str], str] = str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """`configured`: `c.RubberDuckApp.mcp_servers`. `user_file`: the user's JSON file
        (None: none). `admin_dirs`: where admin files are looked for (None: the system
        config dirs). `redact`: the app's redactor, applied after the servers' own
        secrets are taken out of what they answer."""
        self.configured = dict(configured)
        self.allow_user = allow_user
        self.user_file = user_file
        self.root = root
        self.notice_code = notice_code
        self.redact = redact
        self.env = env
        self.stopped = False
        self._admin: AdminFile | None = read_admin_files(admin_dirs)
        self._user_key: tuple[float, int] | None = None
        self._specs: list[McpServerSpec] = []
        self._logged: set[str] = set()
        self._connections: dict[str, McpConnection] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._told: set[str] = set()  # servers whose unoffered tools a user was told of
        self._refresh(force=True)

    # --- configuration -------------------------------------------------------------

    def _refresh(self, *, force: bool = False) -> None:
        """Reads the user's file again when it changed (or `force`); rebuilds the specs."""
        key: tuple[float, int] | None = None
        if self.user_file is not None:
            try:
                stat = self.user_file.stat()
                key = (stat.st_mtime, stat.st_size)
            except OSError:
                key = None
        if key == self._user_key and not force:
            return
        self._user_key = key
        user: dict[str, Any] = {}
        problem = None
        if key is not None and self.user_file is not None:
            user, problem = read_user_servers(self.user_file)
        specs, problems = servers_in_effect(
            configured=self.configured,
            allow_user=self.allow_user,
            user_file=user,
            admin_file=self._admin,
            env=self.env if self.env is not None else os.environ,
        )
        if problem:
            problems.append(problem)
        for text in problems:
            if text not in self._logged:
                self._logged.add(text)
                log.warning("RubberDuck: %s", text)
        self._specs = specs

    @property
    def specs(self) -> list[McpServerSpec]:
        return list(self._specs)

    def secrets(self) -> list[str]:
        """Every configured server's env and header values (for the app's redactor)."""
        return [s for spec in self._specs for s in spec.secrets()]

    def _scrub_for(self, spec: McpServerSpec) -> Callable[[str], str]:
        secrets = sorted(spec.secrets(), key=len, reverse=True)

        def scrub(text: str) -> str:
            for secret in secrets:
                text = text.replace(secret, "[REDACTED]")
            return self.redact(text)

        return scrub

    def _sync_connections(self) -> list[McpConnection]:
        """One connection per spec in effect; a changed or removed spec's is closed."""
        wanted = {spec.name: spec for spec in self._specs}
        for name, connection in list(self._connections.items()):
            if wanted.get(name) != connection.spec:
                del self._connections[name]
                self._close_later(connection)
        for name, spec in wanted.items():
            if name not in self._connections:
                self._connections[name] = McpConnection(
                    spec, root=self.root, scrub=self._scrub_for(spec)
                )
        return list(self._connections.values())

    def _close_later(self, connection: McpConnection) -> None:
        task = asyncio.create_task(connection.stop())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # --- the tool source -------------------------------------------------------------

    async def turn_tools(self, notify: Notify, *, can_ask: bool = False) -> Sequence[Tool]:
        if self.stopped:
            return []
        self._refresh()
        if not self._specs:
            return []
        connections = self._sync_connections()
        waits = [f for c in connections if (f := c.start()) is not None]
        if waits:
            limit = max(c.spec.start_timeout_s for c in connections) + WAIT_MARGIN_S
            # asyncio.wait never cancels what it waits for: a Stop of this turn leaves the
            # servers starting for the next one.
            await asyncio.wait(waits, timeout=limit)
        tools: list[Tool] = []
        for connection in connections:
            tools.extend(await self._offer(connection, notify, can_ask))
        return tools

    async def _offer(
        self, connection: McpConnection, notify: Notify, can_ask: bool = False
    ) -> list[Tool]:
        spec = connection.spec
        if connection.state == "starting":
            await notify(
                self.notice_code,
                f"The MCP server {spec.name} did not start within {spec.start_timeout_s:g} s; its "
                "tools are left out of this turn.",
            )
            return []
        if connection.state == "failed":
            if not connection.reported:
                connection.reported = True
                await notify(
                    self.notice_code,
                    f"The MCP server {spec.name} is unavailable ({connection.error}); its "
                    "tools are left out until it is tried again.",
                )
            return []
        if connection.state != "ready":
            return []
        offered: list[Tool] = []
        held: list[str] = []
        for tool in connection.tools:
            permission = permission_of(connection, tool)
            if permission not in OFFERED and not can_ask:
                held.append(f"{tool.name} ({permission.value})")
                continue
            offered.append(
                adapt(
                    connection,
                    tool,
                    notify=notify,
                    code=self.notice_code,
                    redact=connection.scrub,
                )
            )
        if held and spec.name not in self._told:
            self._told.add(spec.name)
            await notify(
                self.notice_code,
                f"The MCP server {spec.name}'s tools {', '.join(held[:8])} need your approval "
                "before each call, which this client cannot give (the JupyterLab sidebar "
                "can): they are not offered.",
            )
        return offered

    async def stop(self) -> None:
        """Closes every server (at server stop), each within its bounded wait."""
        self.stopped = True
        connections = list(self._connections.values())
        self._connections.clear()
        await asyncio.gather(
            *(c.stop() for c in connections), *self._closing, return_exceptions=True
        )
